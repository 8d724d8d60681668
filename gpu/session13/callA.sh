# Session 13, call A (carry .gpu/b4): 16-warp decode attention with V loaded beside K, and the
# one-round-trip norm prologue (4231a38, "mid"), + scales loaded early (HEAD, "new"), beside 048c872 (session 12's final launch path, never
# run on a GPU before) in the same call: GPU tests of the decode paths, batch-1 and batch-8
# decode at Qwen2.5-7B and Mistral-7B shapes on the defaults, ncu per-kernel times of one step.
set -u
R=$(pwd); B=/root/b4; O=$OUT/cA; mkdir -p $B $O
for f in $R/.gpu/b4/*.xz; do n=$(basename $f .xz); xz -dc $f > $B/$n && chmod +x $B/$n; done
export EAI_REQUIRE_GPU=1 EAI_CACHE=/root/nocache
T0=$(date +%s); t() { echo "[t=$(( $(date +%s)-T0 ))s] $*"; }
{ echo "commit $(cat $R/.gpu/b4/COMMIT) (old: 048c872)"; date -u
  nvidia-smi --query-gpu=name,driver_version,memory.total,power.limit,clocks.max.sm --format=csv; } | tee $O/env.log
timeout 200 $B/cuda --test-threads=1 --nocapture pdl_decode fused_decode_matches cuda_graph_decode \
  decode_gemv_matches w16_decode continuous_batching packed_batch > $O/test.log 2>&1; t "tests rc=$?"
grep -E "^test |test result|panicked" $O/test.log | cut -c1-100 | head -12
C="--gguf none --only 7b --quick --fused true --half-head true --decode-new 128"
for s in qwen mistral; do
  for v in new mid old; do
    G=$B/gpu_bench; [ $v = old ] && G=$B/gpu_bench_048c872; [ $v = mid ] && G=$B/gpu_bench_4231a38
    timeout 70 $G $C --shapes $s --schemes fp16,int8-w8a16 --batches 1,8 --out $O/${s}_$v > $O/${s}_$v.log 2>&1
    t "$s $v rc=$?"
    grep -E "^\| synthetic" $O/${s}_$v/roofline.md | grep -v "| – |" | cut -d'|' -f3,5,6,8,11 | head -4
  done
done
M=gpu__time_duration.sum,dram__bytes_read.sum,launch__grid_size,launch__registers_per_thread
for s in qwen4 mistral4; do
  timeout 60 ncu --profile-from-start off --clock-control none --cache-control none --csv --metrics $M \
    $B/gpu_bench --gguf none --only profile --shapes $s --schemes fp16,int8-w8a16 --fused true \
    > $O/ncu_$s.csv 2> $O/ncu_$s.err; t "ncu $s rc=$?"
  python3 $R/gpu/session12/ncu_summary.py $O/ncu_$s.csv | tail -9
done
# Where a W8A16 layer's big GEMVs and the attention lose time: stall reasons, memory, occupancy
timeout 100 ncu --profile-from-start off --clock-control none -k regex:'dg_i8_(ns|nr|xp_k4u2)_m1|attention_dec' \
  -c 10 --section SpeedOfLight --section MemoryWorkloadAnalysis --section WarpStateStats \
  --section Occupancy --section LaunchStats --csv $B/gpu_bench --gguf none --only profile --shapes mistral4 \
  --schemes int8-w8a16 --fused true > $O/ncu_detail.csv 2> $O/ncu_detail.err; t "ncu detail rc=$?"
gzip -9 $O/*.csv
