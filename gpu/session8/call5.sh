# Call 5 (carry nothing): issue 17's GPU energy-under-load run (gpu/h17/run.sh): 1, 8 and 32
# clients, 8 s warm-up, 20 s steady windows, 64-token responses, the GPU idle first.
set -u
mkdir -p /root/o/h17
(OUT=/root/o/h17 WARMUP=8 MEASURE=20 timeout 280 bash gpu/h17/run.sh > /root/o/h17/run.log 2>&1); echo "h17 load rc=$?"
tail -25 /root/o/h17/run.log
tar cJf $OUT/h17.tar.xz -C /root/o h17
