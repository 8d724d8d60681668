#!/usr/bin/env bash
# Session 10: issue 14's HellaSwag bar on the warp-per-row RMSNorm, vectorized SwiGLU and 16-bit
# gate/up matrix — full HellaSwag FP16 `eai study --cuda 0` (2 repetitions), transformers on the
# same requests, the same study with EAI_HALF_GATE_UP=0 (f32 gate/up, same binary) as the
# same-call A/B, and a per-kernel profile from the middle of the file (3,000 kernels after
# 6,000). ~200 s.
set -u
R=$(pwd); S=$R/crates/eai-model/scripts/hf_samples_compare.py; SUM=$R/gpu/h14h/summary.py
W=/root/w_h14h; L=$W/logs; B=/root/b; mkdir -p $L
export EAI_REQUIRE_GPU=1; . /root/env.sh 2>/dev/null
G=/root/g/SmolLM2-135M-Instruct.Q4_1.gguf; D=/root/data
exec > >(tee $OUT/run.log) 2>&1
nvidia-smi --query-gpu=name,driver_version,memory.total,power.limit,clocks.max.sm --format=csv | tee $L/device.txt
cd $W && rm -rf s_hs s_hs_main e_ncu_mid
[ -d hf ] || $B/gpu_bench --gguf $G --only none --hf-dir hf > /dev/null 2>&1; ls hf > /dev/null || echo "no HF dir"
T0=$(date +%s); t() { echo "[t=$(( $(date +%s)-T0 ))s] $*"; }
: > $L/hf.jsonl
timeout 90 $B/eai study --cuda 0 --model $G --data $D --task hellaswag --schemes fp16 --repeats 2 \
  --baseline 5 --cooldown 0 --out s_hs > $L/hs_study.log 2>&1; t "hs study rc=$?"
PYTHONUNBUFFERED=1 timeout 90 python3 $S hf s_hs/samples/fp16/rep1/samples_hellaswag.jsonl ll hf_hs.json \
  --dtype fp16 --min-seconds 5 2>&1 | grep '^{' >> $L/hf.jsonl; t "hf hs"
EAI_HALF_GATE_UP=0 timeout 40 $B/eai study --cuda 0 --model $G --data $D --task hellaswag --schemes fp16 --repeats 1 \
  --baseline 0 --cooldown 0 --out s_hs_main > $L/hs_main_study.log 2>&1; t "hs f32 gate/up study rc=$?"
if command -v ncu > /dev/null; then
  timeout 50 ncu --clock-control none --metrics gpu__time_duration.sum --print-summary per-kernel \
    --launch-skip 6000 -c 3000 $B/eai eval --cuda 0 --model $G --data $D --task hellaswag \
    --scheme fp16 --batch-size 1200 --out e_ncu_mid > $L/ncu_mid.txt 2>&1; t "ncu rc=$?"
  xz -f $L/ncu_mid.txt
fi
for s in s_hs s_hs_main; do cp $s/tasks.csv $L/${s}_tasks.csv 2>/dev/null; cp $s/report.md $L/${s}_report.md 2>/dev/null; done
python3 $SUM $L 2>&1 | head -12 | tee $OUT/bars.txt
tar cJf $OUT/raw.tar.xz logs 2>/dev/null
t "done"
