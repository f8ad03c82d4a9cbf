#!/usr/bin/env bash
# CI smoke: Tools/fuzz/smoke.sh [SECONDS]
# Builds the fuzz harness (debug, which builds in about half the time of release; FUZZ_CONFIG=release
# overrides) and fuzzes each target for SECONDS (default 25) from the committed seeds. Fails on any
# crash, leak or timeout. Skips with a note when the toolchain has no libFuzzer runtime
# (libclang_rt.fuzzer).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
seconds="${1:-25}"
swiftc_path="$(command -v swiftc || true)"
runtime=""
if [ -n "$swiftc_path" ]; then
  toolchain="$(cd "$(dirname "$(readlink -f "$swiftc_path")")/.." && pwd)"
  runtime="$(ls "$toolchain"/lib/swift/clang/lib/*/libclang_rt.fuzzer*.a "$toolchain"/lib/clang/*/lib/*/libclang_rt.fuzzer*.a 2>/dev/null | head -n 1 || true)"
fi
if [ -z "$runtime" ]; then
  echo "fuzz smoke skipped: this Swift toolchain has no libFuzzer runtime (libclang_rt.fuzzer); swiftc -sanitize=fuzzer cannot link"
  exit 0
fi
binary="$(FUZZ_CONFIG="${FUZZ_CONFIG:-debug}" "$root/Tools/fuzz/build.sh")"
for target in safetensors checkpoint csv npy idx; do
  work="$root/.build-fuzz/smoke/$target"
  rm -rf "$work"
  mkdir -p "$work/corpus" "$work/artifacts"
  echo "== fuzz $target for ${seconds}s"
  if ! EMBER_FUZZ_TARGET="$target" "$binary" "$work/corpus" "$root/Tools/fuzz/corpus/$target" \
      -max_total_time="$seconds" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
      -artifact_prefix="$work/artifacts/" -print_final_stats=1 > "$work/log" 2>&1; then
    tail -n 60 "$work/log"
    echo "fuzz smoke: target $target failed; the input is in $work/artifacts"
    exit 1
  fi
  grep -E '^stat::number_of_executed_units|^Done' "$work/log" || true
done
echo "fuzz smoke passed"
