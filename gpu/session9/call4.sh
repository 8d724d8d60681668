# Call 4 (carry nothing): issue 16's decode figures on the new defaults (gpu/h16k/run.sh, ~2 min)
# and the unmeasured rows of the tile rule: 2, 4 and 16 sequences, K4U2 vs W16 forced (~1 min).
set -u
mkdir -p /root/o/h16k
(OUT=/root/o/h16k B=/root/b timeout 200 bash gpu/h16k/run.sh > /root/o/h16k/console.log 2>&1); echo "h16k rc=$?"
tail -30 /root/o/h16k/console.log
EAI_REQUIRE_GPU=1 timeout 120 /root/b/gpu_bench --gguf none --only 7b --quick --fused true --half-head true \
  --decode-new 128 --decode-new-batched 32 --shapes qwen --schemes fp16,int8-w8a16 --tile k4u2,w16 \
  --batches 2,4,16 --out /root/o/h16k/rows > /root/o/h16k/rows.log 2>&1; echo "rows rc=$?"
cat /root/o/h16k/rows/roofline.md 2>/dev/null | head -30
tar cJf $OUT/h16k.tar.xz -C /root/o h16k
