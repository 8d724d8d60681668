# Call 6 (carry nothing; T2_LIMIT caps the study to the device time left): issue 14's Table 2 re-measured through `eai study --cuda 0` on the
# new defaults (session 5's command: docs/results/user-path-gpu.md; 451 s there), packed.
set -u
mkdir -p /root/o && cd /root/o && rm -rf t2
EAI_REQUIRE_GPU=1 timeout ${T2_LIMIT:-540} /root/b/eai study --cuda 0 --model /root/g/SmolLM2-135M-Instruct.Q4_1.gguf \
  --data /root/data --task arc_challenge:1172 --task hellaswag:1000 --task truthfulqa_mc2:817 \
  --task mmlu:20 --task gsm8k:100:5 --schemes fp32,fp16,int8,dynamic --repeats 3 --warmup 5 \
  --baseline 5 --cooldown 0 --out t2 > t2.log 2>&1
echo "t2 rc=$?"; grep -E "^eai study: \[" t2.log | tail -5
sed -n '/Table 2/,/^## /p' t2/report.md 2>/dev/null | head -30
tar cJf $OUT/t2.tar.xz --exclude='t2/samples' t2 t2.log
