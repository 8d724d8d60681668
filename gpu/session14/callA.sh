#!/bin/bash
# Session 14, call A (one H100 or H200, ~4-5 minutes): issue 16's two open kernel bars.
#  1. wgmma v1..v4 (branch igemm3's build, .gpu/i4): bit-exact tests, then the GEMM bench beside
#     cuBLAS FP16 and the cuBLASLt paths (gpu/session13/igemm3/run.sh, unchanged).
#  2. 16-bit-source quantize rows (this tree's build, .gpu/q14): the prefetching in-warp kernel and
#     the contiguous kernel on group-128 bit-exact against the CPU (the every-tuning test left out: device time), then
#     `cuda_bench --only-16bit` (default kernels beside the variants, the 2:1 probes).
# Binaries (release, stripped, xz) in .gpu/q14/:
#   cuda_bench.xz  cargo build --release -p eai-quant --features cuda --example cuda_bench
#   cuda_quant.xz  cargo test --release -p eai-quant --features cuda --test cuda_quant --no-run
set -u -o pipefail
: "${OUT:?OUT must name the output folder}"
bash .gpu/i4/run.sh 2>&1 | tail -45
B=$HOME/q14_b && mkdir -p "$B"
for f in cuda_bench cuda_quant; do xz -dc .gpu/q14/$f.xz > "$B/$f" && chmod +x "$B/$f"; done
R=$OUT/q14 && mkdir -p "$R"
export EAI_REQUIRE_GPU=1
T0=$(date +%s)
el() { echo "$(( $(date +%s) - T0 ))s"; }
{ date -u; nvidia-smi --query-gpu=name,driver_version,memory.total,power.limit,clocks.max.sm,clocks.max.mem --format=csv; } > "$R/env.log" 2>&1
timeout 60 "$B/cuda_quant" --test-threads=1 --nocapture register_row_variants \
    > "$R/test_quant.log" 2>&1
echo "quant tests rc=$? $(el)" | tee -a "$R/env.log"
grep -hE "^test |test result|panicked|elements" "$R/test_quant.log" | head -20
timeout 100 "$B/cuda_bench" --only-16bit --no-energy --out "$R/bench_16.md" > "$R/bench_16.log" 2>&1
echo "bench rc=$? $(el)" | tee -a "$R/env.log"
Q=$R/bench_16.md; [ -f "$Q" ] || Q=$R/bench_16.log
grep -E "^\| (quantize|traffic|device)" "$Q" | cut -c1-200
