#!/bin/bash
# Session 3, final GPU run of eai-quant: the bench (sweeps pick the launch settings, written to
# tuning.env), then both test suites with EAI_QUANT_TUNING set to those settings.
set -u
cd "$(dirname "$0")"
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,power.draw,power.limit,temperature.gpu --format=csv
export EAI_REQUIRE_GPU=1
date
timeout 170 ./cuda_bench --out "$OUT/bench.md" --sweep --quant-only --no-energy --tuning-out "$OUT/tuning.env" > "$OUT/bench.log" 2>&1
echo "bench rc=$?"; date
[ -s "$OUT/tuning.env" ] && export EAI_QUANT_TUNING="$(cat "$OUT/tuning.env")"
echo "EAI_QUANT_TUNING=${EAI_QUANT_TUNING:-}"
timeout 90 ./cuda --test-threads=1 --nocapture 2>&1 | tee "$OUT/tests_cuda.log" | grep -E "test result|FAILED|panicked" | tail -5
timeout 150 ./cuda_quant --test-threads=1 --nocapture 2>&1 | tee "$OUT/tests_quant.log" | grep -E "test result|FAILED|panicked|elements|^test " | tail -14
date
grep -v "^$" "$OUT/bench.log" | grep -v "^|---" | grep -v "^Bytes counted" | cut -c1-230 | tail -100
nvidia-smi --query-gpu=clocks.sm,power.draw,temperature.gpu --format=csv
