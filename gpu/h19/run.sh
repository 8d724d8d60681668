#!/bin/bash
# h19 GPU run (issue 19): the paper's six models at their exact shapes with synthetic weights,
# FP16 vs W8A16 decode tok/s and J/token (energy from NVML's total-energy counter), and the
# synthetic DeepSeek-R1-Distill-Qwen-7B through `eai study` (shapes and tokenizer from its real
# GGUF header).
#
# Build here (CPU machine), carry the binaries plus the R1 header:
#   export CARGO_TARGET_DIR=/work/targets/h19
#   cargo build --release -p eai-model --features cuda --example gpu_bench
#   cargo build --release --features cuda --bin eai
#   cargo test --release -p eai-model --features cuda --no-run   # the `cuda` test binary (regressions)
#   mkdir -p gpu/h19/bin && cp $CARGO_TARGET_DIR/release/examples/gpu_bench $CARGO_TARGET_DIR/release/eai gpu/h19/bin/
#   cp $CARGO_TARGET_DIR/release/deps/cuda-<hash> gpu/h19/bin/cuda
#   cp .cache/models/DeepSeek-R1-Distill-Qwen-7B-Q4_K_M.part0000.gguf gpu/h19/bin/r1-header.gguf
#   (carry: gpu/h19/bin; run from the repository root: bash gpu/h19/run.sh)
#
# Expected: 12 rows (6 shapes × fp16/int8-w8a16) except Bloomz-7B1, whose rows say
# "GpuError::Unsupported ... ALiBi, LayerNorm and GELU kernels are not in the GPU decoder yet"
# (BLOOM runs on the CPU engine only so far). 7B shapes at FP16 need ~15 GB, W8A16 ~8 GB.
set -u
cd "$(dirname "$0")"
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
B=./bin
{ date -u; nvidia-smi --query-gpu=name,driver_version,memory.total,power.limit,clocks.max.sm --format=csv; nproc; } > "$OUT/env.log" 2>&1
cat "$OUT/env.log"
T0=$(date +%s)
# 1. Regressions of the GPU path (BLOOM is refused there; every other test unchanged).
EAI_REQUIRE_GPU=1 EAI_NO_FETCH=1 timeout 90 $B/cuda --test-threads=1 > "$OUT/tests_cuda.log" 2>&1
echo "cuda tests rc=$? $(( $(date +%s) - T0 ))s"; grep -E "test result|FAILED|panicked" "$OUT/tests_cuda.log" | tail -5
# 2. The six paper shapes, FP16 vs W8A16, batch-1 decode (128 new tokens) + J/token.
timeout 420 $B/gpu_bench --gguf none --only 7b --quick --shapes paper --schemes fp16,int8-w8a16 \
  --out "$OUT/six" > "$OUT/six.log" 2>&1
echo "six shapes rc=$? $(( $(date +%s) - T0 ))s"
python3 - "$OUT/six/gpu_bench.json" <<'PY' | tee "$OUT/six_table.md"
import json, sys
r = json.load(open(sys.argv[1]))
print(f"device: {r.get('device')} (cc {r.get('compute_capability')})\n")
print("| model (synthetic weights) | scheme | decode tok/s (batch 1) | decode-only tok/s | J/token | weights GB |")
print("|---|---|---|---|---|---|")
for x in r.get("synthetic_7b", []):
    if "error" in x:
        print(f"| {x['model']} | {x['scheme']} | — | — | — | error: {x['error'][:120]} |"); continue
    d = (x.get("decode") or [{}])[0]
    j = d.get("j_per_token")
    print(f"| {x['model']} | {x['scheme']} | {d.get('tokens_per_s', 0):.1f} | {d.get('decode_only_tokens_per_s', 0):.1f} | "
          f"{'n/a' if j is None else f'{j:.3f}'} | {x.get('memory', {}).get('weights', 0) / 1e9:.2f} |")
PY
# 3. `eai study` on the synthetic R1-Distill (exact shapes, real tokenizer): fp16 vs int8 (W8A16).
timeout 240 $B/eai study --model synthetic:$B/r1-header.gguf --cuda 0 --schemes fp16,int8 \
  --task arc_easy:20 --task hellaswag:10 --repeats 1 --out "$OUT/study_r1" > "$OUT/study_r1.log" 2>&1
echo "study rc=$? $(( $(date +%s) - T0 ))s"; tail -20 "$OUT/study_r1.log"
