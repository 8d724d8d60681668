# Session 10, round 3, call F (carry .gpu/g3; after ../session9/call7.sh and ../session9/call2.sh on a
# fresh machine; main 439974b): joins the GGUF; eai-model's whole cuda suite (new: generation
# prefills on the tiled attention, unfused decode steps on the decode kernel); ARC-Easy FP16/INT8/dynamic (dynamic's quantize and dequantize
# kernels without per-element division); GSM8K 200 × 5-shot FP32 and FP16 on the defaults, FP32
# with EAI_TILED_ATTENTION=0 (the generation kernel for prefills: the same-call A/B), transformers
# FP32 batched generate; a timeline of the FP32 GSM8K run (nsys, when there); HellaSwag FP16 once.
set -u
R=$(pwd); S=$R/crates/eai-model/scripts/hf_samples_compare.py
cp $R/.gpu/g3/part.ac /root/g/ && cat /root/g/part.aa /root/g/part.ab /root/g/part.ac > /root/g/SmolLM2-135M-Instruct.Q4_1.gguf && rm /root/g/part.a?
sha256sum /root/g/SmolLM2-135M-Instruct.Q4_1.gguf
mkdir -p /root/cache/models && ln -sf /root/g/SmolLM2-135M-Instruct.Q4_1.gguf /root/cache/models/
O=/root/o/cF; mkdir -p $O /root/w && cd /root/w
G=/root/g/SmolLM2-135M-Instruct.Q4_1.gguf; D=/root/data; B=/root/b; export EAI_REQUIRE_GPU=1 EAI_CACHE=/root/cache
T0=$(date +%s); t() { echo "[t=$(( $(date +%s)-T0 ))s] $*"; }
nvidia-smi --query-gpu=name,driver_version,memory.total,power.limit,clocks.max.sm --format=csv | tee $O/device.txt
timeout 120 $B/cuda --test-threads=1 --nocapture > $O/suite.log 2>&1; t "suite rc=$?"
grep -E "test result|panicked|FAILED" $O/suite.log | tail -12
[ -d hf ] || $B/gpu_bench --gguf $G --only none --hf-dir hf > /dev/null 2>&1; ls hf > /dev/null || echo "no HF dir"
timeout 60 $B/eai study --cuda 0 --model $G --data $D --task gsm8k:200:5 --schemes fp32,fp16 --repeats 1 \
  --baseline 3 --cooldown 0 --out s_gsm > $O/gsm_study.log 2>&1; t "gsm rc=$?"
cp s_gsm/tasks.csv $O/s_gsm_tasks.csv 2>/dev/null; : > $O/hf.jsonl
PYTHONUNBUFFERED=1 timeout 80 python3 $S hf s_gsm/samples/fp32/rep1/samples_gsm8k.jsonl gen hf_gsm_fp32.json --dtype fp32 \
  --min-seconds 1 2>&1 | grep '^{' >> $O/hf.jsonl; t "hf gsm fp32"
timeout 40 $B/eai study --cuda 0 --model $G --data $D --task hellaswag --schemes fp16 --repeats 1 \
  --baseline 0 --cooldown 0 --out s_hs > $O/hs_study.log 2>&1; t "hs rc=$?"; cp s_hs/tasks.csv $O/s_hs_tasks.csv 2>/dev/null
[ "${HSHF:-0}" = 1 ] && { PYTHONUNBUFFERED=1 timeout 100 python3 $S hf s_hs/samples/fp16/rep1/samples_hellaswag.jsonl ll hf_hs.json \
  --dtype fp16 --min-seconds 5 2>&1 | grep '^{' >> $O/hf.jsonl; t "hf hs"; }
EAI_TILED_ATTENTION=0 timeout 40 $B/eai study --cuda 0 --model $G --data $D --task gsm8k:200:5 --schemes fp32 --repeats 1 \
  --baseline 0 --cooldown 0 --out s_gsm_gen > $O/gsm_gen_study.log 2>&1; t "gsm generic-attention rc=$?"
cp s_gsm_gen/tasks.csv $O/s_gsm_gen_tasks.csv 2>/dev/null
timeout 90 $B/eai study --cuda 0 --model $G --data $D --task arc_easy --schemes fp16,int8,dynamic \
  --repeats 2 --baseline 3 --cooldown 0 --out s_arc > $O/arc_study.log 2>&1; t "arc rc=$?"
cp s_arc/tasks.csv $O/s_arc_tasks.csv 2>/dev/null
tar cJf $OUT/cF.tar.xz -C /root/o cF
if [ "${PROFILE:-1}" = 1 ]; then
NS=$(command -v nsys || ls /opt/nvidia/nsight-systems*/bin/nsys /usr/local/cuda*/bin/nsys 2>/dev/null | head -1)
if [ -n "$NS" ]; then
  timeout 60 $NS profile -o $O/gsm_fp32 --force-overwrite true -t cuda,osrt --stats=false $B/eai eval --cuda 0 --model $G \
    --data $D --task gsm8k:200:5 --scheme fp32 --out e_gsm > $O/nsys.log 2>&1; t "nsys rc=$?"
  timeout 60 $NS stats -r cuda_gpu_kern_sum,cuda_api_sum,cuda_gpu_mem_time_sum --format csv -o $O/gsm_fp32 $O/gsm_fp32.nsys-rep > $O/nsys_stats.log 2>&1; t "nsys stats rc=$?"
  rm -f $O/gsm_fp32.nsys-rep $O/gsm_fp32.sqlite
else
  echo "no nsys"; timeout 60 ncu --clock-control none --metrics gpu__time_duration.sum --print-summary per-kernel -c 3000 \
    $B/eai eval --cuda 0 --model $G --data $D --task gsm8k:200:5 --scheme fp32 --out e_gsm > $O/ncu_gsm.txt 2>&1; t "ncu rc=$?"; xz -f $O/ncu_gsm.txt
fi
fi
tail -2 $O/hf.jsonl | cut -c1-420
tar cJf $OUT/cF.tar.xz -C /root/o cF; t done
