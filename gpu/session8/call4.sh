# Call 4 (carry nothing): issue 14 (gpu/h14h/run.sh, ~3.5 min) on CPU cores 0-5, packed into one
# tar.xz (8 files at most come back). Beside it, on cores 6-15 (no GPU), issue 17's llama.cpp
# server vs eai-model on ARC-Easy's first 500 (gpu/h17/llamacpp.sh; it writes its figures after
# every chunk, so a cut run still leaves the documents it finished).
set -u
R=$(pwd); mkdir -p /root/o/h14h /root/o/h17ll .gpu/bin && cp /root/bin/* .gpu/bin/
(OUT=/root/o/h17ll WORKERS=10 KV_DOCS=0 timeout ${LL_LIMIT:-330} taskset -c 6-15 bash gpu/h17/llamacpp.sh > /root/o/h17ll/run.log 2>&1; echo "llamacpp exit $?" >> /root/o/h17ll/run.log) &
LL=$!
(OUT=/root/o/h14h MAIN=none timeout 270 taskset -c 0-5 bash gpu/h14h/run.sh > /root/o/h14h/console.log 2>&1); echo "h14h rc=$?"
tail -30 /root/o/h14h/console.log
tar cJf $OUT/h14h.tar.xz -C /root/o h14h
wait $LL; tail -5 /root/o/h17ll/run.log; tail -c 1500 /root/o/h17ll/llamacpp-arc500.json 2>/dev/null
tar cJf $OUT/h17ll.tar.xz -C /root/o h17ll
