#!/usr/bin/env bash
# GPU run for issue 17 (h17): energy per response of a real server under load, three load levels,
# each steady window >= 5 s, TTFT/TPOT percentiles, the J/token-vs-load plot, against the same
# server idle. The server is examples/serve/hf_openai_server.py (transformers, static batching;
# a test server, not vLLM: see its docstring), serving SmolLM2-135M-Instruct converted from the
# project's GGUF. `transformers serve` is used instead when present and EAI_SERVER=transformers.
#
# What the lead builds/carries (no network on the GPU machine):
#   - target/release/eai            (cargo build --release --bin eai; default features, no cuda)
#   - target/release/examples/convert_gguf  (cargo build --release -p eai-model --example convert_gguf)
#   - the SmolLM2 GGUF at $GGUF (default /root/gguf/model.gguf, as in earlier sessions' calls)
#   - this repository (examples/serve/hf_openai_server.py)
# Expected outputs under $OUT: device.txt, server.log, load-closed/{load.json,load.md,load.svg},
# load-open/{...}, eval-api.txt (ARC-Easy 100 through the server vs eai-model direct).
# Time: ~4 minutes (idle 10 s + 3 levels x (5 s warm-up + 10 s window + drain + 5 s pause), twice).
set -uo pipefail
R=$(pwd)
OUT=${OUT:-$R/out-h17}
mkdir -p "$OUT"
EAI=${EAI:-$R/target/release/eai}
CONVERT=${CONVERT:-$R/target/release/examples/convert_gguf}
GGUF=${GGUF:-/root/gguf/model.gguf}
PORT=${PORT:-8011}
HF=${HF:-/root/smollm2-hf}
nvidia-smi --query-gpu=name,driver_version,memory.total,power.limit,clocks.max.sm --format=csv | tee "$OUT/device.txt"
python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)" | tee -a "$OUT/device.txt"

# 1. The model as a Hugging Face folder (f32 on disk; the server runs it in float16).
if [ ! -f "$HF/config.json" ]; then
  "$CONVERT" "$GGUF" "$HF" f32 || { echo "conversion failed"; exit 1; }
fi

# 2. Start the server on a loopback port and wait until it answers.
if [ "${EAI_SERVER:-ours}" = transformers ] && command -v transformers >/dev/null; then
  transformers serve --port "$PORT" > "$OUT/server.log" 2>&1 &
  ROUTE=--chat; SERVED=$HF
else
  python3 "$R/examples/serve/hf_openai_server.py" --model "$HF" --served-model-name smollm2 \
    --port "$PORT" --dtype float16 --max-batch 64 > "$OUT/server.log" 2>&1 &
  ROUTE=; SERVED=smollm2
fi
SPID=$!
trap 'kill $SPID 2>/dev/null' EXIT
up() { python3 -c "import urllib.request,sys; print(urllib.request.urlopen('http://127.0.0.1:$PORT/v1/models', timeout=2).read().decode())" 2>/dev/null; }
for i in $(seq 1 180); do up >/dev/null && break; sleep 1; done
up || { echo "server did not start"; tail -20 "$OUT/server.log"; exit 1; }

# 3. Closed loop: 1, 8, 32 clients; 128 output tokens each (ignore_eos); idle baseline first.
"$EAI" load --endpoint "http://127.0.0.1:$PORT" --served-model "$SERVED" $ROUTE \
  --clients 1,8,32 --prompts arc_easy --max-tokens 128 --ignore-eos \
  --warmup 5 --measure 10 --idle 10 --pause 5 --server-pid "$SPID" \
  --out "$OUT/load-closed" 2>&1 | tee "$OUT/load-closed.log"

# 4. Open loop: Poisson arrivals at 2, 8, 32 requests/s.
"$EAI" load --endpoint "http://127.0.0.1:$PORT" --served-model "$SERVED" $ROUTE \
  --rate 2,8,32 --prompts arc_easy --max-tokens 128 --ignore-eos \
  --warmup 5 --measure 10 --idle 10 --pause 5 --server-pid "$SPID" \
  --out "$OUT/load-open" 2>&1 | tee "$OUT/load-open.log"

# 5. Scores through the API (echo+logprobs route of the same server) against eai-model direct.
if [ -z "$ROUTE" ]; then
  "$EAI" eval --endpoint "http://127.0.0.1:$PORT" --served-model "$SERVED" --tokenizer "$HF/tokenizer.json" \
    --task arc_easy:40 --json > "$OUT/eval-api.json" 2>"$OUT/eval-api.log"
  "$EAI" eval --model "$GGUF" --task arc_easy:40 --json > "$OUT/eval-direct.json" 2>"$OUT/eval-direct.log"
  grep -h '"acc,none"' "$OUT/eval-api.json" "$OUT/eval-direct.json" | tee "$OUT/eval-api.txt"
fi
nvidia-smi --query-compute-apps=pid,process_name,used_memory --format=csv >> "$OUT/device.txt"
