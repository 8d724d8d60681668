# Call 3 (carry .gpu/g3): joins the GGUF (sha256 b179c952...); issue 15's GPU check of
# the SIGTERM fix: `eai study --cuda 0` sent SIGTERM mid-window must exit 143 (was 139).
set -u
R=$(pwd)
cp $R/.gpu/g3/part.ac /root/g/ && cat /root/g/part.aa /root/g/part.ab /root/g/part.ac > /root/g/SmolLM2-135M-Instruct.Q4_1.gguf && rm /root/g/part.a?
sha256sum /root/g/SmolLM2-135M-Instruct.Q4_1.gguf | tee $OUT/sha.txt
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

# Issue 14's GSM8K bar in one call: 200 problems x 5-shot, eai study FP16 and FP32, transformers
# batched greedy `generate` on exactly eai's requests at both precisions (tokens/s, same extracted
# answer), and eai one sequence at a time (EAI_GEN_BATCH=1) against the batched run (identical
# texts). gpu/h14g/summary.py prints the bars. ~3.5 min.
R=$(pwd); S=$R/crates/eai-model/scripts/hf_samples_compare.py; W=/root/w_gsm; L=$W/logs; B=/root/b
G=/root/g/SmolLM2-135M-Instruct.Q4_1.gguf; D=/root/data; mkdir -p $L; cd $W
T0=$(date +%s); t() { echo "[t=$(( $(date +%s)-T0 ))s] $*"; }
$B/gpu_bench --gguf $G --only none --hf-dir hf > /dev/null 2>&1; ls hf > /dev/null || echo "no HF dir"
hf() { PYTHONUNBUFFERED=1 timeout "$1" python3 $S hf "${@:2}" 2>&1 | grep '^{' >> $L/hf.jsonl; }
timeout 90 $B/eai study --cuda 0 --model $G --data $D --task gsm8k:200:5 --schemes fp16,fp32 --repeats 1 \
  --baseline 5 --cooldown 0 --out s_gsm > $L/gsm_study.log 2>&1; t "gsm study rc=$?"
for d in fp16 fp32; do hf 80 s_gsm/samples/$d/rep1/samples_gsm8k.jsonl gen hf_gsm_$d.json --dtype $d --min-seconds 1; t "hf gsm $d"; done
EAI_GEN_BATCH=1 timeout 60 $B/eai study --cuda 0 --model $G --data $D --task gsm8k:200:5 --schemes fp16 --repeats 1 \
  --baseline 0 --cooldown 0 --out s_gsm1 > $L/gsm1_study.log 2>&1; t "gsm one-at-a-time rc=$?"
for s in s_gsm s_gsm1; do cp $s/tasks.csv $L/${s}_tasks.csv 2>/dev/null; cp $s/report.md $L/${s}_report.md 2>/dev/null; done
python3 $R/gpu/h14g/summary.py $W $L | tee $L/bars.txt
tar cJf $OUT/gsm.tar.xz logs s_gsm/samples s_gsm1/samples 2>/dev/null; ls -la $OUT
