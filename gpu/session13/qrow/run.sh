#!/bin/bash
# Session 13, issue 16's 16-bit-source quantize rows (branch qrow): the warp-staged row kernel
# (Tuning::quant_warp_stages = 2/3/4, off by default) bit-exact against the CPU, then A/B
# beside today's kernel. One device call, about 1.5-2 minutes on one H100 (or H200).
#
# Binaries (release builds of branch qrow, stripped, xz), carried in .gpu/r1/:
#   cuda_bench.xz  cargo build --release -p eai-quant --features cuda --example cuda_bench
#   cuda_quant.xz  cargo test --release -p eai-quant --features cuda --test cuda_quant --no-run
#                  (target/release/deps/cuda_quant-<hash>, renamed)
# Run from the repository root: bash .gpu/r1/run.sh (a copy of gpu/session13/qrow/run.sh).
# Everything lands in $OUT/qrow/ (and $OUT/qrow.tar.xz); the summary is printed last.
set -u -o pipefail
: "${OUT:?OUT must name the output folder}"
B=$HOME/qrow_b && mkdir -p "$B"
for f in cuda_bench cuda_quant; do xz -dc .gpu/r1/$f.xz > "$B/$f" && chmod +x "$B/$f"; done
R=$OUT/qrow && mkdir -p "$R"
export EAI_REQUIRE_GPU=1
T0=$(date +%s)
el() { echo "$(( $(date +%s) - T0 ))s"; }
{ date -u; nvidia-smi --query-gpu=name,driver_version,memory.total,power.limit,clocks.max.sm,clocks.max.mem --format=csv; nproc; } > "$R/env.log" 2>&1
cat "$R/env.log"

# 1. Correctness (first process: NVRTC of the module, ~10-30 s): the warp-staged kernel with
#    2, 3 and 4 stages against the CPU bit for bit (every spec, ragged and 4096-wide rows,
#    group-128, Q8_0, f32/f16/bf16, non-finite inputs, Reject / BadScale errors), and the
#    tuning sweep, which now also mixes quant_warp_stages into every older setting.
timeout 60 "$B/cuda_quant" --test-threads=1 --nocapture warp_staged every_tuning \
    > "$R/test_quant.log" 2>&1
echo "quant tests rc=$? $(el)" | tee -a "$R/env.log"
grep -hE "^test |test result|panicked|elements" "$R/test_quant.log"

# 2. The 16-bit rows (~40-60 s incl. NVRTC): copy; per-token, per-channel, asymmetric u8,
#    group-128 and vLLM per-token from bf16 and f16, today's kernel beside [warp-staged 2/3/4]
#    and [pipelined] in the same 5 interleaved rounds; the traffic probes (strided, blocked).
timeout 90 "$B/cuda_bench" --only-16bit --no-energy --out "$R/bench_16.md" \
    > "$R/bench_16.log" 2>&1
echo "bench rc=$? $(el)" | tee -a "$R/env.log"
grep -hE "error|panicked" "$R/bench_16.log" | head -5

tar -C "$OUT" -cJf "$OUT/qrow.tar.xz" qrow
echo "archive: $OUT/qrow.tar.xz $(el)"
# the bench prints every table line as it goes: if a timeout cut it before the .md was written,
# the summary reads the log
Q=$R/bench_16.md; [ -f "$Q" ] || Q=$R/bench_16.log
python3 gpu/h16q/summary.py "$Q" /dev/null 2>/dev/null | grep -v "INT8 GEMM\|Bars section"
