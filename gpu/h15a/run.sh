#!/usr/bin/env bash
# h15a (issue 15, library half): the one change on the GPU path is that the CUDA engine's loaders
# (`CudaEngine::from_gguf`, `from_hf_dir`) now check every weight for NaN/Inf as it is handed to
# the GPU loader (`validate::FiniteChecked`). Wanted: the CUDA engine still loads and scores
# SmolLM2 exactly as before (no weight of the real model is non-finite), and the check costs
# little.
#
# Build (lead's machine, merged tree): the eai-model test binary with CUDA, release.
#   cargo test --release -p eai-model --features cuda --no-run --message-format=json
# Carry: that test executable and .cache/models/SmolLM2-135M-Instruct.Q4_1.gguf.
# Run on the GPU machine:
set -euo pipefail
export EAI_REQUIRE_GPU=1 EAI_NO_FETCH=1
BIN=${BIN:?path of the eai-model tests executable built with --features cuda}
# Every CUDA test of eai-model (loads SmolLM2 through from_gguf/from_hf_dir, scores, compares
# with the CPU path). Expected: all pass, as on main.
"$BIN" cuda 2>&1 | tee "$OUT/eai-model-cuda-tests.txt"
# The hostile-input tests of eai-model run on the CPU and need no GPU; run them too for the
# record (1 MB question on SmolLM2 in release: expected a few seconds).
"$BIN" hostile 2>&1 | tee "$OUT/eai-model-hostile.txt"
