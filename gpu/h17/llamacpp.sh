#!/usr/bin/env bash
# Issue 17, bar "ARC-Easy (first 500) through the API of a real llama.cpp server against
# eai-model direct" (h17), on the GPU machine's 16 CPU cores (no GPU used: llama.cpp and
# eai-model both run on the CPU; the development machine's 2 shared cores cannot finish it).
#
# What runs: the test `llamacpp_server_scores_match_eai_model` (tests/serve_llamacpp.rs) with
# EAI_LLAMA_DOCS=500: it starts llama-cpp-python's OpenAI-compatible server under uvicorn (one
# worker process per core), scores ARC-Easy's first 500 test documents (~2,000 requests)
# through /v1/completions (echo, logprobs 1, max_tokens 1) with eai's OpenAiModel and directly
# with eai-model (FP32 on the CPU), and checks the bounds. It writes its figures after every
# chunk, so a run cut short still leaves the figures of the documents it finished.
#
# Carried (git-ignored, built on the development machine, paths relative to the repo root):
#   .gpu/bin/h17-tests.xz            the `eai` facade's integration-test executable (cargo test
#                                    -p eai --test tests --no-run, test profile, stripped), 3.5 MB
#   .gpu/bin/h17-llamacpp-site-cp312.tar.xz  llama-cpp-python 0.3.36 (its py3-none wheel built
#                                    here from source with GGML_NATIVE=OFF: Python code + libllama
#                                    and libggml*.so) and the server's pure/cp312 manylinux
#                                    dependencies (fastapi, starlette, uvicorn, pydantic(-core),
#                                    pydantic-settings, sse-starlette, starlette-context,
#                                    opentelemetry-api, …), 5.9 MB; numpy, anyio, h11, click and
#                                    jinja2 are the GPU machine's own.
# Expects: python3 (3.12), /root/g/SmolLM2-135M-Instruct.Q4_1.gguf, /root/data (arc/…).
# Duration: about 4 minutes (2,000 requests at ~1 s of one core each over 15 workers, plus the
# direct scores). Prints the summary JSON after every chunk; the last one is the result.
# Then the first 50 documents twice more: llama.cpp's KV cache in f32, and the GGUF's F32 twin
# with an f32 cache (KV_DOCS=0 skips both).
# Output under $OUT: llamacpp-arc500.json (the figures), llamacpp.log, llamacpp-kvf32.{json,log},
# llamacpp-f32twin.{json,log}.
set -uo pipefail
R=$(pwd)
OUT=${OUT:-$R/out-h17-llamacpp}
mkdir -p "$OUT"
GGUF=${GGUF:-/root/g/SmolLM2-135M-Instruct.Q4_1.gguf}
DATA=${DATA:-/root/data}
PY=${PY:-python3}
DOCS=${DOCS:-500}
WORKERS=${WORKERS:-$(( $(nproc) > 1 ? $(nproc) - 1 : 1 ))}
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
tar -C "$W" -xJf "$R/.gpu/bin/h17-llamacpp-site-cp312.tar.xz" || { echo "no site tarball"; exit 1; }
xz -dc "$R/.gpu/bin/h17-tests.xz" > "$W/tests" && chmod +x "$W/tests" || { echo "no tests binary"; exit 1; }
cat > "$W/py" <<EOF
#!/bin/sh
PYTHONPATH="$W/h17site\${PYTHONPATH:+:\$PYTHONPATH}" exec "$PY" "\$@"
EOF
chmod +x "$W/py"
mkdir -p "$W/cache/models"
ln -s "$GGUF" "$W/cache/models/SmolLM2-135M-Instruct.Q4_1.gguf"
{ date -u +%FT%TZ; nproc; grep -m1 'model name' /proc/cpuinfo; "$W/py" -V;
  "$W/py" -c "import llama_cpp, uvicorn, fastapi, numpy; print('llama_cpp', llama_cpp.__version__, 'uvicorn', uvicorn.__version__, 'fastapi', fastapi.__version__, 'numpy', numpy.__version__)"; } \
  2>&1 | tee "$OUT/machine.txt"
echo "workers $WORKERS, documents $DOCS" | tee -a "$OUT/machine.txt"
# The test binary's direct scoring uses every core between the server's chunks.
EAI_CACHE="$W/cache" EAI_NO_FETCH=1 EAI_DATA_DIR="$DATA" EAI_LLAMA_SERVER_PYTHON="$W/py" \
EAI_LLAMA_DOCS="$DOCS" EAI_LLAMA_WORKERS="$WORKERS" EAI_LLAMA_CHUNK="${CHUNK:-100}" \
EAI_LLAMA_REPORT="$OUT/llamacpp-arc500.json" \
  "$W/tests" serve_llamacpp --nocapture --test-threads 1 2>&1 | tee "$OUT/llamacpp.log"
RC=${PIPESTATUS[0]}
echo "exit $RC"
cat "$OUT/llamacpp-arc500.json" 2>/dev/null
# The explanation: the same comparison on the first KV_DOCS documents (a) with llama.cpp's KV
# cache in f32 instead of f16, (b) on the GGUF's F32 twin with an f32 cache, where llama.cpp's
# products take f32 activations and only the API path and summation order are left.
run_variant() { # name, docs, extra env...
  local name=$1 docs=$2; shift 2
  env "$@" EAI_CACHE="$W/cache" EAI_NO_FETCH=1 EAI_DATA_DIR="$DATA" EAI_LLAMA_SERVER_PYTHON="$W/py" \
    EAI_LLAMA_DOCS="$docs" EAI_LLAMA_WORKERS="$WORKERS" EAI_LLAMA_CHUNK="${CHUNK:-100}" \
    EAI_LLAMA_REPORT="$OUT/llamacpp-$name.json" \
    "$W/tests" serve_llamacpp --nocapture --test-threads 1 > "$OUT/llamacpp-$name.log" 2>&1
  echo "$name: exit $?"
  cat "$OUT/llamacpp-$name.json" 2>/dev/null
}
if [ "${KV_DOCS:-50}" -gt 0 ]; then
  run_variant kvf32 "${KV_DOCS:-50}" EAI_LLAMA_KV=f32
  run_variant f32twin "${KV_DOCS:-50}" EAI_LLAMA_KV=f32 EAI_LLAMA_WEIGHTS=f32
fi
exit "$RC"
