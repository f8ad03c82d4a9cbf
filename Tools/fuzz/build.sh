#!/usr/bin/env bash
# Builds the libFuzzer harness: the EmberFuzz target in release, with the fuzzer and address
# sanitizers on every Swift module, into .build-fuzz (git-ignored). Prints the binary's path.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
swift build -c release --product EmberFuzz --scratch-path "$root/.build-fuzz" \
  -Xswiftc -sanitize=fuzzer,address -Xswiftc -DEMBER_FUZZ >&2
echo "$root/.build-fuzz/release/EmberFuzz"
