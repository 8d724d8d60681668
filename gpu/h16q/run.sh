#!/bin/bash
# Issue 16, quantization kernels and fused INT8 GEMM + dequantize (helper h16q, session 7).
# One device call, ≤ 3 minutes on one H100 (or H200). Old and new kernels are measured side by
# side in the same processes (new ones selected through Tuning overrides / bench rows).
#
# Binaries (release builds of branch h16q; stripped), in /root/b/ or carried xz-compressed in
# .gpu/bin/ (then unpacked to /tmp/h16q_b):
#   cuda_bench  cargo build --release -p eai-quant --features cuda --example cuda_bench
#               (target/release/examples/cuda_bench)
#   cuda        cargo test --release -p eai-quant --features cuda --test cuda --no-run
#   cuda_quant  cargo test --release -p eai-quant --features cuda --test cuda_quant --no-run
#               (target/release/deps/cuda-<hash>, cuda_quant-<hash>, renamed)
# Built here by h16q from commit 8509178 (the kernels and tests of this branch; stripped, xz):
# .gpu/bin/{cuda_bench,cuda,cuda_quant}.xz, 1.4 MB: carry `.gpu/bin`. The scripts themselves
# (run.sh, summary.py) come with the tree.
# Everything lands in ONE archive, $OUT/h16q.tar.xz; the bars summary is printed last.
set -u -o pipefail
B=${B:-/root/b}
if [ -f .gpu/bin/cuda_bench.xz ] && [ -f .gpu/bin/cuda.xz ] && [ -f .gpu/bin/cuda_quant.xz ]; then
    B=/tmp/h16q_b && mkdir -p $B
    for f in cuda_bench cuda cuda_quant; do xz -dc .gpu/bin/$f.xz > $B/$f && chmod +x $B/$f; done
fi
R=$OUT/h16q && mkdir -p $R
echo "binaries: $B"
export EAI_REQUIRE_GPU=1
T0=$(date +%s)
el() { echo "$(( $(date +%s) - T0 ))s"; }
{ date -u; nvidia-smi --query-gpu=name,driver_version,memory.total,power.limit,clocks.max.sm,clocks.max.mem --format=csv; nproc; } > $R/env.log 2>&1
cat $R/env.log

# 1. Correctness of the new paths (≈ 60 s incl. the first process's NVRTC + driver JIT):
#    fused INT8 GEMM + dequantize (panel budgets 0/1/2 MiB, heuristic ranks 0-7, overlapped
#    on a second stream or not, f32/f16/bf16, bias) and the traffic probes (strided, blocked)
#    bit-exact against the CPU, and the old GEMM tests; the whole quantize suite with the
#    contiguous Q8_0 kernel, streaming loads and the blocked dequantize as the default (498 M
#    elements, codes, scales, zero points and dequantized values against
#    CpuQuantizer); the tuning sweep (contig 2/4 and streaming on/off mixed with every older
#    variant) and the error paths under today's defaults.
timeout 50 $B/cuda --test-threads=1 --nocapture int8_gemm fused_int8 traffic_probes \
    > $R/test_gemm.log 2>&1
echo "gemm tests rc=$? $(el)" | tee -a $R/env.log
# (Session 8 made the measured-best kernels the defaults: no EAI_QUANT_TUNING needed.)
timeout 40 $B/cuda_quant \
    --test-threads=1 --nocapture quantize_matches_cpu_bit_for_bit > $R/test_quant_new.log 2>&1
echo "quant tests (defaults) rc=$? $(el)" | tee -a $R/env.log
timeout 30 $B/cuda_quant --test-threads=1 --nocapture every_tuning errors_match \
    > $R/test_quant_sweep.log 2>&1
echo "quant tuning sweep rc=$? $(el)" | tee -a $R/env.log
grep -hE "^test |test result|panicked|bit-exact" $R/test_*.log

# 2. GEMM (≈ 25 s): section 3 (INT8 alone and INT8 + separate dequantize vs FP16 over 14
#    shapes) and 3b (4096³, 8192³: separate vs gemm_i8_dequant at panel budgets 0/8/16/32 MiB ×
#    heuristic ranks 0/1/2, and 8/16/32 MiB with the dequantize overlapped on a second stream;
#    3 interleaved rounds).
timeout 45 $B/cuda_bench --gemm-only --out $R/bench_gemm.md > $R/bench_gemm.log 2>&1
echo "gemm bench rc=$? $(el)" | tee -a $R/env.log

# 3. Memory-bound table (≈ 60 s): copy, casts, and the 5-round interleaved quantize /
#    dequantize table with today's defaults and, beside them, [ld.cs] for the row-wise schemes,
#    group-128 and Q8_0, [contig 2/4 per lane (+ ld.cs)] for Q8_0, and [blocked] for every
#    dequantize row; traffic probes.
LEFT=$(( 175 - ($(date +%s) - T0) ))
[ $LEFT -lt 60 ] && LEFT=60
timeout $LEFT $B/cuda_bench --quant-only --no-energy --no-sizes --out $R/bench_quant.md \
    --tuning-out $R/tuning.env > $R/bench_quant.log 2>&1
echo "quant bench rc=$? $(el)" | tee -a $R/env.log
grep -hE "error|panicked" $R/bench_*.log | head -5

tar -C $OUT -cJf $OUT/h16q.tar.xz h16q && rm -rf $R
echo "archive: $OUT/h16q.tar.xz $(el)"
# the bench prints every table line as it goes: if a timeout cut it before the .md was written,
# the summary reads the log
rm -rf /tmp/h16q && tar -C /tmp -xJf $OUT/h16q.tar.xz
Q=/tmp/h16q/bench_quant.md; [ -f $Q ] || Q=/tmp/h16q/bench_quant.log
G=/tmp/h16q/bench_gemm.md; [ -f $G ] || G=/tmp/h16q/bench_gemm.log
python3 gpu/h16q/summary.py $Q $G
