# Session 13, call D (carry .gpu/b5 .gpu/i1; calls A-C never ran: machines refused or taken
# back): batch-1 and batch-8 decode at Qwen2.5-7B and Mistral-7B shapes on the defaults, build
# b5 (2d40863, later reverted) beside ef626dc (b4's gpu_bench, carried in b5 as gpu_bench_ef626dc) and
# 048c872 (session 12's final launch path); the decode GPU tests on b5; then the int8 wgmma GEMM
# test and bench (.gpu/i1/run.sh).
set -u
R=$(pwd); B=/root/b5; O=$OUT/cD; mkdir -p $B $O
for f in $R/.gpu/b5/*.xz; do n=$(basename $f .xz); xz -dc $f > $B/$n && chmod +x $B/$n; done
export EAI_REQUIRE_GPU=1 EAI_CACHE=/root/nocache
T0=$(date +%s); t() { echo "[t=$(( $(date +%s)-T0 ))s] $*"; }
{ echo "commit $(cat $R/.gpu/b5/COMMIT) (mid: ef626dc, old: 048c872)"; date -u
  nvidia-smi --query-gpu=name,driver_version,memory.total,power.limit,clocks.max.sm --format=csv; } | tee $O/env.log
C="--gguf none --only 7b --quick --fused true --half-head true --decode-new 128"
for s in qwen mistral; do
  for v in new old mid; do
    G=$B/gpu_bench; [ $v = old ] && G=$B/gpu_bench_048c872; [ $v = mid ] && G=$B/gpu_bench_ef626dc
    timeout 50 $G $C --shapes $s --schemes fp16,int8-w8a16 --batches 1,8 --out $O/${s}_$v > $O/${s}_$v.log 2>&1
    t "$s $v rc=$?"
    grep -E "^\| synthetic" $O/${s}_$v/roofline.md | grep -v "| – |" | cut -d'|' -f3,5,6,8,11 | head -4
  done
done
timeout 110 $B/cuda --test-threads=1 pdl_decode fused_decode_matches cuda_graph_decode \
  continuous_batching > $O/test.log 2>&1; t "tests rc=$?"
grep -E "^test |test result|panicked" $O/test.log | cut -c1-100 | head -8
env -u EAI_CACHE bash $R/.gpu/i1/run.sh 2>&1 | tail -30
t "igemm done"
