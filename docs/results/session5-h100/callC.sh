set -u
R=$(pwd); B=/root/b; S=$R/crates/eai-model/scripts/hf_samples_compare.py; G=/root/g/model.gguf
cd /root/w; T0=$(date +%s)
timeout 200 $B/eai study --cuda 0 --model $G --data data --task hellaswag --task gsm8k:200:5 --schemes fp16 --repeats 1 --baseline 5 --cooldown 0 --out s_hg > $OUT/hg_study.log 2>&1; echo "study rc=$? $(( $(date +%s)-T0 ))s"
grep -E "\[|model on" $OUT/hg_study.log | head
for s in fp16 fp32; do /usr/bin/time -f "eval $s wall %e s" timeout 60 $B/eai eval --cuda 0 --model $G --data data --task arc_easy --scheme $s --out e_$s > $OUT/eval_$s.log 2>&1; tail -3 $OUT/eval_$s.log; done
echo "t=$(( $(date +%s)-T0 ))s"
PYTHONUNBUFFERED=1 timeout 120 python3 $S hf s_hg/samples/fp16/rep1/samples_hellaswag.jsonl ll hf_hs.json --dtype fp16 --min-seconds 5 2>&1 | grep '^{' | tee $OUT/hf_hg.jsonl
echo "t=$(( $(date +%s)-T0 ))s"
PYTHONUNBUFFERED=1 timeout 150 python3 $S hf s_hg/samples/fp16/rep1/samples_gsm8k.jsonl gen hf_gsm.json --dtype fp16 --min-seconds 5 2>&1 | grep '^{' | tee -a $OUT/hf_hg.jsonl
echo "t=$(( $(date +%s)-T0 ))s"
cp s_hg/report.md $OUT/hg_report.md; cp s_hg/tasks.csv $OUT/hg_tasks.csv
cp e_fp16/results.json $OUT/eval_fp16_results.json
