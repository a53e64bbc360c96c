#!/usr/bin/env bash
# Builds the pgoutput/replication-frame fuzz target with clang++ (libFuzzer + ASan + UBSan)
# into build/fuzz/ and runs it for ${FUZZ_SECONDS:-20} seconds on a copy of the seed corpus
# (tests/fuzz/corpus/ is left untouched). Exits non-zero when the fuzzer finds a crash,
# leak or sanitizer report; prints a skip line and exits 0 when clang++ is not installed.
# Findings are saved as build/fuzz/crash-* (add them to tests/fuzz/corpus/ once fixed:
# replay_test.cpp then keeps them covered under gcc).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out="$root/build/fuzz"
seconds=${FUZZ_SECONDS:-20}
cxx=${CLANGXX:-clang++}

if ! command -v "$cxx" >/dev/null 2>&1; then
  echo "fuzz.sh: SKIP: $cxx not found; install clang to run the fuzzer"
  exit 0
fi

mkdir -p "$out"
rm -rf "$out/corpus"
cp -r "$root/tests/fuzz/corpus" "$out/corpus"

echo "fuzz.sh: building $out/fuzz_pgoutput with $cxx"
"$cxx" -std=c++20 -g -O1 -fno-omit-frame-pointer \
  -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -I"$root/include" -I"$root/src" \
  "$root/tests/fuzz/fuzz_pgoutput.cpp" \
  "$root/src/decode/pgoutput.cpp" \
  "$root/src/decode/replication_frame.cpp" \
  -o "$out/fuzz_pgoutput"

echo "fuzz.sh: running for ${seconds}s on a copy of the corpus ($(ls "$out/corpus" | wc -l) seeds)"
cd "$out"
# -rss_limit_mb: a decoder that allocates from an untrusted count shows up as an OOM finding.
if "$out/fuzz_pgoutput" -max_total_time="$seconds" -rss_limit_mb=1024 -max_len=65536 \
     -print_final_stats=1 "$out/corpus" >"$out/fuzz.log" 2>&1; then
  tail -n 12 "$out/fuzz.log"
  echo "fuzz.sh: OK: no crash in ${seconds}s"
else
  status=$?
  tail -n 60 "$out/fuzz.log"
  echo "fuzz.sh: FAILED (exit $status): see $out/fuzz.log and $out/crash-* / leak-* / oom-*" >&2
  exit "$status"
fi
