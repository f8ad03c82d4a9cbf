#!/usr/bin/env bash
# Fuzzes one target: Tools/fuzz/run.sh TARGET [RUNS] [libFuzzer flags...]
# TARGET: safetensors, checkpoint, csv, npy or idx. RUNS defaults to 1000000 (-runs=-1: no limit).
# New inputs go to .build-fuzz/runs/TARGET/corpus (the committed seeds in Tools/fuzz/corpus/TARGET
# are only read); crashes, leaks and timeouts to .build-fuzz/runs/TARGET/artifacts.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
target="${1:?usage: Tools/fuzz/run.sh safetensors|checkpoint|csv|npy|idx [RUNS] [libFuzzer flags...]}"
runs="${2:-1000000}"
shift $(( $# < 2 ? $# : 2 ))
[ -d "$root/Tools/fuzz/corpus/$target" ] || { echo "run.sh: unknown target '$target'" >&2; exit 2; }
binary="$("$root/Tools/fuzz/build.sh")"
work="$root/.build-fuzz/runs/$target"
mkdir -p "$work/corpus" "$work/artifacts"
EMBER_FUZZ_TARGET="$target" "$binary" "$work/corpus" "$root/Tools/fuzz/corpus/$target" \
  -runs="$runs" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
  -artifact_prefix="$work/artifacts/" -print_final_stats=1 "$@"
