# Call 9 (carry .gpu/g3; after call1/call2 on a fresh machine): the HellaSwag pass size, to choose
# EAI_BATCH_TOKENS' default with a measurement (h14h's step 5, skipped for time in call 4):
# full HellaSwag FP16 through `eai study --cuda 0` at the default 8,192 tokens per pass, 16,384 and 32,768.
set -u
R=$(pwd)
cp $R/.gpu/g3/part.ac /root/g/ && cat /root/g/part.aa /root/g/part.ab /root/g/part.ac > /root/g/SmolLM2-135M-Instruct.Q4_1.gguf && rm /root/g/part.a?
export EAI_REQUIRE_GPU=1; G=/root/g/SmolLM2-135M-Instruct.Q4_1.gguf; W=/root/w9; mkdir -p $W/logs; cd $W
for bt in 8192 32768 16384 65536; do
  EAI_BATCH_TOKENS=$bt timeout 45 /root/b/eai study --cuda 0 --model $G --data /root/data --task hellaswag --schemes fp16 \
    --repeats 1 --baseline 0 --cooldown 0 --out s_bt$bt > logs/bt$bt.log 2>&1; echo "bt $bt rc=$?"
  grep -E "^eai study: \[" logs/bt$bt.log; cp s_bt$bt/tasks.csv logs/bt$bt.tasks.csv 2>/dev/null
done
tar cJf $OUT/bt.tar.xz logs
