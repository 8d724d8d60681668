#!/usr/bin/env bash
# Issue 14, engine side (branch h14e): measurements that check the defaults chosen without a GPU.
#  - full ARC-Easy through the Evaluator with the engine's batch hint (whole task per call) vs 64
#    per call, pass 1 (tokenizing) vs passes 2-3 (token cache), batch_tokens 8192 vs 16384 vs
#    32768, and a repeated-pass run filling 5 s (engine share, agreement);
#  - GSM8K first 200, 5-shot, greedy: gen_batch 32 (old default) / 64 / 128 / 256 (new default),
#    tokens/s and how many generated texts equal the gen_batch=32 ones.
# Build (on the GPU machine, from the repository root):
#   cargo build --release --features cuda -p eai-model --example batch_sweep
# Carry: nothing beyond the working tree; needs the SmolLM2 GGUF and the shared data root.
# Expected: "engine hint" passes 2-3 well above "64 per call" req/s and tokenize ≈ 0 s after
# pass 1; GSM8K tok/s rising with gen_batch, same-text counts close to 200 (different group
# sizes change float summation order, so a few texts may differ).
set -euo pipefail
GGUF=${GGUF:-.cache/models/SmolLM2-135M-Instruct.Q4_1.gguf}
DATA=${DATA:-../shared/data}
OUT=${OUT:-${OUT_DIR:-gpu_out}/h14e}
mkdir -p "$OUT"
cargo build --release --features cuda -p eai-model --example batch_sweep
BIN=${CARGO_TARGET_DIR:-target}/release/examples/batch_sweep
nvidia-smi --query-gpu=name,driver_version,power.limit --format=csv | tee "$OUT/gpu.txt"
"$BIN" --gguf "$GGUF" --data "$DATA" --scheme fp16 --gsm8k 200 \
  --batch-tokens 8192,16384,32768 --gen-batch 32,64,128,256 2>&1 | tee "$OUT/batch_sweep_fp16.txt"
"$BIN" --gguf "$GGUF" --data "$DATA" --scheme fp32 --gsm8k 200 \
  --batch-tokens 8192 --gen-batch 256 2>&1 | tee "$OUT/batch_sweep_fp32.txt"
