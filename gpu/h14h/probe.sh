#!/usr/bin/env bash
# h14h probe (≤ 3 min): where full HellaSwag's time goes through the user path on the GPU, with the
# lead's main build (/root/b/eai, no carried binaries). Answers: (1) a WARM full-HellaSwag FP16
# pass through `eai eval` (its untimed warm-up pass fills the token cache and warms the engine)
# against the cold one-pass window of session 5 (5.40 s: tokenize 0.57 + engine 4.8); (2) the same
# for the bench's subset (first 1,000 documents: 11 passes of 84,897 tokens vs 206 passes of
# 1,665,606 tokens for the full file, counted on the CPU); (3) `eai study` HellaSwag FP16, 3
# repetitions of one pass each (--min-window 0): the first window cold, the later ones warm.
# Writes $OUT/probe.log and the results/tasks files; prints a summary last.
set -u
B=/root/b; G=/root/g/SmolLM2-135M-Instruct.Q4_1.gguf; D=/root/data; W=/root/w_h14h_probe
export EAI_REQUIRE_GPU=1
mkdir -p $W && cd $W && rm -rf e_hs e_hs1k s_hs
exec > >(tee $OUT/probe.log) 2>&1
nvidia-smi --query-gpu=name,driver_version,power.limit,clocks.max.sm --format=csv
T0=$(date +%s); t() { echo "[t=$(( $(date +%s)-T0 ))s] $*"; }
timeout 60 $B/eai eval --cuda 0 --model $G --data $D --task hellaswag --scheme fp16 --out e_hs > eval_hs.log 2>&1; t "eval hs rc=$?"
timeout 30 $B/eai eval --cuda 0 --model $G --data $D --task hellaswag:1000 --scheme fp16 --out e_hs1k > eval_hs1k.log 2>&1; t "eval hs1k rc=$?"
timeout 70 $B/eai study --cuda 0 --model $G --data $D --task hellaswag --schemes fp16 --repeats 3 \
  --baseline 0 --cooldown 0 --min-window 0 --out s_hs > study_hs.log 2>&1; t "study rc=$?"
cp e_hs/results.json $OUT/eval_hs_results.json 2>/dev/null
cp e_hs1k/results.json $OUT/eval_hs1k_results.json 2>/dev/null
cp s_hs/tasks.csv $OUT/study_hs_tasks.csv 2>/dev/null
cp eval_hs.log eval_hs1k.log study_hs.log $OUT/ 2>/dev/null
python3 - <<'PY'
import csv, json
for name in ("eval_hs", "eval_hs1k"):
    try:
        r = json.load(open(f"{name.replace('eval_', 'e_')}/results.json"))
        for task, v in r["eai"].items():
            print(name, task, json.dumps(v.get("timing")), v.get("requests"), v.get("forward_passes"), v.get("scored_tokens"))
    except Exception as e:
        print(name, "no result", e)
try:
    for r in csv.DictReader(open("s_hs/tasks.csv")):
        print("study", r["repetition"], "wall", r["wall_s"], "tokenize", r["tokenize_s"], "engine", r["engine_s"],
              "scoring", r["scoring_s"], "busy", r["engine_busy"], "requests", r["requests"], "energy", r["energy_j"])
except Exception as e:
    print("study no result", e)
PY
t "done"
