# Session 11, call K (carry .gpu/g3; after ../session9/call7.sh and ../session9/call2.sh on a fresh
# machine). Main with W8A8's SwiGLU row held in registers (`swiglu_q8_acc_r16`, FFN ≤ 2,048):
# the W8A8 GPU tests against the CPU (every scheme, shared contexts, the int8 heads, graphs);
# ARC-Easy FP16 and dynamic × 2 through `eai study --cuda 0`; ncu per-kernel times of the dynamic
# scheme (1,500 launches past the first 1,500, as callJ).
. gpu/session11/prelude.sh cK
timeout 100 $B/cuda --test-threads=1 --nocapture tiny_model_matches shared_contexts half_head int8_head \
  cuda_graph bloom_gpu_matches > $O/tests.log 2>&1; t "tests rc=$?"
grep -E "test result|panicked|FAILED|w8a8" $O/tests.log | tail -8
tar cJf $OUT/cK.tar.xz -C /root/o cK
timeout 70 $B/eai study --cuda 0 --model $G --data $D --task arc_easy --schemes fp16,dynamic \
  --repeats 2 --baseline 3 --cooldown 0 --out s_arc > $O/arc_study.log 2>&1; t "arc rc=$?"
cp s_arc/tasks.csv $O/s_arc_tasks.csv 2>/dev/null
tar cJf $OUT/cK.tar.xz -C /root/o cK
timeout 45 ncu --clock-control none --metrics gpu__time_duration.sum --print-summary per-kernel \
  --launch-skip 1500 -c 1500 $B/eai eval --cuda 0 --model $G --data $D --task arc_easy --scheme dynamic \
  --out e_arc > $O/ncu_arc_dynamic.txt 2>&1; t "ncu rc=$?"; xz -f $O/ncu_arc_dynamic.txt
tar cJf $OUT/cK.tar.xz -C /root/o cK; t done
