set -u
R=$(pwd); B=/root/b; mkdir -p $B /root/g
cp $R/.gpu/g1/part.aa /root/g/
for f in $R/.gpu/bin/*.xz; do xz -dc $f > $B/$(basename $f .xz); chmod +x $B/$(basename $f .xz); done; ls -la $B /root/g
