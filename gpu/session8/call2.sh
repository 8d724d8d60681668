# Call 2 (carry .gpu/g2 .gpu/data .gpu/sh8): joins the GGUF, unpacks the data; issue 15's GPU
# check of the SIGTERM fix: `eai study --cuda 0` sent SIGTERM mid-window must exit 143 (was 139).
set -u
R=$(pwd)
cp $R/.gpu/g2/part.ab /root/g/ && cat /root/g/part.aa /root/g/part.ab > /root/g/SmolLM2-135M-Instruct.Q4_1.gguf && rm /root/g/part.a?
sha256sum /root/g/SmolLM2-135M-Instruct.Q4_1.gguf | tee $OUT/sha.txt
mkdir -p /root/data && tar xJf $R/.gpu/data/data.tar.xz -C /root/data && ls /root/data
export EAI_REQUIRE_GPU=1
S=/root/o/sig; rm -rf $S; mkdir -p /root/o
taskset -c 0-3 /root/b/eai study --cuda 0 --model /root/g/SmolLM2-135M-Instruct.Q4_1.gguf --data /root/data \
  --task arc_easy --task hellaswag:1000 --schemes fp16,int8 --repeats 3 --baseline 0 --cooldown 0 --out $S \
  > $OUT/sigterm.log 2>&1 &
P=$!
for _ in $(seq 1 120); do grep -q '^{"entry":"run"' $S/journal.jsonl 2>/dev/null && break; sleep 0.5; done
sleep 2   # mid-way through the next run's first window
kill -TERM $P; wait $P; RC=$?
echo "eai study --cuda 0 after SIGTERM: exit $RC (want 143; session 7: 139 = SIGSEGV)" | tee -a $OUT/sigterm.log
ls -a $S | tee -a $OUT/sigterm.log
