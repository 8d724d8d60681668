#!/bin/bash
# Session 15, call 9 (carry .gpu/s15g; ~2 minutes on one H100): calls 7 and 8 left per-channel on the
# last axis from bf16/f16 at 0.65-0.70 of the measured two-pass bound (f32 and per-tensor
# within 5 %; interleaving the rows changed nothing). Here the 16-bit column statistics run on
# NaN-propagating packed min/max of the raw pairs (the exact per-element loop only as the
# fallback of a column that saw a NaN or an infinity), and the column kernels are held to 64
# registers (4 blocks of 256 per SM; 16-bit apply with 2 rows in flight). Tests: cuda_quant's bit-exact test
# with quant_cols_interleave=true forced, then the whole suite (every tuning mixes it).
#   .gpu/s15g: cuda_bench, cuda_quant (release, stripped, xz) of the working tree.
set -u
R=$(pwd); B=/root/b10; O=/root/o/c9; mkdir -p $B $O
for f in cuda_bench cuda_quant; do xz -dc $R/.gpu/s15g/$f.xz > $B/$f && chmod +x $B/$f; done
export EAI_REQUIRE_GPU=1
T0=$(date +%s); t() { echo "[t=$(( $(date +%s)-T0 ))s] $*"; }
date -u | tee $O/env.log
EAI_QUANT_TUNING=quant_cols_interleave=true timeout 150 $B/cuda_quant --test-threads=1 --exact quantize_matches_cpu_bit_for_bit > $O/test_interleave.log 2>&1; t "bit-exact, interleaved rc=$?"
timeout 150 $B/cuda_quant --test-threads=1 > $O/test_cuda_quant.log 2>&1; t "cuda_quant tests rc=$?"
grep -hE "test result|FAILED|panicked" $O/test_*.log
for i in 1 2; do
    timeout 120 $B/cuda_bench --only-two-pass --no-energy --out $O/t$i.md > $O/t$i.log 2>&1; t "bench $i rc=$?"
done
grep -hE "^- " $O/t?.md
tar cJf $OUT/c9.tar.xz -C /root/o c9; t done
