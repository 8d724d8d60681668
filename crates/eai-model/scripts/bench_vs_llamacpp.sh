#!/usr/bin/env bash
# eai-model vs llama.cpp CPU throughput in one run, on the same machine, model file and thread count.
#
# Usage: bench_vs_llamacpp.sh <model.gguf> <f32-twin.gguf> [pp] [tg] [reps] [threads]
#   BENCH_CPU   path of eai-model's bench_cpu example binary (default: target/release/examples/bench_cpu)
#   PYTHON      a python with llama-cpp-python installed (default: python3)
# eai-model runs FP32 (weights dequantized from the GGUF at load); llama.cpp runs the F32 twin of the
# same weights (written by `cargo run --release -p eai-model --example gguf_to_f32`) and the GGUF as
# shipped. Prints every measurement as JSON, then the median ratios eai/llama.cpp (bar: >= 0.5 at FP32).
set -euo pipefail
gguf=$1; f32=$2; pp=${3:-256}; tg=${4:-64}; reps=${5:-5}; threads=${6:-2}
here=$(cd "$(dirname "$0")" && pwd)
bench=${BENCH_CPU:-target/release/examples/bench_cpu}
py=${PYTHON:-python3}
out=$(mktemp)
RAYON_NUM_THREADS=$threads "$bench" "$gguf" fp32 "$pp" "$tg" "$reps" | tee -a "$out"
"$py" "$here/bench_llamacpp.py" "$f32" "$pp" "$tg" "$reps" "$threads" | sed 's/"engine": "llama.cpp"/"engine": "llama.cpp-f32"/' | tee -a "$out"
"$py" "$here/bench_llamacpp.py" "$gguf" "$pp" "$tg" "$reps" "$threads" | sed 's/"engine": "llama.cpp"/"engine": "llama.cpp-gguf"/' | tee -a "$out"
"$py" - "$out" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
med = lambda e, k: statistics.median(r[k] for r in rows if r["engine"] == e)
for k in ("pp_tok_s", "tg_tok_s"):
    ours = med("eai-model", k)
    for ref in ("llama.cpp-f32", "llama.cpp-gguf"):
        print(json.dumps({"metric": k, "eai_fp32": ours, ref: med(ref, k), "ratio": round(ours / med(ref, k), 3)}))
PY
rm -f "$out"
