set -u
R=$(pwd); B=/root/b; mkdir -p $B /root/g
cp $R/.gpu/g1/part.aa /root/g/ && ls -la /root/g
for f in $R/.gpu/bin/*.xz; do xz -dc $f > $B/$(basename $f .xz); chmod +x $B/$(basename $f .xz); done; ls -la $B
nvidia-smi --query-gpu=name,driver_version,memory.total,power.limit,clocks.max.sm,clocks.max.mem --format=csv | tee $OUT/device.txt
nproc | tee -a $OUT/device.txt
cd /root && EAI_REQUIRE_GPU=1 EAI_NO_FETCH=1 EAI_CACHE=/root/nocache timeout 300 $B/cuda --test-threads=1 > $OUT/cuda_test.log 2>&1; echo "cuda tests rc=$?"
grep -E "test result|FAILED|panicked|failed" $OUT/cuda_test.log | head -20
