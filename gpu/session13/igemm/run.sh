#!/bin/bash
# Session 13, issue 16's last open bar: INT8 wgmma GEMM with the dequantize in its epilogue
# (branch igemm). One device call, < 4 minutes on one H100 (or H200): correctness first, then
# the GEMM bench with the wgmma rows beside cuBLAS FP16 and the cuBLASLt paths.
#
# Binaries (release builds of branch igemm, stripped, xz), carried in .gpu/i1/:
#   cuda_bench.xz  cargo build --release -p eai-quant --features cuda --example cuda_bench
#   cuda.xz        cargo test --release -p eai-quant --features cuda --test cuda --no-run
#                  (target/release/deps/cuda-<hash>, renamed)
# Run from the repository root: bash .gpu/i1/run.sh (or gpu/session13/igemm/run.sh, the same
# script). Everything lands in ONE archive, $OUT/igemm.tar.xz; bars and test results are
# printed last.
set -u -o pipefail
: "${OUT:?OUT must name the output folder}"
B=$HOME/igemm_b && mkdir -p "$B"
for f in cuda_bench cuda; do xz -dc .gpu/i1/$f.xz > "$B/$f" && chmod +x "$B/$f"; done
R=$OUT/igemm && mkdir -p "$R"
export EAI_REQUIRE_GPU=1
T0=$(date +%s)
el() { echo "$(( $(date +%s) - T0 ))s"; }
{ date -u; nvidia-smi --query-gpu=name,driver_version,memory.total,power.limit,clocks.max.sm,clocks.max.mem --format=csv; nproc; } > "$R/env.log" 2>&1
cat "$R/env.log"

# 1. The wgmma kernel alone (own process: a hang or fault cannot take the other tests along):
#    8 ragged shapes f32/f16/bf16 ± bias bit-exact against the CPU, 4096³ against cuBLASLt
#    (all elements) and the CPU (48 rows), dispatch through Tuning::gemm_wgmma, typed errors.
#    Includes NVRTC of the compute_90a module (~1 s) and of the main module (~20-40 s).
timeout 80 "$B/cuda" --test-threads=1 --nocapture wgmma_int8 > "$R/test_wgmma.log" 2>&1
WG_RC=$?
echo "wgmma test rc=$WG_RC $(el)" | tee -a "$R/env.log"
# 2. The cuBLASLt paths it is compared against (unchanged; regression check).
timeout 50 "$B/cuda" --test-threads=1 --nocapture int8_gemm fused_int8 --skip wgmma > "$R/test_gemm.log" 2>&1
echo "gemm tests rc=$? $(el)" | tee -a "$R/env.log"
grep -hE "^test |test result|panicked|bit-exact|skipped" "$R"/test_*.log

# 3. GEMM bench (section 3 + 3b, ~40 s): wgmma rows beside cuBLAS FP16, separate, default and
#    the panel/rank sweep in the same interleaved rounds at 4096³ and 8192³, and FP16 / wgmma /
#    separate / default at 2048×11008×4096 and 2048×4096×11008. If the wgmma test failed the
#    wgmma rows are left out (a hung kernel would cost the whole bench).
[ $WG_RC -ne 0 ] && export EAI_BENCH_SKIP_WGMMA=1
LEFT=$(( 225 - ($(date +%s) - T0) ))
[ $LEFT -lt 45 ] && LEFT=45
timeout $LEFT "$B/cuda_bench" --gemm-only --out "$R/bench_gemm.md" > "$R/bench_gemm.log" 2>&1
echo "gemm bench rc=$? $(el)" | tee -a "$R/env.log"

tar -C "$OUT" -cJf "$OUT/igemm.tar.xz" igemm && rm -rf "$R"
echo "archive: $OUT/igemm.tar.xz $(el)"
# the bench prints every table line as it goes: if a timeout cut it before the .md was
# written, read the log
rm -rf /tmp/igemm_r && mkdir -p /tmp/igemm_r && tar -C /tmp/igemm_r -xJf "$OUT/igemm.tar.xz"
G=/tmp/igemm_r/igemm/bench_gemm.md; [ -f "$G" ] || G=/tmp/igemm_r/igemm/bench_gemm.log
grep -E "wgmma|^- |cuBLAS FP16|default \(" "$G" | head -40
