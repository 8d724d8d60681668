# Session 12, call A (fresh machine; carry .gpu/b1 .gpu/q1): unpack main's release binaries and
# the GGUF's first part; issue 16's batch-1 decode at Qwen2.5-7B shapes (FP16, W8A16; CUDA graph
# on and off) and ncu per-kernel times and DRAM bytes of one decode step (4 layers + head).
set -u
R=$(pwd); B=/root/b; O=/root/o/cA; mkdir -p $B /root/g $O
cp $R/.gpu/q1/part.aa /root/g/
for f in $R/.gpu/b1/*.xz; do n=$(basename $f .xz); xz -dc $f > $B/$n && chmod +x $B/$n; done
export EAI_REQUIRE_GPU=1 EAI_CACHE=/root/nocache
T0=$(date +%s); t() { echo "[t=$(( $(date +%s)-T0 ))s] $*"; }
{ echo "commit $(cat $R/.gpu/b1/COMMIT)"; date -u; ldd --version | head -1
  nvidia-smi --query-gpu=name,driver_version,memory.total,power.limit,clocks.max.sm --format=csv; nproc; } | tee $O/env.log
C="--gguf none --only 7b --quick --fused true --half-head true --decode-new 128"
timeout 150 $B/gpu_bench $C --shapes qwen --schemes fp16,int8-w8a16 --graph true,false --batches 1 \
  --out $O/qwen > $O/qwen.log 2>&1; t "qwen rc=$?"
grep -E "^speed|decode" $O/qwen.log | head -12
M=gpu__time_duration.sum,dram__bytes_read.sum,dram__bytes_write.sum,launch__grid_size,launch__block_size,launch__registers_per_thread
timeout 200 ncu --profile-from-start off --clock-control none --cache-control none --csv --metrics $M \
  $B/gpu_bench --gguf none --only profile --shapes qwen4 --schemes fp16,int8-w8a16 --fused true \
  > $O/ncu_qwen4.csv 2> $O/ncu_qwen4.err; t "ncu rc=$?"
wc -l $O/ncu_qwen4.csv; tail -3 $O/ncu_qwen4.err
cat $O/qwen/roofline.md 2>/dev/null | tail -8
tar cJf $OUT/cA.tar.xz -C /root/o cA
