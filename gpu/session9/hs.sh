#!/usr/bin/env bash
# Session 9, round 2 (lean, the device budget being short after failed starts): issue 14's HellaSwag
# bar only — gpu/h14h/run.sh's steps 1 (full HellaSwag FP16 `eai study --cuda 0`, 2 repetitions,
# and transformers on the same requests), 4 (the same study with the per-row attention kernel,
# EAI_TILED_ATTENTION=0) and 7 (per-kernel profile), then its summary. ~150 s (LEAN=1: steps 4
# and 7 left out, ~120 s).
set -u
R=$(pwd); S=$R/crates/eai-model/scripts/hf_samples_compare.py; SUM=$R/gpu/h14h/summary.py
W=/root/w_h14h; L=$W/logs; B=/root/b; mkdir -p $L
export EAI_REQUIRE_GPU=1; . /root/env.sh 2>/dev/null
G=/root/g/SmolLM2-135M-Instruct.Q4_1.gguf; D=/root/data
exec > >(tee $OUT/run.log) 2>&1
nvidia-smi --query-gpu=name,driver_version,memory.total,power.limit,clocks.max.sm --format=csv | tee $L/device.txt
cd $W && rm -rf s_hs s_hs_main e_ncu
[ -d hf ] || $B/gpu_bench --gguf $G --only none --hf-dir hf > /dev/null 2>&1; ls hf > /dev/null || echo "no HF dir"
T0=$(date +%s); t() { echo "[t=$(( $(date +%s)-T0 ))s] $*"; }
: > $L/hf.jsonl
timeout 80 $B/eai study --cuda 0 --model $G --data $D --task hellaswag --schemes fp16 --repeats 2 \
  --baseline 5 --cooldown 0 --out s_hs > $L/hs_study.log 2>&1; t "hs study rc=$?"
PYTHONUNBUFFERED=1 timeout 90 python3 $S hf s_hs/samples/fp16/rep1/samples_hellaswag.jsonl ll hf_hs.json \
  --dtype fp16 --min-seconds 5 2>&1 | grep '^{' >> $L/hf.jsonl; t "hf hs"
[ "${LEAN:-0}" = 1 ] || timeout 45 $B/eai_rows study --cuda 0 --model $G --data $D --task hellaswag --schemes fp16 --repeats 1 \
  --baseline 0 --cooldown 0 --out s_hs_main > $L/hs_main_study.log 2>&1; t "hs per-row study rc=$?"
if [ "${LEAN:-0}" != 1 ] && command -v ncu > /dev/null; then
  timeout 45 ncu --clock-control none --metrics gpu__time_duration.sum --print-summary per-kernel -c 1500 \
    $B/eai eval --cuda 0 --model $G --data $D --task hellaswag:4300 --scheme fp16 --batch-size 1200 --out e_ncu \
    > $L/ncu_hs_fp16.txt 2>&1; t "ncu rc=$?"
fi
for s in s_hs s_hs_main; do cp $s/tasks.csv $L/${s}_tasks.csv 2>/dev/null; cp $s/report.md $L/${s}_report.md 2>/dev/null; done
python3 $SUM $L 2>&1 | head -12 | tee $OUT/bars.txt
tar cJf $OUT/raw.tar.xz logs 2>/dev/null
t "done"
