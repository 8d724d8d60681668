#!/usr/bin/env bash
# Issue 17, bar "energy per response on the GPU under load" (h17).
#
# A real OpenAI-compatible server on the GPU — examples/serve/hf_openai_server.py, our small
# server over transformers with static batching (a test server, not vLLM: see its docstring;
# vLLM, SGLang and `transformers serve` are not installed there: no fastapi/uvicorn) — serving
# SmolLM2-135M-Instruct (a Hugging Face folder converted from the project's GGUF by gpu_bench),
# driven by `eai load`: closed loop at 1, 8 and 32 clients, each level 5 s of ramp-up (not
# counted), a 10 s steady window, then the drain (not counted); the same GPU idle for 10 s
# first. Only the GPU that runs the server's PID counts (NVML's process list, --server-pid).
# Writes under $OUT: device.txt, server.log, load/{load.json,load.md,load.svg}, load.log,
# summary.txt (the table: TTFT/TPOT p50/p90/p99, J/response, J/output-token, tokens/s, idle W).
#
# Expects (the lead provides): /root/b/eai and /root/b/gpu_bench (release, cuda), the GGUF at
# /root/g/SmolLM2-135M-Instruct.Q4_1.gguf, the data root at /root/data, python3 with torch and
# transformers. Nothing to carry beyond the repository (the server is examples/serve/*.py).
# Duration: about 4 minutes (conversion ~5 s, server start ~20 s, idle 10 s,
# 3 x (10 + 30 + drain <= 20 + pause 3) s); the script stops nothing early, so 5 minutes is the cap.
#
# Tested on the development machine's CPU with tiny loads before the GPU call:
#   EAI_REQUIRE_GPU=0 DEVICE=cpu DTYPE=float32 PY=/work/venv-torch/bin/python EAI=... HF=/tmp/hf LEVELS=1,2 \
#   MAX_TOKENS=8 OUT=/tmp/h17-cpu bash gpu/h17/run.sh
set -uo pipefail
R=$(pwd)
OUT=${OUT:-$R/out-h17}
mkdir -p "$OUT"
EAI=${EAI:-/root/b/eai}
GPU_BENCH=${GPU_BENCH:-/root/b/gpu_bench}
GGUF=${GGUF:-/root/g/SmolLM2-135M-Instruct.Q4_1.gguf}
DATA=${DATA:-/root/data}
PY=${PY:-python3}
HF=${HF:-/tmp/h17-hf}  # not under $OUT: 540 MB of f32 weights need not come back
DEVICE=${DEVICE:-cuda}
DTYPE=${DTYPE:-float16}
LEVELS=${LEVELS:-1,8,32}
# Session 7 (H100) ran 128 tokens, 5 s warm-up, 10 s windows: at 8 clients no request both
# started and ended inside the window (a response took ~14 s), so that level had no TTFT/TPOT
# percentiles. Responses of 64 tokens and the library's default 10 s warm-up / 30 s window fix it.
MAX_TOKENS=${MAX_TOKENS:-64}
WARMUP=${WARMUP:-10}
MEASURE=${MEASURE:-30}
IDLE=${IDLE:-10}
PAUSE=${PAUSE:-3}
PORT=${PORT:-8017}
export EAI_REQUIRE_GPU=${EAI_REQUIRE_GPU:-1}
# Never start NVLink multicast (the GPU machine's rule); harmless here.
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
T0=$(date +%s)
date -u +%FT%TZ > "$OUT/device.txt"
if command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=name,uuid,driver_version,memory.total,power.limit,clocks.max.sm \
    --format=csv >> "$OUT/device.txt"
fi
"$PY" -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__, 'cuda', torch.cuda.is_available())" \
  >> "$OUT/device.txt" 2>&1
cat "$OUT/device.txt"

# 1. The model as a Hugging Face folder (f32 safetensors, config.json, tokenizer.json).
if [ ! -f "$HF/config.json" ]; then
  "$GPU_BENCH" --gguf "$GGUF" --only none --hf-dir "$HF" > "$OUT/convert.log" 2>&1 \
    || { echo "conversion failed:"; tail -20 "$OUT/convert.log"; exit 1; }
fi

# 2. The server on a loopback port; wait until it answers (at most 120 s).
"$PY" "$R/examples/serve/hf_openai_server.py" --model "$HF" --served-model-name smollm2 \
  --host 127.0.0.1 --port "$PORT" --device "$DEVICE" --dtype "$DTYPE" --max-batch 64 \
  > "$OUT/server.log" 2>&1 &
SPID=$!
trap 'kill $SPID 2>/dev/null; wait $SPID 2>/dev/null' EXIT
up() { "$PY" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$PORT/v1/models', timeout=2).read()" 2>/dev/null; }
for _ in $(seq 1 240); do up && break; kill -0 $SPID 2>/dev/null || break; sleep 0.5; done
up || { echo "server did not start:"; tail -30 "$OUT/server.log"; exit 1; }
echo "server up after $(( $(date +%s) - T0 )) s (pid $SPID)"

# The server runs on cuda:0; its UUID is the fallback if NVML's process list hides the PID.
GPU_ARGS=()
if command -v nvidia-smi >/dev/null; then
  UUID=$(nvidia-smi --query-gpu=uuid --format=csv,noheader -i 0 2>/dev/null | head -1)
  [ -n "$UUID" ] && GPU_ARGS=(--server-gpu "$UUID")
fi

# 3. The load: closed loop at each level, every response MAX_TOKENS long (ignore_eos), the
#    prompts ARC-Easy's (0-shot contexts from the data root), the idle baseline first.
"$EAI" load --endpoint "http://127.0.0.1:$PORT" --served-model smollm2 \
  --clients "$LEVELS" --prompts arc_easy --data "$DATA" --max-tokens "$MAX_TOKENS" --ignore-eos \
  --warmup "$WARMUP" --measure "$MEASURE" --idle "$IDLE" --pause "$PAUSE" \
  --server-pid "$SPID" "${GPU_ARGS[@]}" --out "$OUT/load" > "$OUT/load.log" 2>&1
RC=$?
cat "$OUT/load.log"
[ -f "$OUT/load/load.md" ] && cp "$OUT/load/load.md" "$OUT/summary.txt"
if command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-compute-apps=pid,process_name,used_memory --format=csv >> "$OUT/device.txt"
fi
echo "eai load exit $RC; wall $(( $(date +%s) - T0 )) s"
exit $RC
