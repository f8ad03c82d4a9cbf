#!/usr/bin/env bash
# Builds the libFuzzer harness: the EmberFuzz target with the fuzzer and address sanitizers on
# every Swift module, into .build-fuzz (git-ignored). Prints the binary's path.
# FUZZ_CONFIG=release (default: fastest fuzzing) or debug (builds in about half the time; the
# CI smoke uses it).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
config="${FUZZ_CONFIG:-release}"
cd "$root"
swift build -c "$config" --product EmberFuzz --scratch-path "$root/.build-fuzz" \
  -Xswiftc -sanitize=fuzzer,address -Xswiftc -DEMBER_FUZZ >&2
echo "$(swift build -c "$config" --scratch-path "$root/.build-fuzz" --show-bin-path)/EmberFuzz"
