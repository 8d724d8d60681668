# Session 10, round 2, call E (carry .gpu/g3; after ../session9/call7.sh and ../session9/call2.sh on a
# fresh machine): joins the GGUF; eai-model's whole cuda suite (revised bounds); HellaSwag FP16
# with the 16-bit gate/up matrix on and off, twice each (ABAB, same binary: the same-call A/B);
# ARC-Easy FP32/FP16/INT8/dynamic and transformers FP16/FP32 on the same requests; `eai eval`;
# GSM8K 200 × 5-shot FP32/FP16 and transformers' batched generate at FP32. ~330 s.
set -u
R=$(pwd); S=$R/crates/eai-model/scripts/hf_samples_compare.py
cp $R/.gpu/g3/part.ac /root/g/ && cat /root/g/part.aa /root/g/part.ab /root/g/part.ac > /root/g/SmolLM2-135M-Instruct.Q4_1.gguf && rm /root/g/part.a?
sha256sum /root/g/SmolLM2-135M-Instruct.Q4_1.gguf
mkdir -p /root/cache/models && ln -sf /root/g/SmolLM2-135M-Instruct.Q4_1.gguf /root/cache/models/
O=/root/o/cE; mkdir -p $O /root/w && cd /root/w
G=/root/g/SmolLM2-135M-Instruct.Q4_1.gguf; D=/root/data; B=/root/b; export EAI_REQUIRE_GPU=1 EAI_CACHE=/root/cache
T0=$(date +%s); t() { echo "[t=$(( $(date +%s)-T0 ))s] $*"; }
nvidia-smi --query-gpu=name,driver_version,memory.total,power.limit,clocks.max.sm --format=csv | tee $O/device.txt
timeout 120 $B/cuda --test-threads=1 --nocapture > $O/suite.log 2>&1; t "suite rc=$?"
grep -E "test result|panicked|FAILED|^shape|16-bit" $O/suite.log | tail -30
[ -d hf ] || $B/gpu_bench --gguf $G --only none --hf-dir hf > /dev/null 2>&1; ls hf > /dev/null || echo "no HF dir"
for i in 1 2; do
  timeout 40 $B/eai study --cuda 0 --model $G --data $D --task hellaswag --schemes fp16 --repeats 1 \
    --baseline 0 --cooldown 0 --out hs_on$i > $O/hs_on$i.log 2>&1; t "hs half gate/up on rc=$?"
  EAI_HALF_GATE_UP=0 timeout 40 $B/eai study --cuda 0 --model $G --data $D --task hellaswag --schemes fp16 --repeats 1 \
    --baseline 0 --cooldown 0 --out hs_off$i > $O/hs_off$i.log 2>&1; t "hs half gate/up off rc=$?"
done
for s in hs_on1 hs_off1 hs_on2 hs_off2; do cp $s/tasks.csv $O/${s}_tasks.csv; done 2>/dev/null
timeout 100 $B/eai study --cuda 0 --model $G --data $D --task arc_easy --schemes fp32,fp16,int8,dynamic \
  --repeats 2 --baseline 3 --cooldown 0 --out s_arc > $O/arc_study.log 2>&1; t "arc rc=$?"
cp s_arc/tasks.csv $O/s_arc_tasks.csv 2>/dev/null; : > $O/hf.jsonl
for d in fp16 fp32; do PYTHONUNBUFFERED=1 timeout 60 python3 $S hf s_arc/samples/$d/rep1/samples_arc_easy.jsonl ll hf_arc_$d.json \
  --dtype $d --min-seconds 5 2>&1 | grep '^{' >> $O/hf.jsonl; t "hf arc $d"; done
timeout 40 $B/eai eval --cuda 0 --model $G --data $D --task arc_easy --scheme fp16 --out e_arc \
  > $O/eval_arc.log 2>&1; t "eval rc=$?"; cp e_arc/results.json $O/eval_arc_results.json 2>/dev/null
timeout 60 $B/eai study --cuda 0 --model $G --data $D --task gsm8k:200:5 --schemes fp32,fp16 --repeats 1 \
  --baseline 3 --cooldown 0 --out s_gsm > $O/gsm_study.log 2>&1; t "gsm rc=$?"
cp s_gsm/tasks.csv $O/s_gsm_tasks.csv 2>/dev/null
PYTHONUNBUFFERED=1 timeout 80 python3 $S hf s_gsm/samples/fp32/rep1/samples_gsm8k.jsonl gen hf_gsm_fp32.json --dtype fp32 \
  --min-seconds 1 2>&1 | grep '^{' >> $O/hf.jsonl; t "hf gsm fp32"
tail -4 $O/hf.jsonl | cut -c1-400
tar cJf $OUT/cE.tar.xz -C /root/o cE; t done
