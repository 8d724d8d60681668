# Call 8 (carry nothing): issue 16's decode bars (gpu/h16k/run.sh, ~4 min; H16K_LIMIT caps it to
# the device time left), packed into one tar.xz.
set -u
mkdir -p /root/o/h16k
(OUT=/root/o/h16k B=/root/b timeout ${H16K_LIMIT:-260} bash gpu/h16k/run.sh > /root/o/h16k/console.log 2>&1); echo "h16k rc=$?"
tail -45 /root/o/h16k/console.log
tar cJf $OUT/h16k.tar.xz -C /root/o h16k
