# Session 12, call A (fresh machine; carry .gpu/b1 .gpu/q1): unpack main's release binaries and
# the GGUF's first part; GPU tests of programmatic dependent launch (PDL) and the fused decode;
# issue 16's batch-1 decode at Qwen2.5-7B and Mistral-7B shapes (FP16, W8A16) with PDL on and
# off (CUDA graph on and off), and ncu per-kernel times and DRAM bytes of one decode step
# (4 layers + head).
set -u
R=$(pwd); B=/root/b; O=/root/o/cA; mkdir -p $B /root/g $O
cp $R/.gpu/q1/part.aa /root/g/
for f in $R/.gpu/b1/*.xz; do n=$(basename $f .xz); xz -dc $f > $B/$n && chmod +x $B/$n; done
export EAI_REQUIRE_GPU=1 EAI_CACHE=/root/nocache
T0=$(date +%s); t() { echo "[t=$(( $(date +%s)-T0 ))s] $*"; }
{ echo "commit $(cat $R/.gpu/b1/COMMIT)"; date -u; ldd --version | head -1
  nvidia-smi --query-gpu=name,driver_version,memory.total,power.limit,clocks.max.sm --format=csv; nproc; } | tee $O/env.log
timeout 140 $B/cuda --test-threads=1 --nocapture pdl_decode fused_decode_matches cuda_graph_decode decode_gemv_matches \
  continuous_batching > $O/test.log 2>&1; t "tests rc=$?"
grep -E "^test |test result|panicked|PDL on" $O/test.log | head -20
C="--gguf none --only 7b --quick --fused true --half-head true --decode-new 128"
timeout 150 $B/gpu_bench $C --shapes qwen --schemes fp16,int8-w8a16 --graph true,false --pdl true,false \
  --batches 1 --out $O/qwen > $O/qwen.log 2>&1; t "qwen rc=$?"
timeout 100 $B/gpu_bench $C --shapes mistral --schemes fp16,int8-w8a16 --pdl true,false --batches 1 \
  --out $O/mistral > $O/mistral.log 2>&1; t "mistral rc=$?"
grep -E "error|panicked" $O/qwen.log $O/mistral.log | head -4
M=gpu__time_duration.sum,dram__bytes_read.sum,dram__bytes_write.sum,launch__grid_size,launch__block_size,launch__registers_per_thread
timeout 150 ncu --profile-from-start off --clock-control none --cache-control none --csv --metrics $M \
  $B/gpu_bench --gguf none --only profile --shapes qwen4 --schemes fp16,int8-w8a16 --fused true \
  > $O/ncu_qwen4.csv 2> $O/ncu_qwen4.err; t "ncu rc=$?"
wc -l $O/ncu_qwen4.csv; tail -3 $O/ncu_qwen4.err
cat $O/qwen/roofline.md $O/mistral/roofline.md 2>/dev/null | grep -E "^\|" | cut -c1-200
tar cJf $OUT/cA.tar.xz -C /root/o cA
