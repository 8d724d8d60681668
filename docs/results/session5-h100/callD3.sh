set -u
R=$(pwd); B=/root/b; G=/root/g/model.gguf; cd /root/w
T0=$(date +%s)
timeout 560 $B/eai study --cuda 0 --model $G --data data --task arc_challenge:1172 --task hellaswag:1000 --task truthfulqa_mc2:817 --task mmlu:20 --task gsm8k:100:5 --schemes fp32,fp16,int8,dynamic --repeats 3 --warmup 5 --baseline 5 --cooldown 0 --out t2 > $OUT/t2_study.log 2>&1 &
sleep 1; PID=$(pgrep -f "eai study --cuda 0" | head -1); echo "t_s,rss_kib" > $OUT/rss.csv
while kill -0 $PID 2>/dev/null; do r=$(awk '/^VmRSS:/ {print $2}' /proc/$PID/status 2>/dev/null); [ -n "$r" ] && echo "$(( $(date +%s)-T0 )),$r" >> $OUT/rss.csv; sleep 1; done
wait; echo "t2 done $(( $(date +%s)-T0 ))s"; tail -4 $OUT/t2_study.log
cp t2/report.md $OUT/t2_report.md; cp t2/tasks.csv $OUT/t2_tasks.csv; ls -la t2 | head -30 > $OUT/t2_ls.txt
tar cJf $OUT/t2.tar.xz --exclude=samples --exclude='trace*' t2 2>/dev/null
