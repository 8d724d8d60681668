#!/bin/bash
# GPU run of eai-quant's CUDA path (session 3): tests (bit-exact vs CPU) then the bench. Writes to $OUT.
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
date
[ -n "${SKIP_TESTS:-}" ] || {
timeout 100 ./cuda --test-threads=1 --nocapture 2>&1 | tee "$OUT/tests_cuda.log" | grep -E "test result|FAILED|panicked|^test " | tail -12
timeout 200 ./cuda_quant --test-threads=1 --nocapture 2>&1 | tee "$OUT/tests_quant.log" | grep -E "test result|FAILED|panicked|elements|^test " | tail -14
date
}
[ -n "${SKIP_BENCH:-}" ] || timeout ${BENCH_TIMEOUT:-200} ./cuda_bench --out "$OUT/bench.md" ${BENCH_ARGS:-} > "$OUT/bench.log" 2>&1
date
grep -v "^$" "$OUT/bench.log" | grep -v "^|---" | cut -c1-220 | tail -120
nvidia-smi --query-gpu=clocks.sm,power.draw,temperature.gpu --format=csv
