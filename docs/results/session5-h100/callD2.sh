set -u
R=$(pwd); B=/root/b; S=$R/crates/eai-model/scripts/hf_samples_compare.py
cp $R/.gpu/g2/part.ab /root/g/ && cat /root/g/part.aa /root/g/part.ab > /root/g/model.gguf && sha256sum /root/g/model.gguf
G=/root/g/model.gguf
mkdir -p /root/w && cd /root/w && mkdir -p data && tar xJf $R/.gpu/data/data.tar.xz -C data
$B/gpu_bench --gguf $G --only none --hf-dir hf > /dev/null 2>&1
T0=$(date +%s)
timeout 200 $B/eai study --cuda 0 --model $G --data data --task hellaswag --task gsm8k:200:5 --schemes fp16 --repeats 1 --baseline 5 --cooldown 0 --out s_hg > $OUT/hg_study.log 2>&1; echo "study rc=$? $(( $(date +%s)-T0 ))s"
grep -E "\[|error" $OUT/hg_study.log | head
PYTHONUNBUFFERED=1 timeout 100 python3 $S hf s_hg/samples/fp16/rep1/samples_hellaswag.jsonl ll hf_hs.json --dtype fp16 --min-seconds 5 2>&1 | grep '^{' | tee $OUT/hf_hg.jsonl
echo "t=$(( $(date +%s)-T0 ))s"
PYTHONUNBUFFERED=1 timeout 150 python3 $S hf s_hg/samples/fp16/rep1/samples_gsm8k.jsonl gen hf_gsm.json --dtype fp16 --min-seconds 5 2>&1 | grep '^{' | tee -a $OUT/hf_hg.jsonl
echo "t=$(( $(date +%s)-T0 ))s"
cp s_hg/report.md $OUT/hg_report.md; cp s_hg/tasks.csv $OUT/hg_tasks.csv
