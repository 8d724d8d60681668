# Session 9, call 1 (carry .gpu/g1 .gpu/b1 .gpu/bq .gpu/data): the GGUF's first third (split -b
# 32787478); eai, gpu_bench and eai-model's cuda test executable (as /root/b/cuda, the name
# gpu/h16k/run.sh uses) from .gpu/b1; eai-quant's binaries kept xz'd in /root/bq; the data root.
set -u
R=$(pwd); B=/root/b; mkdir -p $B /root/g /root/o /root/bq /root/data
cp $R/.gpu/g1/part.aa /root/g/
for f in $R/.gpu/b1/*.xz; do n=$(basename $f .xz); xz -dc $f > $B/$n && chmod +x $B/$n; done; ls -la $B
printf '#!/bin/sh\nEAI_TILED_ATTENTION=0 exec /root/b/eai "$@"\n' > $B/eai_rows && chmod +x $B/eai_rows
cp $R/.gpu/bq/*.xz /root/bq/ && ls /root/bq
tar xJf $R/.gpu/data/data.tar.xz -C /root/data && ls /root/data
echo "commit $(cat $R/.gpu/b1/COMMIT 2>/dev/null)"; nvidia-smi --query-gpu=name,driver_version,power.limit --format=csv,noheader; nproc
