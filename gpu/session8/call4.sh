# Call 4 (carry .gpu/sh8): issue 16 (gpu/h16k/run.sh, ~4 min) then issue 14 (gpu/h14h/run.sh,
# ~3.5 min), each into its own folder, packed into one tar.xz each (8 files at most come back).
set -u
R=$(pwd); mkdir -p /root/o/h16k /root/o/h14h
(OUT=/root/o/h16k B=/root/b timeout 260 bash gpu/h16k/run.sh > /root/o/h16k/console.log 2>&1); echo "h16k rc=$?"
tail -45 /root/o/h16k/console.log
tar cJf $OUT/h16k.tar.xz -C /root/o h16k
(OUT=/root/o/h14h MAIN=none timeout 270 bash gpu/h14h/run.sh > /root/o/h14h/console.log 2>&1); echo "h14h rc=$?"
tail -30 /root/o/h14h/console.log
tar cJf $OUT/h14h.tar.xz -C /root/o h14h
