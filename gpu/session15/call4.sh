#!/bin/bash
# Session 15, call 4 (carry .gpu/s15b; ~5 minutes on one H100): wgmma v5 (v4's TMA-store
# epilogue through two 8 KiB slots per warpgroup, 4 ring stages) against v4, the cuBLASLt path
# and cuBLAS FP16, every GEMM row now settled for 200 ms before it is timed (call 1 showed the
# H100 at its 700 W limit with the SM clock at 1.29-1.98 GHz, and rows timed straight after
# cuBLAS FP16 slower by up to 18 %).
#   .gpu/s15b: cuda_bench (`cargo build --release -p eai-quant --features cuda --example
#   cuda_bench`) and cuda (`cargo test --release -p eai-quant --features cuda --test cuda
#   --no-run`), stripped, xz, from the working tree of this commit.
set -u
R=$(pwd); B=/root/b5; O=/root/o/c4; mkdir -p $B $O
for f in cuda_bench cuda; do xz -dc $R/.gpu/s15b/$f.xz > $B/$f && chmod +x $B/$f; done
export EAI_REQUIRE_GPU=1
T0=$(date +%s); t() { echo "[t=$(( $(date +%s)-T0 ))s] $*"; }
date -u | tee $O/env.log
# 1. bit-exactness of v5 (first process: compiles the modules) and v4 after the body merge
timeout 90 $B/cuda --test-threads=1 --nocapture --exact wgmma5_int8_gemm_dequant_matches_cpu_bit_for_bit > $O/test_v5.log 2>&1; V5=$?; t "v5 test rc=$V5"
timeout 45 $B/cuda --test-threads=1 --nocapture --exact wgmma4_int8_gemm_dequant_matches_cpu_bit_for_bit > $O/test_v4.log 2>&1; t "v4 test rc=$?"
timeout 45 $B/cuda --test-threads=1 --nocapture --exact wgmma2_int8_gemm_dequant_matches_cpu_bit_for_bit > $O/test_v2.log 2>&1; t "v2 test rc=$?"
grep -hE "^test |test result|panicked|co-resident" $O/test_*.log
SKIP=v1,v2,v3; [ $V5 -ne 0 ] && SKIP=v1,v2,v3,v5
export EAI_BENCH_SKIP_WGMMA=$SKIP
# 2. the GEMM sections in two processes, clock and power logged
nvidia-smi --query-gpu=timestamp,clocks.sm,clocks.mem,power.draw,temperature.gpu,utilization.gpu --format=csv -lms 200 > $O/smi.csv 2>&1 &
SMI=$!
for i in 1 2; do
    timeout 170 $B/cuda_bench --gemm-only --no-energy --out $O/g$i.md > $O/g$i.log 2>&1; t "bench $i rc=$?"
done
kill $SMI
# 3. ncu of v5 (its third launch at 4096^3), as call 1 did for v4
NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
if [ $V5 -eq 0 ]; then
    timeout 60 $NCU --clock-control none --cache-control none -k regex:gemm_wgmma5_f16 --launch-skip 2 --launch-count 1 \
        --set full -o $O/v5 $B/cuda_bench --profile-gemm > $O/ncu.log 2>&1; t "ncu rc=$?"
    [ -f $O/v5.ncu-rep ] && $NCU --import $O/v5.ncu-rep --page details --csv > $O/v5_details.csv 2>&1
    [ -f $O/v5.ncu-rep ] && $NCU --import $O/v5.ncu-rep --page raw --csv > $O/v5_raw.csv 2>&1 && rm $O/v5.ncu-rep
fi
grep -hE "^\| 4096×4096×4096 |^\| 4096 \| 4096|^- " $O/g?.md
tar cJf $OUT/c4.tar.xz -C /root/o c4; t done
