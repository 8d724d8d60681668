set -u
R=$(pwd); B=/root/b; mkdir -p $B /root/g
cp $R/.gpu/g1/part.aa /root/g/
for f in $R/.gpu/b1/*.xz; do xz -dc $f > $B/$(basename $f .xz); chmod +x $B/$(basename $f .xz); done; ls -la $B
echo "commit $(cat $R/.gpu/b1/COMMIT)"; nvidia-smi --query-gpu=name,driver_version,power.limit --format=csv,noheader; nproc
