#!/bin/bash
# Session 15, call 8 (carry .gpu/s15f; ~2 minutes on one H100): call 7 left per-channel on the
# last axis from bf16/f16 at 0.65-0.70 of the measured two-pass bound (f32 and per-tensor
# within 5 %). Here the column kernels can walk interleaved rows (quant_cols_interleave: the
# grid streams one window of consecutive rows instead of each block its own slice); rows with
# and without it, with the column and the vector apply. Tests: cuda_quant's bit-exact test
# with quant_cols_interleave=true forced, then the whole suite (every tuning mixes it).
#   .gpu/s15f: cuda_bench, cuda_quant (release, stripped, xz) of the working tree.
set -u
R=$(pwd); B=/root/b9; O=/root/o/c8; mkdir -p $B $O
for f in cuda_bench cuda_quant; do xz -dc $R/.gpu/s15f/$f.xz > $B/$f && chmod +x $B/$f; done
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
tar cJf $OUT/c8.tar.xz -C /root/o c8; t done
