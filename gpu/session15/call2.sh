#!/bin/bash
# Session 15, call 2 (carry .gpu/q2 .gpu/lq; on call 1's warm machine): the GGUF's second part
# and llama-quantize (gpu/llamacpp/BUILD.md); meanwhile main's eai-quant GPU tests that session
# 14 left out: every tuning mixed (the session-14 fields included) and the wgmma v4 GEMM test.
set -u
R=$(pwd); B=/root/b; O=/root/o/c2; mkdir -p /root/g /root/ll $O
cp $R/.gpu/q2/part.ab /root/g/ && xz -dc $R/.gpu/lq/llama-quantize.xz > /root/ll/llama-quantize && chmod +x /root/ll/llama-quantize
export EAI_REQUIRE_GPU=1
T0=$(date +%s); t() { echo "[t=$(( $(date +%s)-T0 ))s] $*"; }
timeout 150 $B/cuda_quant --test-threads=1 --nocapture every_tuning > $O/test_every_tuning.log 2>&1; t "every_tuning rc=$?"
timeout 60 $B/cuda --test-threads=1 --nocapture --exact wgmma4_int8_gemm_dequant_matches_cpu_bit_for_bit > $O/test_wgmma4.log 2>&1; t "wgmma4 rc=$?"
grep -hE "^test |test result|panicked" $O/test_*.log
tar cJf $OUT/c2.tar.xz -C /root/o c2; t done
