#!/bin/bash
# Session 15, call 10 (carry .gpu/s15h; ~1.5 minutes on one H100): the 16-bit column
# statistics with 2 blocks per SM and 8 rows in flight (a quarter of call 9's slices, so a
# quarter of the atomic min/max pairs on the 2 x channels words). Tests: cuda_quant's
# bit-exact, every-tuning and errors tests; then `cuda_bench --only-two-pass` once.
set -u
R=$(pwd); B=/root/b11; O=/root/o/c10; mkdir -p $B $O
for f in cuda_bench cuda_quant; do xz -dc $R/.gpu/s15h/$f.xz > $B/$f && chmod +x $B/$f; done
export EAI_REQUIRE_GPU=1
T0=$(date +%s); t() { echo "[t=$(( $(date +%s)-T0 ))s] $*"; }
date -u | tee $O/env.log
timeout 150 $B/cuda_quant --test-threads=1 quantize_matches every_tuning errors_match > $O/test_cuda_quant.log 2>&1; t "cuda_quant tests rc=$?"
grep -hE "test result|FAILED|panicked" $O/test_*.log
timeout 100 $B/cuda_bench --only-two-pass --no-energy --out $O/t1.md > $O/t1.log 2>&1; t "bench rc=$?"
grep -hE "^- |two-pass traffic" $O/t1.md
tar cJf $OUT/c10.tar.xz -C /root/o c10; t done
