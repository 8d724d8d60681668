#!/bin/bash
# Session 15, call 6 (carry .gpu/s15d; ~6 minutes on one H100): main's eai-quant at the final
# rule (`use_wgmma`: wgmma v4 from 3/8 of a 128x256 tile per SM, cuBLASLt below): every GPU test
# of eai-quant (tests/cuda.rs and tests/cuda_quant.rs, each test binary in one process), then
# `cuda_bench --gemm-only` once: its default column is what `gemm_i8_dequant` users get.
#   .gpu/s15d: cuda_bench, cuda, cuda_quant (release, stripped, xz) of .gpu/s15d/COMMIT.
set -u
R=$(pwd); B=/root/b7; O=/root/o/c6; mkdir -p $B $O
for f in cuda_bench cuda cuda_quant; do xz -dc $R/.gpu/s15d/$f.xz > $B/$f && chmod +x $B/$f; done
export EAI_REQUIRE_GPU=1 EAI_BENCH_SKIP_WGMMA=v1,v2,v3
T0=$(date +%s); t() { echo "[t=$(( $(date +%s)-T0 ))s] $*"; }
{ date -u; cat $R/.gpu/s15d/COMMIT; } | tee $O/env.log
timeout 170 $B/cuda --test-threads=1 > $O/test_cuda.log 2>&1; t "cuda tests rc=$?"
timeout 200 $B/cuda_quant --test-threads=1 > $O/test_cuda_quant.log 2>&1; t "cuda_quant tests rc=$?"
grep -hE "test result|FAILED|panicked" $O/test_*.log
timeout 200 $B/cuda_bench --gemm-only --no-energy --out $O/g1.md > $O/g1.log 2>&1; t "bench rc=$?"
grep -hE "^\| [0-9]+ \| [0-9]+ \| [0-9]+ \||^- INT8 vs|default \(|cuBLAS FP16" $O/g1.md
tar cJf $OUT/c6.tar.xz -C /root/o c6; t done
