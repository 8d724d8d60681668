#!/bin/bash
# Session 3, round 2 GPU run of eai-quant: both test suites with the new split/prefetch kernels
# switched on (every other variant is covered by every_tuning_...), then the bench (sweeps of the
# split and prefetch kernels, then the quantize/dequantize table in 5 interleaved rounds).
set -u
cd "$(dirname "$0")"
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
LP=""
for lib in libnvrtc.so libcublasLt.so libcublas.so; do
  if ! ldconfig -p | grep -q "$lib"; then
    p=$(find /usr/local /opt /usr/lib -name "$lib*" 2>/dev/null | grep -v stub | head -1)
    [ -n "$p" ] && LP="$(dirname "$p"):$LP"
  fi
done
export LD_LIBRARY_PATH="$LP${LD_LIBRARY_PATH:-}"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,power.draw,power.limit,temperature.gpu --format=csv
export EAI_REQUIRE_GPU=1
export EAI_QUANT_TUNING="quant_split_warps=4,quant_reg_prefetch=true,quant_reg_pair=true"
date
timeout 92 ./cuda_quant --test-threads=1 --nocapture 2>&1 | tee "$OUT/tests_quant.log" | grep -E "test result|FAILED|panicked|elements|^test " | tail -14
timeout 20 ./cuda --test-threads=1 --nocapture 2>&1 | tee "$OUT/tests_cuda.log" | grep -E "test result|FAILED|panicked|^test " | tail -10
date
unset EAI_QUANT_TUNING
timeout ${BENCH_TIMEOUT:-60} ./cuda_bench --out "$OUT/bench.md" --sweep --quant-only --no-energy --no-sizes --tuning-out "$OUT/tuning.env" > "$OUT/bench.log" 2>&1
echo "bench rc=$?"; date
grep -v "^$" "$OUT/bench.log" | grep -v "^|---" | grep -v "^Bytes counted" | cut -c1-200 | tail -90
nvidia-smi --query-gpu=clocks.sm,power.draw,temperature.gpu --format=csv
