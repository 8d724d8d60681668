# Session 13, call C (chained on call B's warm machine; carry .gpu/b5 .gpu/r1): the rope
# epilogue's inputs loaded early (b5) beside call B's HEAD build (/root/b4, if the machine kept
# it), batch 1 and 8 at both 7B shapes; then the 16-bit-source quantize variant (.gpu/r1/run.sh).
set -u
R=$(pwd); B=/root/b5; O=$OUT/cC; mkdir -p $B $O
for f in $R/.gpu/b5/*.xz; do n=$(basename $f .xz); xz -dc $f > $B/$n && chmod +x $B/$n; done
export EAI_REQUIRE_GPU=1 EAI_CACHE=/root/nocache
T0=$(date +%s); t() { echo "[t=$(( $(date +%s)-T0 ))s] $*"; }
{ echo "commit $(cat $R/.gpu/b5/COMMIT) (old: $(cat $R/.gpu/b4/COMMIT 2>/dev/null))"; date -u
  nvidia-smi --query-gpu=name,driver_version,memory.total,power.limit,clocks.max.sm --format=csv; } | tee $O/env.log
C="--gguf none --only 7b --quick --fused true --half-head true --decode-new 128"
for s in qwen mistral; do
  for v in b5 b4; do
    G=/root/$v/gpu_bench; [ -x $G ] || continue
    timeout 60 $G $C --shapes $s --schemes fp16,int8-w8a16 --batches 1,8 --out $O/${s}_$v > $O/${s}_$v.log 2>&1
    t "$s $v rc=$?"
    grep -E "^\| synthetic" $O/${s}_$v/roofline.md | grep -v "| – |" | cut -d'|' -f3,5,6,8,11 | head -4
  done
done
timeout 60 $B/cuda --test-threads=1 fused_decode_matches pdl_decode > $O/test.log 2>&1; t "tests rc=$?"
grep -E "test result|panicked" $O/test.log | head -3
bash $R/.gpu/r1/run.sh 2>&1 | tail -40
t "qrow done"
