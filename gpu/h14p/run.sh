#!/usr/bin/env bash
# Issue 14, pipeline side (branch h14p): the user's path measured as a user runs it.
#
# Build (here, on the CPU machine; `cuda` is a default feature now, so no --features flag):
#   cargo build --release --bin eai --example quickstart
#   carry: target/release/eai, target/release/examples/quickstart, the GGUF, the data root.
# On the GPU machine (one H100 or H200), from the repository root:
#   bash gpu/h14p/run.sh <data root> <SmolLM2 GGUF> <transformers model dir>
# Expected: every `eai` command prints "eai: the model runs on cuda:0 (GPU 0 (NVIDIA H100 80GB
# HBM3) is usable)" (or the `--cuda 0` reason) and "eai study: model on cuda:0 ...; energy from
# nvml/GPU-... ; hardware label `H100-SXM-80GB`" (H200: `H200-SXM-141GB`); report.md has the
# Environment block and "Where the time went" with engine busy % and passes; each FP16 window
# >= 5 s (passes > 1 on ARC-Easy); no "(disagree)" in the time table.
set -euo pipefail
DATA=${1:?data root}; GGUF=${2:?SmolLM2 GGUF}; HF=${3:-}
EAI=${EAI:-target/release/eai}
OUT=${OUT:-gpu-out/h14p}; mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,power.limit,clocks.max.sm --format=csv | tee "$OUT/gpu.csv"

# 1. Full ARC-Easy, all schemes, 3 repeats, defaults (engine batching, 5 s minimum window, no
#    per-call metering) -- the bars: FP16 >= 10x transformers req/s and <= 0.15x J/req, FP32 >= 5x
#    and <= 0.25x, int8/dynamic >= 0.8x eai FP16 req/s; engine busy >= 85 % of each FP16 window.
time "$EAI" study --cuda 0 --model "$GGUF" --data "$DATA" --task arc_easy \
  --schemes fp32,fp16,bf16,int8,dynamic --repeats 3 --out "$OUT/arc_easy" 2>&1 | tee "$OUT/arc_easy.log"
grep -A20 'Where the time went' "$OUT/arc_easy/report.md" | head -12

# 2. The same without the GPU flag: must pick the GPU by itself.
"$EAI" study --model "$GGUF" --data "$DATA" --task arc_easy:500 --schemes fp16 --repeats 1 \
  --out "$OUT/auto" 2>&1 | tee "$OUT/auto.log" | grep -E 'runs on|model on'

# 3. Full HellaSwag (FP16 >= 5x transformers req/s) and GSM8K 200 x 5-shot (>= 5x tokens/s).
time "$EAI" study --cuda 0 --model "$GGUF" --data "$DATA" --task hellaswag --task gsm8k:200:5 \
  --schemes fp16 --repeats 1 --out "$OUT/hs_gsm8k" 2>&1 | tee "$OUT/hs_gsm8k.log"

# 4. eai eval --cuda 0 on full ARC-Easy: within 10 % of the study's FP16 per-pass time (study:
#    tasks.csv wall_s of fp16; eval: wall time of the command minus model load, printed below).
for s in fp16 fp32; do
  /usr/bin/time -f "eval $s wall %e s" "$EAI" eval --cuda 0 --model "$GGUF" --data "$DATA" \
    --task arc_easy --scheme $s --out "$OUT/eval_$s" 2>&1 | tail -15 | tee "$OUT/eval_$s.log"
done
python3 - "$OUT" <<'PY'
import csv, sys, os
out = sys.argv[1]
for row in csv.DictReader(open(os.path.join(out, "arc_easy", "tasks.csv"))):
    print(row["scheme"], row["repetition"], "pass s", row["wall_s"], "passes", row["passes"],
          "J", row["energy_j"], "req", row["requests"], "engine busy", row["engine_busy"])
PY

# 5. Per-call metering still works when asked (expect slower passes, Prefill J column).
"$EAI" study --cuda 0 --model "$GGUF" --data "$DATA" --task arc_easy:1000 --schemes fp16 \
  --repeats 1 --per-call-energy --out "$OUT/per_call" 2>&1 | tail -3

# 6. Table 2 re-measured (docs/results/model-gpu.md section 5 subsets; 3 repeats; windows >= 5 s):
time "$EAI" study --cuda 0 --model "$GGUF" --data "$DATA" \
  --task arc_challenge:1172 --task hellaswag:1000 --task truthfulqa_mc2:817 --task mmlu:20 --task gsm8k:100:5 \
  --schemes fp32,fp16,int8,dynamic --repeats 3 --out "$OUT/table2" 2>&1 | tee "$OUT/table2.log"
sed -n '/## Table 2/,/## Scores/p' "$OUT/table2/report.md"

# transformers beside it (the lead's existing script for issue 14; same GPU, same call):
[ -n "$HF" ] && echo "run the transformers baseline on $HF now (batch 64, same requests)"
