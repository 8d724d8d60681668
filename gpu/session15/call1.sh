#!/bin/bash
# Session 15, call 1 (carry .gpu/q1 .gpu/s15; ~120 s on one H100): stages the SmolLM2 GGUF's
# first part and main's binaries on the machine for calls 2 and 3, then issue 16's INT8 GEMM +
# dequantize at 4096^3: wgmma v4 (main's default) beside cuBLAS FP16 in three processes with
# the SM clock and power logged every 200 ms, and one v4 launch at 4096^3 under ncu (full set,
# clocks left alone) for where its time goes.
#   .gpu/s15: release builds of main (COMMIT), stripped, xz: gpu_bench (eai-model), cuda_bench
#   and the test binaries cuda / cuda_quant (eai-quant).
set -u
R=$(pwd); B=/root/b; O=/root/o/c1; mkdir -p /root/g $B $O
cp $R/.gpu/q1/part.aa /root/g/
for f in gpu_bench cuda_bench cuda cuda_quant; do xz -dc $R/.gpu/s15/$f.xz > $B/$f && chmod +x $B/$f; done
export EAI_REQUIRE_GPU=1
T0=$(date +%s); t() { echo "[t=$(( $(date +%s)-T0 ))s] $*"; }
{ date -u; nvidia-smi --query-gpu=name,driver_version,memory.total,power.limit,clocks.max.sm --format=csv; cat $R/.gpu/s15/COMMIT; } | tee $O/env.log
nvidia-smi --query-gpu=timestamp,clocks.sm,clocks.mem,power.draw,temperature.gpu,utilization.gpu --format=csv -lms 200 > $O/smi.csv 2>&1 &
SMI=$!
export EAI_BENCH_SKIP_WGMMA=v1,v2,v3
for i in 1 2 3; do
    timeout 75 $B/cuda_bench --gemm-only --no-energy --out $O/g$i.md > $O/g$i.log 2>&1; t "bench $i rc=$?"
done
kill $SMI
NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
timeout 150 $NCU --clock-control none --cache-control none -k regex:gemm_wgmma4_f16 --launch-skip 2 --launch-count 1 \
    --set full -o $O/v4 $B/cuda_bench --gemm-only --no-energy > $O/ncu.log 2>&1; t "ncu rc=$?"
[ -f $O/v4.ncu-rep ] && $NCU --import $O/v4.ncu-rep --page details --csv > $O/v4_details.csv 2>&1
[ -f $O/v4.ncu-rep ] && $NCU --import $O/v4.ncu-rep --page raw --csv > $O/v4_raw.csv 2>&1
tail -3 $O/ncu.log
grep -hE "4096×4096×4096 .*(FP16|wgmma v4)" $O/g?.md
tar cJf $OUT/c1.tar.xz -C /root/o c1; t done
