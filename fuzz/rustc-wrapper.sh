#!/usr/bin/env bash
# RUSTC_WRAPPER of fuzz/build.sh: compiles csv_core without compare tracing. Its reader builder
# constructs a DFA (states × 256 bytes) every time a CSV reader is made, the same work for
# every input; traced, it took 60-70 % of the `mmlu` and `replay` targets' time (perf,
# 2026-12-06). Its edges stay instrumented; every other crate is compiled as given.
rustc=$1
shift
csv_core=0
prev=
for a in "$@"; do
    [ "$prev" = --crate-name ] && [ "$a" = csv_core ] && csv_core=1
    prev=$a
done
if [ "$csv_core" = 1 ]; then
    args=()
    for a in "$@"; do
        [ "$a" = -Cllvm-args=-sanitizer-coverage-trace-compares ] || args+=("$a")
    done
    exec "$rustc" "${args[@]}"
fi
exec "$rustc" "$@"
