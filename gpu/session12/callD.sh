# Session 12, call D (fresh machine; carry .gpu/b2): the decode norm prologue without its
# dependent-load chain (66e14b8) beside call A's build (27b2834) in the same call: GPU tests,
# batch-1 and batch-4 decode at Qwen2.5-7B and Mistral-7B shapes (FP16, W8A16; PDL on and off;
# CUDA graph on), and ncu per-kernel times of one decode step (4 layers + head).
set -u
R=$(pwd); B=/root/b2; O=/root/o/cD; mkdir -p $B $O
for f in $R/.gpu/b2/*.xz; do n=$(basename $f .xz); xz -dc $f > $B/$n && chmod +x $B/$n; done
export EAI_REQUIRE_GPU=1 EAI_CACHE=/root/nocache
T0=$(date +%s); t() { echo "[t=$(( $(date +%s)-T0 ))s] $*"; }
{ echo "commit $(cat $R/.gpu/b2/COMMIT) (old: 27b2834)"; date -u
  nvidia-smi --query-gpu=name,driver_version,memory.total,power.limit,clocks.max.sm --format=csv; } | tee $O/env.log
timeout 130 $B/cuda --test-threads=1 --nocapture pdl_decode fused_decode_matches cuda_graph_decode \
  decode_gemv_matches w16_decode > $O/test.log 2>&1; t "tests rc=$?"
grep -E "^test |test result|panicked" $O/test.log | head -12
C="--gguf none --only 7b --quick --fused true --half-head true --decode-new 128 --pdl true,false"
for s in qwen mistral; do
  for v in new old; do
    G=$B/gpu_bench; [ $v = old ] && G=$B/gpu_bench_27b2834
    timeout 90 $G $C --shapes $s --schemes fp16,int8-w8a16 --batches 1,4 --out $O/${s}_$v > $O/${s}_$v.log 2>&1
    t "$s $v rc=$?"
  done
done
M=gpu__time_duration.sum,dram__bytes_read.sum,launch__grid_size,launch__registers_per_thread
timeout 60 ncu --profile-from-start off --clock-control none --cache-control none --csv --metrics $M \
  $B/gpu_bench --gguf none --only profile --shapes qwen4 --schemes fp16,int8-w8a16 --fused true \
  > $O/ncu_qwen4.csv 2> $O/ncu_qwen4.err; t "ncu rc=$?"
for f in $O/*_new/roofline.md $O/*_old/roofline.md; do echo "== $f"; grep -E "^\| synthetic" $f | grep -v "| – |" | cut -d'|' -f3,5,6,8,11 ; done
tar cJf $OUT/cD.tar.xz -C /root/o cD
