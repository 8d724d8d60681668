# Call 5 (carry nothing): issue 14's HellaSwag bar (gpu/h14h/run.sh with the per-kernel profile,
# NCU=1: where the 4.7 s per pass goes), transformers in the same call. ~5 min.
set -u
mkdir -p /root/o/h14h
(OUT=/root/o/h14h MAIN=none NCU=1 timeout 330 bash gpu/h14h/run.sh > /root/o/h14h/console.log 2>&1); echo "h14h rc=$?"
tail -30 /root/o/h14h/console.log
tar cJf $OUT/h14h.tar.xz -C /root/o h14h
