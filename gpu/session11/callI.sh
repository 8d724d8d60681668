# Session 11, call I (right after callH.sh on the same machine; no carry): full HellaSwag FP16
# through `eai study --cuda 0` and transformers on the same requests (FP16, batch 64); a
# per-kernel profile of part of the FP32 GSM8K run (ncu).
set -u
R=$(pwd); S=$R/crates/eai-model/scripts/hf_samples_compare.py
O=/root/o/cI; mkdir -p $O; cd /root/w
G=/root/g/SmolLM2-135M-Instruct.Q4_1.gguf; D=/root/data; B=/root/b; export EAI_REQUIRE_GPU=1 EAI_CACHE=/root/cache
T0=$(date +%s); t() { echo "[t=$(( $(date +%s)-T0 ))s] $*"; }
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $O/device.txt
timeout 45 $B/eai study --cuda 0 --model $G --data $D --task hellaswag --schemes fp16 --repeats 1 \
  --baseline 0 --cooldown 0 --out s_hs > $O/hs_study.log 2>&1; t "hs rc=$?"; cp s_hs/tasks.csv $O/s_hs_tasks.csv 2>/dev/null
: > $O/hf.jsonl
PYTHONUNBUFFERED=1 timeout 110 python3 $S hf s_hs/samples/fp16/rep1/samples_hellaswag.jsonl ll hf_hs.json \
  --dtype fp16 --min-seconds 5 2>&1 | grep '^{' >> $O/hf.jsonl; t "hf hs"; cut -c1-400 $O/hf.jsonl
tar cJf $OUT/cI.tar.xz -C /root/o cI
if [ "${PROFILE:-1}" = 1 ]; then
  # nsys makes no report on these machines (KINDS.md); ncu's per-kernel times of 6,000 launches
  # past the first 3,000 (the later packed prefills and the first decode steps).
  timeout 150 ncu --clock-control none --metrics gpu__time_duration.sum --print-summary per-kernel \
    --launch-skip 3000 -c 6000 $B/eai eval --cuda 0 --model $G --data $D --task gsm8k:200:5 --scheme fp32 \
    --out e_gsm > $O/ncu_gsm.txt 2>&1; t "ncu rc=$?"; xz -f $O/ncu_gsm.txt
fi
tar cJf $OUT/cI.tar.xz -C /root/o cI; t done
