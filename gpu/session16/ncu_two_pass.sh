#!/bin/bash
# Staged for session 16 (issue 16's last open item: per-channel on the last axis from bf16/f16
# at 0.83 of the measured two-pass bound, session 15): where the column kernels' time goes.
# Carry a release `cuda_bench` of main (stripped, xz) in .gpu/s16/; ~1 minute on one H100.
#   ncu of the statistics and apply kernels of one per-channel (axis 1) quantize from f32 and
#   from bf16 (2^28 elements, rows of 4096; `cuda_bench --profile` runs them once each), full
#   set, clocks left alone; then the details pages as CSV for reading without ncu.
set -u
R=$(pwd); B=/root/b16; O=/root/o/ncu2p; mkdir -p $B $O
xz -dc $R/.gpu/s16/cuda_bench.xz > $B/cuda_bench && chmod +x $B/cuda_bench
export EAI_REQUIRE_GPU=1
NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
timeout 240 $NCU --clock-control none --cache-control none \
    -k "regex:quant_(stats_cols|apply_cols|params|init)_?" --set full -o $O/cols \
    $B/cuda_bench --profile > $O/ncu.log 2>&1; echo "ncu rc=$?"
$NCU --import $O/cols.ncu-rep --page details --csv > $O/details.csv 2>&1
$NCU --import $O/cols.ncu-rep --page raw --csv > $O/raw.csv 2>&1 && rm $O/cols.ncu-rep
grep -E '"(Duration|Memory Throughput|DRAM Throughput|Registers Per Thread|Achieved Occupancy)"' $O/details.csv | head -40
tar cJf $OUT/ncu2p.tar.xz -C /root/o ncu2p
