#!/bin/bash
# Issue 16 (h16k) early probe, ≤ 3 minutes on one H100: the new W16 GEMV's GPU tests, then
# Qwen2.5-7B shapes FP16 / W8A16, batch 1 and 32, old (auto) vs new (w16) GEMV, with the
# roofline table. Binaries carried in .gpu/bin (xz), built at b9a0a7b.
set -u -o pipefail
B=/tmp/h16k_b && mkdir -p $B
for f in gpu_bench cuda; do xz -dc .gpu/bin/$f.xz > $B/$f && chmod +x $B/$f; done
export EAI_REQUIRE_GPU=1 EAI_CACHE=/root/nocache
T0=$(date +%s)
el() { echo "$(( $(date +%s) - T0 ))s"; }
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv | tee $OUT/env.log
timeout 70 $B/cuda --test-threads=1 --nocapture w16_decode_gemv memory_report_adds_up > $OUT/test.log 2>&1
echo "tests rc=$? $(el)"
grep -E "^test |test result|W16|panicked|assert" $OUT/test.log | head -60
timeout 95 $B/gpu_bench --gguf none --only 7b --quick --fused true --half-head true --decode-new 128 \
    --decode-new-batched 32 --out $OUT/qwen --shapes qwen --schemes fp16,int8-w8a16 --tile auto,w16 \
    --batches 1,32 > $OUT/qwen.log 2>&1
echo "qwen rc=$? $(el)"
grep -E "panicked|error" $OUT/qwen.log | head -5
grep -E "built in|copy" $OUT/qwen.log | head
cat $OUT/qwen/roofline.md 2>/dev/null || tail -20 $OUT/qwen.log
