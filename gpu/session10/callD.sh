# Session 10, call D (carry nothing; after callC.sh): issue 14's other figures on today's kernels
# — ARC-Easy FP16 / INT8 / dynamic and `eai eval` (gpu/h14h/run.sh's steps 2–3), and GSM8K 200 ×
# 5-shot FP16 through the batched W16 decode default (eai alone: its tokens/s and answers against
# session 8's FP16 run, which decoded those steps on cuBLAS).
set -u
mkdir -p /root/o/cD && cd /root/w_h14h
G=/root/g/SmolLM2-135M-Instruct.Q4_1.gguf; D=/root/data; B=/root/b; export EAI_REQUIRE_GPU=1
. /root/env.sh 2>/dev/null
timeout 90 $B/eai study --cuda 0 --model $G --data $D --task arc_easy --schemes fp16,int8,dynamic \
  --repeats 2 --baseline 3 --cooldown 0 --out s_arc > /root/o/cD/arc_study.log 2>&1; echo "arc rc=$?"
cp s_arc/tasks.csv /root/o/cD/s_arc_tasks.csv 2>/dev/null
timeout 40 $B/eai eval --cuda 0 --model $G --data $D --task arc_easy --scheme fp16 --out e_arc \
  > /root/o/cD/eval_arc.log 2>&1; echo "eval rc=$?"; cp e_arc/results.json /root/o/cD/eval_arc_results.json 2>/dev/null
timeout 60 $B/eai study --cuda 0 --model $G --data $D --task gsm8k:200:5 --schemes fp16 --repeats 1 \
  --baseline 5 --cooldown 0 --out s_gsm > /root/o/cD/gsm_study.log 2>&1; echo "gsm rc=$?"
cp s_gsm/tasks.csv /root/o/cD/s_gsm_tasks.csv 2>/dev/null; cp -r s_gsm/samples /root/o/cD/gsm_samples 2>/dev/null
tail -3 /root/o/cD/*.log; tar cJf $OUT/cD.tar.xz -C /root/o cD
