# Call 4 (carry nothing): issue 14 (gpu/h14h/run.sh, ~3.5 min), packed into one tar.xz (8 files
# at most come back). (Issue 17's llama.cpp 500-document run, planned beside it on the GPU
# machine's spare cores, ran on the development machine instead, session 8.)
set -u
mkdir -p /root/o/h14h
(OUT=/root/o/h14h MAIN=none timeout 270 bash gpu/h14h/run.sh > /root/o/h14h/console.log 2>&1); echo "h14h rc=$?"
tail -30 /root/o/h14h/console.log
tar cJf $OUT/h14h.tar.xz -C /root/o h14h
