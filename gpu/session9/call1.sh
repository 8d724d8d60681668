# Session 9 plan, call 1 (carry .gpu/g1 .gpu/b1): the GGUF's first third (split -b 32787478); eai, gpu_bench
# and the cuda test executable (as /root/b/cuda, the name gpu/h16k/run.sh uses) from .gpu/b1.
set -u
R=$(pwd); B=/root/b; mkdir -p $B /root/g /root/o
cp $R/.gpu/g1/part.aa /root/g/
for f in $R/.gpu/b1/*.xz; do n=$(basename $f .xz); xz -dc $f > $B/$n && chmod +x $B/$n; done; ls -la $B
echo "commit $(cat $R/.gpu/b1/COMMIT 2>/dev/null)"; nvidia-smi --query-gpu=name,driver_version,power.limit --format=csv,noheader; nproc
