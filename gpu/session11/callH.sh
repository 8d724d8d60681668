# Session 11, call H (carry .gpu/g3; after ../session9/call7.sh and ../session9/call2.sh on the
# same machine; main cf57da8). Joins the GGUF; eai-model's whole cuda suite (session 10's
# untested paths: generation prefills on the tiled attention, unfused decode steps on the decode
# kernel, the dynamic scheme's element-wise kernels); GSM8K 200 × 5-shot FP32 and FP16 through
# `eai study --cuda 0` with transformers' batched generate on the same prompts (FP32); the same
# FP32 run with EAI_TILED_ATTENTION=0 (same-call A/B of the generation attention); ARC-Easy
# FP16 / INT8 / dynamic, 2 repeats.
. gpu/session11/prelude.sh cH
timeout 130 $B/cuda --test-threads=1 --nocapture > $O/suite.log 2>&1; t "suite rc=$?"
grep -E "test result|panicked|FAILED" $O/suite.log | tail -12
tar cJf $OUT/cH.tar.xz -C /root/o cH
$B/gpu_bench --gguf $G --only none --hf-dir hf > /dev/null 2>&1; ls hf > /dev/null || echo "no HF dir"
timeout 60 $B/eai study --cuda 0 --model $G --data $D --task gsm8k:200:5 --schemes fp32,fp16 --repeats 1 \
  --baseline 3 --cooldown 0 --out s_gsm > $O/gsm_study.log 2>&1; t "gsm rc=$?"
cp s_gsm/tasks.csv $O/s_gsm_tasks.csv 2>/dev/null; : > $O/hf.jsonl
PYTHONUNBUFFERED=1 timeout 80 python3 $S hf s_gsm/samples/fp32/rep1/samples_gsm8k.jsonl gen hf_gsm_fp32.json --dtype fp32 \
  --min-seconds 1 2>&1 | grep '^{' >> $O/hf.jsonl; t "hf gsm fp32"; cut -c1-400 $O/hf.jsonl
tar cJf $OUT/cH.tar.xz -C /root/o cH
EAI_TILED_ATTENTION=0 timeout 40 $B/eai study --cuda 0 --model $G --data $D --task gsm8k:200:5 --schemes fp32 --repeats 1 \
  --baseline 0 --cooldown 0 --out s_gsm_gen > $O/gsm_gen_study.log 2>&1; t "gsm generic-attention rc=$?"
cp s_gsm_gen/tasks.csv $O/s_gsm_gen_tasks.csv 2>/dev/null
timeout 90 $B/eai study --cuda 0 --model $G --data $D --task arc_easy --schemes fp16,int8,dynamic \
  --repeats 2 --baseline 3 --cooldown 0 --out s_arc > $O/arc_study.log 2>&1; t "arc rc=$?"
cp s_arc/tasks.csv $O/s_arc_tasks.csv 2>/dev/null
tar cJf $OUT/cH.tar.xz -C /root/o cH; t done
