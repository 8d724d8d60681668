# Call 5 (carry nothing): issue 14's HellaSwag bar on the tiled scoring attention (default),
# transformers in the same call, ARC-Easy / eai eval on the new default, the per-row kernel
# (EAI_TILED_ATTENTION=0, /root/b/eai_rows) as the same-call before, and the per-kernel profile.
set -u
mkdir -p /root/o/h14t; . /root/env.sh 2>/dev/null
(OUT=/root/o/h14t MAIN=/root/b/eai_rows NCU=1 timeout 330 bash gpu/h14h/run.sh > /root/o/h14t/console.log 2>&1); echo "h14h rc=$?"
tail -32 /root/o/h14t/console.log
tar cJf $OUT/h14t.tar.xz -C /root/o h14t
