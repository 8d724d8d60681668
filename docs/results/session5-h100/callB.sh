set -u
R=$(pwd); B=/root/b; S=$R/crates/eai-model/scripts/hf_samples_compare.py
cp $R/.gpu/g2/part.ab /root/g/ && cat /root/g/part.aa /root/g/part.ab > /root/g/model.gguf && sha256sum /root/g/model.gguf | tee $OUT/sha.txt
G=/root/g/model.gguf
mkdir -p /root/w && cd /root/w && mkdir -p data && tar xJf $R/.gpu/data/data.tar.xz -C data
$B/gpu_bench --gguf $G --only none --hf-dir hf > /dev/null 2>&1; ls hf
T0=$(date +%s)
( timeout 300 $B/eai study --cuda 0 --model $G --data data --task arc_easy --schemes fp32,fp16,bf16,int8,dynamic --repeats 3 --baseline 5 --cooldown 0 --out s_arc > $OUT/arc_study.log 2>&1; echo "study rc=$? $(( $(date +%s)-T0 ))s" )
grep -E "eai study|runs on|model on" $OUT/arc_study.log | head -30
for d in fp32 fp16 bf16; do PYTHONUNBUFFERED=1 timeout 90 python3 $S hf s_arc/samples/fp16/rep1/samples_arc_easy.jsonl ll hf_arc_$d.json --dtype $d --min-seconds 5 2>&1 | grep '^{' ; done | tee $OUT/hf_arc.jsonl
echo "t=$(( $(date +%s)-T0 ))s"
cp s_arc/report.md $OUT/arc_report.md; cp s_arc/tasks.csv $OUT/arc_tasks.csv 2>/dev/null
tar cJf $OUT/arc_study.tar.xz --exclude='samples' --exclude='trace*' s_arc 2>/dev/null; ls -la $OUT
