#!/usr/bin/env bash
# Issue 14's GPU bars through the user path (`eai study --cuda 0`, `eai eval --cuda 0`) beside
# transformers in the same call, on one H100 (branch h14g, 2026-12-06). About 7 minutes wall.
#
# Carries: .gpu/bin/eai.xz and .gpu/bin/gpu_bench.xz (release builds of this branch; gpu_bench
# only converts the GGUF to a Hugging Face folder for transformers; without them /root/b's are
# used). Uses the lead's layout: model /root/g/SmolLM2-135M-Instruct.Q4_1.gguf, data root
# /root/data, python3 with torch, transformers and pynvml. Brings back $OUT/bars.txt (the bars,
# also printed last), $OUT/run.log and $OUT/raw.tar.xz (logs, tasks.csv, reports, samples,
# transformers rows, ncu summary).
#
#  1. full ARC-Easy, eai study fp32,fp16,int8,dynamic × 2 repeats (≥ 5 s windows) + transformers
#     FP16/FP32 on the same requests: FP16 ≥ 10× req/s and ≤ 0.15× J/req, FP32 ≥ 5× / ≤ 0.25×,
#     INT8 and dynamic ≥ 0.8× eai FP16 req/s, engine busy ≥ 85 %;
#  2. eai eval --cuda 0 full ARC-Easy FP16 (untimed warm-up pass, then the timed one) vs the
#     study's FP16 per-pass time: within 10 %;
#  3. full HellaSwag FP16 study + transformers: ≥ 5× req/s;
#  4. GSM8K 200 × 5-shot, FP16 and FP32 study + transformers generate at both: ≥ 5× tokens/s
#     (FP16), same strict answer ≥ 98 % (FP16; FP32 says whether the FP16 gap is rounding);
#     eai with EAI_GEN_BATCH=1 (one-at-a-time greedy) vs the batched FP16 run: identical texts;
#  5. per-kernel GPU time (ncu, gpu__time_duration) of `eai eval` HellaSwag:300 FP16: where a
#     HellaSwag pass spends its time, for the next session.
set -u
R=$(pwd); S=$R/crates/eai-model/scripts/hf_samples_compare.py; SUM=$R/gpu/h14g/summary.py
B=/root/b_h14g; W=/root/w_h14g; L=$W/logs; mkdir -p $B $W $L
for b in eai gpu_bench; do
  if [ -f $R/.gpu/bin/$b.xz ]; then xz -dc $R/.gpu/bin/$b.xz > $B/$b; chmod +x $B/$b; else cp /root/b/$b $B/$b; fi
done
export EAI_REQUIRE_GPU=1
G=/root/g/SmolLM2-135M-Instruct.Q4_1.gguf; D=/root/data
exec > >(tee $OUT/run.log) 2>&1
nvidia-smi --query-gpu=name,driver_version,memory.total,power.limit,clocks.max.sm --format=csv | tee $L/device.txt
cd $W
$B/gpu_bench --gguf $G --only none --hf-dir hf > /dev/null 2>&1; ls hf > /dev/null || echo "no HF dir"
T0=$(date +%s); t() { echo "[t=$(( $(date +%s)-T0 ))s] $*"; }
hf() { PYTHONUNBUFFERED=1 timeout "$1" python3 $S hf "${@:2}" 2>&1 | grep '^{' >> $L/hf.jsonl; }

# 1. ARC-Easy, 4 schemes × 2 repeats; transformers FP16 and FP32
timeout 120 $B/eai study --cuda 0 --model $G --data $D --task arc_easy --schemes fp32,fp16,int8,dynamic \
  --repeats 2 --baseline 5 --cooldown 0 --out s_arc > $L/arc_study.log 2>&1; t "arc study rc=$?"
for d in fp16 fp32; do hf 50 s_arc/samples/fp16/rep1/samples_arc_easy.jsonl ll hf_arc_$d.json --dtype $d --min-seconds 5; done
t "hf arc"

# 2. eai eval, full ARC-Easy FP16
timeout 60 $B/eai eval --cuda 0 --model $G --data $D --task arc_easy --scheme fp16 --out e_arc > $L/eval_arc.log 2>&1
t "eval rc=$?"

# 3. HellaSwag full, FP16
[ "${SKIP_HS:-0}" = 1 ] || timeout 90 $B/eai study --cuda 0 --model $G --data $D --task hellaswag --schemes fp16 --repeats 1 \
  --baseline 5 --cooldown 0 --out s_hs > $L/hs_study.log 2>&1; t "hs study rc=$?"
[ "${SKIP_HS:-0}" = 1 ] || hf 100 s_hs/samples/fp16/rep1/samples_hellaswag.jsonl ll hf_hs.json --dtype fp16 --min-seconds 5; t "hf hs"

# 4. GSM8K 200 × 5-shot: FP16 and FP32 both sides, then eai one at a time
timeout 90 $B/eai study --cuda 0 --model $G --data $D --task gsm8k:200:5 --schemes fp16,fp32 --repeats 1 \
  --baseline 5 --cooldown 0 --out s_gsm > $L/gsm_study.log 2>&1; t "gsm study rc=$?"
for d in fp16 fp32; do hf 110 s_gsm/samples/$d/rep1/samples_gsm8k.jsonl gen hf_gsm_$d.json --dtype $d --min-seconds 1; t "hf gsm $d"; done
left() { [ $(( $(date +%s)-T0 )) -lt $1 ]; }  # keep the whole call under ~9 minutes
[ "${SKIP_GEN1:-0}" != 1 ] && left 420 && EAI_GEN_BATCH=1 timeout 90 $B/eai study --cuda 0 --model $G --data $D --task gsm8k:200:5 --schemes fp16 --repeats 1 \
  --baseline 0 --cooldown 0 --out s_gsm1 > $L/gsm1_study.log 2>&1; t "gsm one-at-a-time rc=$?"

# 5. per-kernel GPU time (ncu; skipped if absent)
if [ "${NCU:-0}" = 1 ] && command -v ncu > /dev/null && left 470; then
  timeout 50 ncu --clock-control none --metrics gpu__time_duration.sum --print-summary per-kernel -c 3000 \
    $B/eai eval --cuda 0 --model $G --data $D --task hellaswag:300 --scheme fp16 --out e_ncu > $L/ncu_hs_fp16.txt 2>&1
  t "ncu rc=$?"
fi

# 6. eai-model's GPU tests (continuous batching = one at a time, the 70,000-row prefill, parity
#    with the f32 head pinned), when the lead carries the release test binary as
#    .gpu/bin/cuda_test.xz (`cargo test --release -p eai-model --features cuda --test cuda --no-run`).
if [ -f $R/.gpu/bin/cuda_test.xz ]; then xz -dc $R/.gpu/bin/cuda_test.xz > $B/cuda_test; chmod +x $B/cuda_test
elif [ -x /root/b/cuda_tests ]; then cp /root/b/cuda_tests $B/cuda_test; fi
if [ -x $B/cuda_test ] && left 500; then
  (cd $R/crates/eai-model && timeout 60 $B/cuda_test --test-threads 1 > $L/cuda_test.log 2>&1); t "cuda tests rc=$?"
  grep -E "^test result|FAILED|panicked" $L/cuda_test.log | head
fi

for s in s_arc s_hs s_gsm s_gsm1; do cp $s/tasks.csv $L/${s}_tasks.csv 2>/dev/null; cp $s/report.md $L/${s}_report.md 2>/dev/null; done
cp e_arc/results.json $L/eval_arc_results.json 2>/dev/null
python3 $SUM $W $L | tee $OUT/bars.txt
tar cJf $OUT/raw.tar.xz logs s_gsm/samples s_gsm1/samples 2>/dev/null
t "done"; ls -la $OUT
