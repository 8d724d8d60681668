# Session 10, call 4 (carry nothing; after ../session9/call9.sh): issue 14's remaining figures on
# today's kernels — a profile over the whole HellaSwag file (3,000 kernels from the middle of the
# passes), ARC-Easy FP16 / INT8 / dynamic and `eai eval` (gpu/h14h/run.sh's steps 2–3), and
# GSM8K 200 × 5-shot FP16 through the batched W16 decode default (eai alone: its tokens/s and
# answers against session 8's FP16 run, which decoded those steps on cuBLAS).
set -u
mkdir -p /root/o/c4 && cd /root/w_h14h
G=/root/g/SmolLM2-135M-Instruct.Q4_1.gguf; D=/root/data; B=/root/b; export EAI_REQUIRE_GPU=1
timeout 60 ncu --clock-control none --metrics gpu__time_duration.sum --print-summary per-kernel \
  --launch-skip 6000 -c 3000 $B/eai eval --cuda 0 --model $G --data $D --task hellaswag \
  --scheme fp16 --batch-size 1200 --out e_ncu_mid > /root/o/c4/ncu_mid.txt 2>&1; echo "ncu rc=$?"
timeout 90 $B/eai study --cuda 0 --model $G --data $D --task arc_easy --schemes fp16,int8,dynamic \
  --repeats 2 --baseline 3 --cooldown 0 --out s_arc > /root/o/c4/arc_study.log 2>&1; echo "arc rc=$?"
cp s_arc/tasks.csv /root/o/c4/s_arc_tasks.csv 2>/dev/null
timeout 40 $B/eai eval --cuda 0 --model $G --data $D --task arc_easy --scheme fp16 --out e_arc \
  > /root/o/c4/eval_arc.log 2>&1; echo "eval rc=$?"; cp e_arc/results.json /root/o/c4/eval_arc_results.json 2>/dev/null
timeout 60 $B/eai study --cuda 0 --model $G --data $D --task gsm8k:200:5 --schemes fp16 --repeats 1 \
  --baseline 5 --cooldown 0 --out s_gsm > /root/o/c4/gsm_study.log 2>&1; echo "gsm rc=$?"
cp s_gsm/tasks.csv /root/o/c4/s_gsm_tasks.csv 2>/dev/null
tar cJf $OUT/c4.tar.xz -C /root/o c4
