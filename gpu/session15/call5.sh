#!/bin/bash
# Session 15, call 5 (carry .gpu/s15c; ~4 minutes on one H100): after v5 lost (call 4) and the
# default INT8 GEMM + dequantize was found 1.1-2.1x slower than cuBLASLt at M <= 128, the
# per-shape rule (`use_wgmma`: wgmma where the output has >= 1 tile of 128 x 256 per SM) and the
# M sweep it rests on: section 3 now times cuBLASLt, wgmma v4 and the default side by side at
# M = 1 ... 2048 (256, 512, 1024 new), every row settled 200 ms. Two processes.
#   .gpu/s15c: cuda_bench and cuda (eai-quant, this commit), stripped, xz.
set -u
R=$(pwd); B=/root/b6; O=/root/o/c5; mkdir -p $B $O
for f in cuda_bench cuda; do xz -dc $R/.gpu/s15c/$f.xz > $B/$f && chmod +x $B/$f; done
export EAI_REQUIRE_GPU=1 EAI_BENCH_SKIP_WGMMA=v1,v2,v3
T0=$(date +%s); t() { echo "[t=$(( $(date +%s)-T0 ))s] $*"; }
date -u | tee $O/env.log
timeout 90 $B/cuda --test-threads=1 --nocapture --exact wgmma4_int8_gemm_dequant_matches_cpu_bit_for_bit > $O/test_v4.log 2>&1; t "v4 test rc=$?"
timeout 60 $B/cuda --test-threads=1 --nocapture fused_int8 > $O/test_fused.log 2>&1; t "fused tests rc=$?"
grep -hE "^test |test result|panicked" $O/test_*.log
nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw,temperature.gpu --format=csv -lms 200 > $O/smi.csv 2>&1 &
SMI=$!
for i in 1 2; do
    timeout 200 $B/cuda_bench --gemm-only --no-energy --out $O/g$i.md > $O/g$i.log 2>&1; t "bench $i rc=$?"
done
kill $SMI
grep -hE "^\| [0-9]+ \| [0-9]+ \| [0-9]+ \||^- INT8 vs" $O/g?.md
tar cJf $OUT/c5.tar.xz -C /root/o c5; t done
