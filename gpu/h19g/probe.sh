#!/bin/bash
# h19g early probe (≤ 3 minutes): BLOOM GPU logits against transformers before the final run.
# Carries .gpu/bin/cuda_tests.xz (the eai-model `cuda` test executable, release, with BLOOM on the
# GPU). transformers writes the tiny32 and 7B-config-layer checkpoints; the BLOOM GPU tests run
# on them. Prints the test results and the `BLOOMCMP` lines; raw logs under $OUT.
set -u
R=$(pwd); B=/root/b; W=/root/h19g-probe
OUT=${OUT:-/tmp/out-h19g-probe}; mkdir -p "$OUT" "$B" "$W"
xz -dc "$R/.gpu/bin/cuda_tests.xz" > "$B/cuda_tests" && chmod +x "$B/cuda_tests"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
GEN=$R/crates/eai-model/scripts/make_bloom_fixtures.py
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))s"; }
export EAI_REQUIRE_GPU=1 EAI_NO_FETCH=1
python3 "$GEN" tiny32 $W/tiny32 > "$OUT/gen_tiny32.log" 2>&1; echo "tiny32 gen rc=$? $(t)"
(python3 "$GEN" 7b $W/b7 > "$OUT/gen_7b.log" 2>&1; echo "rc=$?" >> "$OUT/gen_7b.log") &
GENPID=$!
EAI_BLOOM_DIRS=$W/tiny32 timeout 60 $B/cuda_tests --test-threads=1 --nocapture bloom > "$OUT/tests_bloom.log" 2>&1
echo "bloom tests rc=$? $(t)"; grep -E "^test |test result|BLOOM|panicked" "$OUT/tests_bloom.log" | cut -c1-400
wait $GENPID; echo "7b gen: $(tail -1 "$OUT/gen_7b.log") $(t)"
EAI_BLOOM_DIRS=$W/b7 timeout 80 $B/cuda_tests --test-threads=1 --nocapture bloom_gpu_matches_transformers \
  > "$OUT/tests_bloom_7b.log" 2>&1
echo "7b compare rc=$? $(t)"; grep -E "test result|BLOOM|panicked" "$OUT/tests_bloom_7b.log" | cut -c1-400
# Regressions of the Llama path (same binary), short.
timeout 40 $B/cuda_tests --test-threads=1 tiny_model_matches_cpu_for_every_scheme shared_contexts > "$OUT/tests_llama.log" 2>&1
echo "llama tests rc=$? $(t)"; grep -E "test result|panicked" "$OUT/tests_llama.log"
rm -rf $W/b7
