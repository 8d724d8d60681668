#!/bin/bash
# Issue 16 (helper h16k) device call: ≤ 4 minutes on one H100 (or H200).
#
# Binaries (release builds of branch h16k, unpacked in /root/b/):
#   /root/b/gpu_bench  cargo build --release -p eai-model --features cuda --example gpu_bench
#   /root/b/cuda       cargo test --release -p eai-model --features cuda --test cuda --no-run
#                      (the executable target/release/deps/cuda-<hash>, renamed)
# Synthetic 7B shapes need no GGUF; step 4 (int8 vs f16 LM head on real weights) runs when
# /root/g/SmolLM2-135M-Instruct.Q4_1.gguf is there and time is left. Writes everything under
# $OUT; prints the test results, the head parity, then the roofline tables and the bars last.
# Built by h16k at bafabed (stripped, xz): .gpu/bin/gpu_bench.xz, .gpu/bin/cuda.xz (carry
# `.gpu/bin`, 3.7 MB). When carried they are used (unpacked to /tmp/h16k_b); otherwise the
# binaries in /root/b (built from a tree that contains branch h16k).
set -u -o pipefail
B=${B:-/root/b}
if [ -f .gpu/bin/gpu_bench.xz ] && [ -f .gpu/bin/cuda.xz ]; then
    B=/tmp/h16k_b && mkdir -p $B
    for f in gpu_bench cuda; do xz -dc .gpu/bin/$f.xz > $B/$f && chmod +x $B/$f; done
fi
echo "binaries: $B"
export EAI_REQUIRE_GPU=1 EAI_CACHE=/root/nocache
T0=$(date +%s)
el() { echo "$(( $(date +%s) - T0 ))s"; }
{ date -u; nvidia-smi --query-gpu=name,driver_version,memory.total,power.limit,clocks.max.sm,clocks.max.mem --format=csv; nproc; } > $OUT/env.log 2>&1
cat $OUT/env.log

# 1. Correctness (≈ 40 s): the new W16 GEMV against the CUDA-core layout and the CPU (logits at
#    1-4 rows, greedy tokens graph/eager; FP16, W8A16 with f32 / f16 / int8 head), the memory
#    report by part, and the fused-decode and int8-head tests, which iterate every tile (W16 too).
timeout 75 $B/cuda --test-threads=1 --nocapture w16_decode_gemv memory_report_adds_up \
    fused_decode_matches > $OUT/test.log 2>&1
echo "tests rc=$? $(el)" | tee -a $OUT/env.log
grep -E "^test |test result|W16 vs|panicked" $OUT/test.log

# 2. Qwen2.5-7B shapes (≈ 110 s): FP16 / W8A16 / W8A8 (f16 embedding and head, the defaults),
#    batch 1, 8 and 32 with the old (auto = K4U2 at batch 1; cuBLAS / CUDA-core GEMV /
#    dequantize + cuBLAS at 8 and 32) and the new (w16; batched W16 at 8 and 32) GEMVs.
C="--gguf none --only 7b --quick --fused true --half-head true --decode-new 128 --decode-new-batched 32"
timeout 120 $B/gpu_bench $C --out $OUT/qwen --shapes qwen --schemes fp16,int8-w8a16,int8-w8a8 \
    --tile auto,w16 --batches 1,8,32 > $OUT/qwen.log 2>&1
echo "qwen rc=$? $(el)" | tee -a $OUT/env.log

# 3. Mistral-7B shapes (≈ 50 s): FP16 / W8A16, batch 1, auto vs w16.
timeout 60 $B/gpu_bench $C --out $OUT/mistral --shapes mistral --schemes fp16,int8-w8a16 \
    --tile auto,w16 --batches 1 > $OUT/mistral.log 2>&1
echo "mistral rc=$? $(el)" | tee -a $OUT/env.log

grep -hE "error|panicked" $OUT/qwen.log $OUT/mistral.log | head -5

# 4. The LM-head default (≈ 30 s, optional): W8A16 on SmolLM2's real weights against the CPU
#    W8A16 reference (f32 head) with the default f16 head and with the int8 head: max |Δlogit|,
#    top-1 agreement and mean next-token NLL over 3 texts.
G=/root/g/SmolLM2-135M-Instruct.Q4_1.gguf
if [ -f $G ] && [ $(( $(date +%s) - T0 )) -lt 200 ]; then
    for ih in 0 1; do
        EAI_INT8_HEAD=$ih timeout 25 $B/gpu_bench --gguf $G --only parity --schemes int8-w8a16 \
            --out $OUT/parity_int8head$ih > $OUT/parity_int8head$ih.log 2>&1
        echo "parity int8 head $ih rc=$? $(el)" | tee -a $OUT/env.log
        grep -h "^parity" $OUT/parity_int8head$ih.log
    done
else
    echo "step 4 skipped (no $G or past 200 s)"
fi
echo
echo "=== issue 16: roofline and bars (GPU: $(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)) ==="
cat $OUT/qwen/roofline.md $OUT/mistral/roofline.md 2>/dev/null || echo "no roofline.md (see qwen.log / mistral.log)"
