#!/bin/bash
# Session 15, call 7 (carry .gpu/s15e; ~3 minutes on one H100): issue 16's two-pass item —
# "where a bound below 0.90 holds for a layout, show it by a measured probe and meet it within
# 5 %". New here: the read-only traffic probe (probe_16_0) and the two-pass probe rows
# (read-only pass + read/write pass, the quantizers' minimum traffic), and the column apply
# kernel for per-channel groups on the last axis (quant_apply_cols, now the default; the
# grid-stride vector kernel as the "[vector apply]" row). Tests: all of cuda_quant (bit-exact,
# every tuning mixed with quant_apply_cols) and the probes' test; then `cuda_bench
# --only-two-pass` in two processes.
#   .gpu/s15e: cuda_bench, cuda, cuda_quant (release, stripped, xz) of the working tree.
set -u
R=$(pwd); B=/root/b8; O=/root/o/c7; mkdir -p $B $O
for f in cuda_bench cuda cuda_quant; do xz -dc $R/.gpu/s15e/$f.xz > $B/$f && chmod +x $B/$f; done
export EAI_REQUIRE_GPU=1
T0=$(date +%s); t() { echo "[t=$(( $(date +%s)-T0 ))s] $*"; }
date -u | tee $O/env.log
timeout 200 $B/cuda_quant --test-threads=1 > $O/test_cuda_quant.log 2>&1; t "cuda_quant tests rc=$?"
timeout 60 $B/cuda --test-threads=1 --exact traffic_probes_write_every_item > $O/test_probe.log 2>&1; t "probe test rc=$?"
grep -hE "^test |test result|FAILED|panicked" $O/test_*.log
for i in 1 2; do
    timeout 120 $B/cuda_bench --only-two-pass --no-energy --out $O/t$i.md > $O/t$i.log 2>&1; t "bench $i rc=$?"
done
grep -hE "2 passes|two-pass|copy 1 GiB" $O/t?.md | grep -v "^Ratio"
tar cJf $OUT/c7.tar.xz -C /root/o c7; t done
