# Session 11, call L (carry .gpu/g3; after ../session9/call7.sh and ../session9/call2.sh on a fresh
# machine, meant for an H200: the machine where session 10 left GSM8K at 4.58× and ARC-Easy
# dynamic at 0.78×). Main 57fe183, no tests (callJ/callK ran them on an H100): GSM8K 200 × 5-shot
# FP32 through `eai study --cuda 0` with transformers' batched generate on the same prompts;
# ARC-Easy FP16 and dynamic, 1 repetition each (windows ≥ 5 s).
. gpu/session11/prelude.sh cL
$B/gpu_bench --gguf $G --only none --hf-dir hf > /dev/null 2>&1; t "hf dir"
timeout 100 $B/eai study --cuda 0 --model $G --data $D --task gsm8k:200:5 --schemes fp32 --repeats 1 \
  --baseline 3 --cooldown 0 --out s_gsm > $O/gsm_study.log 2>&1; t "gsm rc=$?"
cp s_gsm/tasks.csv $O/s_gsm_tasks.csv 2>/dev/null; : > $O/hf.jsonl
tar cJf $OUT/cL.tar.xz -C /root/o cL
PYTHONUNBUFFERED=1 timeout 70 python3 $S hf s_gsm/samples/fp32/rep1/samples_gsm8k.jsonl gen hf_gsm_fp32.json --dtype fp32 \
  --min-seconds 1 2>&1 | grep '^{' >> $O/hf.jsonl; t "hf gsm fp32"; cut -c1-300 $O/hf.jsonl
tar cJf $OUT/cL.tar.xz -C /root/o cL
timeout 45 $B/eai study --cuda 0 --model $G --data $D --task arc_easy --schemes fp16,dynamic \
  --repeats 1 --baseline 0 --cooldown 0 --out s_arc > $O/arc_study.log 2>&1; t "arc rc=$?"
cp s_arc/tasks.csv $O/s_arc_tasks.csv 2>/dev/null
tar cJf $OUT/cL.tar.xz -C /root/o cL; t done
