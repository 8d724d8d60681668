# Session 12, call E (fresh machine; carry .gpu/b3): main with the final launch path (048c872:
# cuLaunchKernel unless a launch is a programmatic dependent; PDL per scheme by default): the
# PDL / fused-decode / graph GPU tests, then batch-1 decode at Qwen2.5-7B and Mistral-7B shapes
# on the defaults (no --pdl: FP16 without, W8A16 with PDL).
set -u
R=$(pwd); B=/root/b3; O=/root/o/cE; mkdir -p $B $O
for f in $R/.gpu/b3/*.xz; do n=$(basename $f .xz); xz -dc $f > $B/$n && chmod +x $B/$n; done
export EAI_REQUIRE_GPU=1 EAI_CACHE=/root/nocache
T0=$(date +%s); t() { echo "[t=$(( $(date +%s)-T0 ))s] $*"; }
{ echo "commit $(cat $R/.gpu/b3/COMMIT)"; date -u
  nvidia-smi --query-gpu=name,driver_version,memory.total,power.limit,clocks.max.sm --format=csv; } | tee $O/env.log
timeout 100 $B/cuda --test-threads=1 --nocapture pdl_decode fused_decode_matches cuda_graph_decode \
  > $O/test.log 2>&1; t "tests rc=$?"
grep -E "^test |test result|panicked" $O/test.log | cut -c1-90 | head -8
C="--gguf none --only 7b --quick --fused true --half-head true --decode-new 128 --batches 1"
for s in qwen mistral; do
  timeout 45 $B/gpu_bench $C --shapes $s --schemes fp16,int8-w8a16 --out $O/$s > $O/$s.log 2>&1; t "$s rc=$?"
  grep -E "^\| synthetic" $O/$s/roofline.md | grep -v "| – |" | cut -d'|' -f3,5,7,8,11 | head -2
done
tar cJf $OUT/cE.tar.xz -C /root/o cE
