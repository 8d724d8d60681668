# Call 5 (carry .gpu/bin .gpu/sh8; .gpu/bin = h17-tests.xz + h17-llamacpp-site-cp312.tar.xz):
# issue 17: llama.cpp server vs eai-model on ARC-Easy's first 500 (CPU cores 4-15, stopped at
# 480 s: it writes its figures after every chunk) beside the GPU energy-under-load run (cores 0-3).
set -u
R=$(pwd); mkdir -p /root/o/h17ll /root/o/h17
(OUT=/root/o/h17ll WORKERS=12 KV_DOCS=50 timeout 480 taskset -c 4-15 bash gpu/h17/llamacpp.sh > /root/o/h17ll/run.log 2>&1; echo "llamacpp exit $?" >> /root/o/h17ll/run.log) &
LL=$!
(OUT=/root/o/h17 timeout 330 taskset -c 0-3 bash gpu/h17/run.sh > /root/o/h17/run.log 2>&1); echo "h17 load rc=$?"
tail -25 /root/o/h17/run.log
wait $LL; tail -5 /root/o/h17ll/run.log; tail -c 1200 /root/o/h17ll/llamacpp-arc500.json 2>/dev/null
tar cJf $OUT/h17.tar.xz -C /root/o h17 h17ll
