# Second round (fresh machine), call 7 (carry .gpu/g1 .gpu/b1 .gpu/data): as call 1 without
# eai-quant's binaries — eai, gpu_bench and the cuda tests of the revised tiled attention
# (8 pairs per warp) and the one-pass row_stats.
set -u
R=$(pwd); B=/root/b; mkdir -p $B /root/g /root/o /root/data
cp $R/.gpu/g1/part.aa /root/g/
for f in $R/.gpu/b1/*.xz; do n=$(basename $f .xz); xz -dc $f > $B/$n && chmod +x $B/$n; done; ls -la $B
printf '#!/bin/sh\nEAI_TILED_ATTENTION=0 exec /root/b/eai "$@"\n' > $B/eai_rows && chmod +x $B/eai_rows
tar xJf $R/.gpu/data/data.tar.xz -C /root/data && ls /root/data
echo "commit $(cat $R/.gpu/b1/COMMIT 2>/dev/null)"; nvidia-smi --query-gpu=name,driver_version,power.limit --format=csv,noheader; nproc
