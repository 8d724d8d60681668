#!/usr/bin/env bash
# Issue 14's remaining user-path bars on one H100 (branch h14h, 2026-12-06), about 3.5 minutes:
#
#  1. full HellaSwag (the lossy 10,042-item file) through `eai study --cuda 0`, FP16, 2 repetitions
#     (each window ≥ 5 s), beside transformers FP16 on exactly the requests eai recorded:
#     bar ≥ 5× transformers req/s (lm-eval's request count for both);
#  2. full ARC-Easy `eai study --cuda 0` FP16, INT8 (W8A16) and dynamic, 2 repetitions: INT8 and
#     dynamic ≥ 0.8× FP16 req/s; and the FP16 per-pass time for
#  3. `eai eval --cuda 0` full ARC-Easy FP16 (untimed warm-up pass, then the timed one): within
#     10 % of the study's FP16 per-pass time;
#  4. if time is left: the same HellaSwag study with the lead's main build (/root/b/eai), as the
#     before/after on this machine in this call;
#  5. if time is left: that study at 16,384 and 32,768 tokens per pass (EAI_BATCH_TOKENS; default
#     8,192), for the default's choice;
#  6. if time is left (run before 5): main's gpu_bench scoring the same full HellaSwag pre-tokenized
#     (`loglikelihood_tokens`, ≥ 5 s, FP16): the engine's own rate on this file, the study's ceiling.
#
# Carries .gpu/bin/eai.xz: `cargo build --release --bin eai` of this branch (CUDA is a default
# feature), stripped, xz. Uses /root/b/gpu_bench only to convert the GGUF into the Hugging Face
# folder transformers loads (`--only none --hf-dir hf`), as gpu/h14g/run.sh does. Lead's layout:
# /root/g/SmolLM2-135M-Instruct.Q4_1.gguf, /root/data, python3 with torch, transformers, pynvml.
# Writes $OUT/run.log, $OUT/bars.txt (the bars, printed last) and $OUT/raw.tar.xz (logs, tasks.csv,
# reports, results.json, transformers rows).
set -u
R=$(pwd); S=$R/crates/eai-model/scripts/hf_samples_compare.py; SUM=$R/gpu/h14h/summary.py
B=${W:-/root/w_h14h}/bin; W=${W:-/root/w_h14h}; L=$W/logs; mkdir -p $B $W $L
if [ -f $R/.gpu/bin/eai.xz ]; then xz -dc $R/.gpu/bin/eai.xz > $B/eai; chmod +x $B/eai
else echo "no .gpu/bin/eai.xz: using /root/b/eai (NOT this branch)"; cp /root/b/eai $B/eai; fi
# Overrides for a CPU smoke test of this script (defaults: the GPU run): DEV="--cpu" HS=hellaswag:20
# ARC=arc_easy:20 G=model.gguf DATA=data_root MAIN=none W=/tmp/w OUT=/tmp/out bash gpu/h14h/run.sh
DEV=${DEV:---cuda 0}; HS=${HS:-hellaswag}; ARC=${ARC:-arc_easy}; MAIN=${MAIN:-/root/b/eai}
[ "$DEV" = "--cpu" ] || export EAI_REQUIRE_GPU=1
G=${G:-/root/g/SmolLM2-135M-Instruct.Q4_1.gguf}; D=${DATA:-/root/data}
exec > >(tee $OUT/run.log) 2>&1
nvidia-smi --query-gpu=name,driver_version,memory.total,power.limit,clocks.max.sm --format=csv | tee $L/device.txt
cd $W && rm -rf s_hs s_arc e_arc s_hs_main s_hs_bt* gb hf_*.json
[ -d hf ] || [ "$DEV" = "--cpu" ] || /root/b/gpu_bench --gguf $G --only none --hf-dir hf > /dev/null 2>&1; ls hf > /dev/null || echo "no HF dir"
T0=$(date +%s); t() { echo "[t=$(( $(date +%s)-T0 ))s] $*"; }
hf() { PYTHONUNBUFFERED=1 timeout "$1" python3 $S hf "${@:2}" 2>&1 | grep '^{' >> $L/hf.jsonl; }
: > $L/hf.jsonl

# 1. HellaSwag full, FP16, this branch; transformers on the same requests
timeout 80 $B/eai study $DEV --model $G --data $D --task $HS --schemes fp16 --repeats 2 \
  --baseline 5 --cooldown 0 --out s_hs > $L/hs_study.log 2>&1; t "hs study rc=$?"
hf 90 s_hs/samples/fp16/rep1/samples_hellaswag.jsonl ll hf_hs.json --dtype fp16 --min-seconds 5; t "hf hs"

# 2. ARC-Easy full: FP16, INT8 (W8A16), dynamic
timeout 90 $B/eai study $DEV --model $G --data $D --task $ARC --schemes fp16,int8,dynamic \
  --repeats 2 --baseline 3 --cooldown 0 --out s_arc > $L/arc_study.log 2>&1; t "arc study rc=$?"

# 3. eai eval, full ARC-Easy FP16
timeout 40 $B/eai eval $DEV --model $G --data $D --task $ARC --scheme fp16 --out e_arc > $L/eval_arc.log 2>&1
t "eval rc=$?"

# 4. before/after: main's eai on the same HellaSwag study, if time is left (whole call ≤ ~4 min)
if [ $(( $(date +%s)-T0 )) -lt 175 ] && [ -x "$MAIN" ]; then
  timeout 45 $MAIN study $DEV --model $G --data $D --task $HS --schemes fp16 --repeats 1 \
    --baseline 0 --cooldown 0 --out s_hs_main > $L/hs_main_study.log 2>&1; t "hs main study rc=$?"
fi

# 6. the engine alone on the same full file: gpu_bench (main's) scoring pre-tokenized full
#    HellaSwag with `loglikelihood_tokens`, ≥ 5 s, FP16, shared contexts — the study path's ceiling.
if [ $(( $(date +%s)-T0 )) -lt 185 ] && [ "$DEV" != "--cpu" ]; then
  timeout 60 /root/b/gpu_bench --gguf $G --data $D --out gb --only eval --limit 10 --throughput-limit 10042 \
    --schemes fp16 --throughput-schemes fp16 --share true --min-seconds 5 > $L/gpu_bench_hs.log 2>&1; t "gpu_bench rc=$?"
fi

# 5. pass size: the same HellaSwag study at 16,384 and 32,768 tokens per pass (default 8,192), if
#    time is left — to decide the default with a measurement.
for bt in 16384 32768; do
  if [ $(( $(date +%s)-T0 )) -lt 195 ]; then
    EAI_BATCH_TOKENS=$bt timeout 40 $B/eai study $DEV --model $G --data $D --task $HS --schemes fp16 --repeats 1 \
      --baseline 0 --cooldown 0 --out s_hs_bt$bt > $L/hs_bt${bt}_study.log 2>&1; t "hs batch_tokens $bt rc=$?"
  fi
done

# 7. optional (NCU=1, ~60 s more): per-kernel GPU time of HellaSwag passes (ncu, gpu__time_duration):
#    the first 1,500 kernels of `eai eval` on the first 4,300 documents, longest contexts first
#    (WikiHow passes, like most of the full file's).
if [ "${NCU:-0}" = 1 ] && command -v ncu > /dev/null; then
  timeout 60 ncu --clock-control none --metrics gpu__time_duration.sum --print-summary per-kernel -c 1500 \
    $B/eai eval $DEV --model $G --data $D --task hellaswag:4300 --scheme fp16 --batch-size 1200 --out e_ncu \
    > $L/ncu_hs_fp16.txt 2>&1; t "ncu rc=$?"
fi

for s in s_hs s_arc s_hs_main s_hs_bt16384 s_hs_bt32768; do cp $s/tasks.csv $L/${s}_tasks.csv 2>/dev/null; cp $s/report.md $L/${s}_report.md 2>/dev/null; done
cp e_arc/results.json $L/eval_arc_results.json 2>/dev/null
python3 $SUM $L | tee $OUT/bars.txt
tar cJf $OUT/raw.tar.xz logs 2>/dev/null
t "done"; ls -la $OUT
