# Session 11, call J (carry .gpu/g3; after ../session9/call7.sh and ../session9/call2.sh on a fresh
# machine). Main with the decode rows of mixed generation passes on the decode attention kernel
# (`lead_rows`): the whole cuda suite (the new mixed-pass generation test, the T8 GEMV merge);
# GSM8K 200 × 5-shot FP32 and FP16 through `eai study --cuda 0`, transformers' batched generate
# on the same FP32 prompts, the FP32 run with EAI_TILED_ATTENTION=0 (same-call A/B); ARC-Easy
# FP16 and dynamic (W8A8 per token: its row kernels now one warp per row) × 2 through `eai study
# --cuda 0`; per-kernel profiles of ARC-Easy's dynamic and FP16 schemes (ncu, 1,500 launches past
# the first 1,500).
. gpu/session11/prelude.sh cJ
timeout 130 $B/cuda --test-threads=1 --nocapture > $O/suite.log 2>&1; t "suite rc=$?"
grep -E "test result|panicked|FAILED|passes leading|decode vs generic" $O/suite.log | tail -12
tar cJf $OUT/cJ.tar.xz -C /root/o cJ
$B/gpu_bench --gguf $G --only none --hf-dir hf > /dev/null 2>&1; ls hf > /dev/null || echo "no HF dir"
timeout 60 $B/eai study --cuda 0 --model $G --data $D --task gsm8k:200:5 --schemes fp32,fp16 --repeats 1 \
  --baseline 3 --cooldown 0 --out s_gsm > $O/gsm_study.log 2>&1; t "gsm rc=$?"
cp s_gsm/tasks.csv $O/s_gsm_tasks.csv 2>/dev/null; : > $O/hf.jsonl
PYTHONUNBUFFERED=1 timeout 80 python3 $S hf s_gsm/samples/fp32/rep1/samples_gsm8k.jsonl gen hf_gsm_fp32.json --dtype fp32 \
  --min-seconds 1 2>&1 | grep '^{' >> $O/hf.jsonl; t "hf gsm fp32"; cut -c1-400 $O/hf.jsonl
tar cJf $OUT/cJ.tar.xz -C /root/o cJ
EAI_TILED_ATTENTION=0 timeout 40 $B/eai study --cuda 0 --model $G --data $D --task gsm8k:200:5 --schemes fp32 --repeats 1 \
  --baseline 0 --cooldown 0 --out s_gsm_gen > $O/gsm_gen_study.log 2>&1; t "gsm generic-attention rc=$?"
cp s_gsm_gen/tasks.csv $O/s_gsm_gen_tasks.csv 2>/dev/null
tar cJf $OUT/cJ.tar.xz -C /root/o cJ
timeout 70 $B/eai study --cuda 0 --model $G --data $D --task arc_easy --schemes fp16,dynamic \
  --repeats 2 --baseline 3 --cooldown 0 --out s_arc > $O/arc_study.log 2>&1; t "arc rc=$?"
cp s_arc/tasks.csv $O/s_arc_tasks.csv 2>/dev/null
tar cJf $OUT/cJ.tar.xz -C /root/o cJ
for sch in dynamic fp16; do
  timeout 75 ncu --clock-control none --metrics gpu__time_duration.sum --print-summary per-kernel \
    --launch-skip 1500 -c 1500 $B/eai eval --cuda 0 --model $G --data $D --task arc_easy --scheme $sch \
    --out e_arc_$sch > $O/ncu_arc_$sch.txt 2>&1; t "ncu $sch rc=$?"; xz -f $O/ncu_arc_$sch.txt
  tar cJf $OUT/cJ.tar.xz -C /root/o cJ
done
tar cJf $OUT/cJ.tar.xz -C /root/o cJ; t done
