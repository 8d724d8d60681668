#!/bin/bash
# h19g GPU run (issue 19): BLOOM on the GPU.
#   1. transformers writes random-weight BloomForCausalLM checkpoints (scripts/make_bloom_fixtures.py):
#      `tiny32` (hidden 192, 6 heads of dim 32, 2 layers, vocab 300, with a tokenizer) and `7b`
#      (Bloomz-7B1's exact config — hidden 4096, 32 heads, vocab 250,880 — with one layer, 4.9 GB);
#   2. the `cuda` test binary's BLOOM tests: GPU vs CPU for every scheme, GGUF = safetensors,
#      shared prefixes / greedy decode / CUDA graphs, the GPU engine, and
#      `bloom_gpu_matches_transformers` (FP32 GPU logits within 1e-4 × max |logit| of
#      transformers at every position; GPU vs CPU; FP16/BF16/W8A8/W8A16/dynamic vs transformers,
#      printed as `BLOOMCMP {json}` lines) on tiny32, later on the 7B-config layer;
#   3. `eai study --cuda 0` on the tiny32 BLOOM folder (config.json, tokenizer.json, safetensors),
#      fp32/fp16/int8/dynamic on 10 ARC-Easy documents, end to end;
#   4. (last, with nothing else running) gpu_bench's 7B table for the paper's six models at their exact shapes (synthetic weights,
#      labelled), FP16 vs W8A16: batch-1 decode tok/s and J/token (NVML energy), scoring
#      (2 × 8 sequences × 512 tokens) tok/s and J/token — Bloomz-7B1 beside the five Llama-family.
#
# Build here (CPU machine) from this branch (or main after the merge):
#   flock /work/target/.release.lock env CARGO_TARGET_DIR=/work/target cargo build --release \
#     --features cuda --bin eai
#   flock /work/target/.release.lock env CARGO_TARGET_DIR=/work/target cargo build --release \
#     -p eai-model --features cuda --example gpu_bench --test cuda
#   strip + xz -T1 -6 into .gpu/bin/{eai,gpu_bench,cuda_tests}.xz (the `cuda` test executable is
#   target/release/deps/cuda-<hash>); carry .gpu/bin (git-ignored).
# Needs on the GPU machine: python3 with torch, transformers, tokenizers, safetensors; /root/data.
# Expected duration: about 4.5 minutes (the six-shape table is ~3 of them: 12 synthetic 7B builds;
# the probe took 21 s for tiny32, 58 s for the 7B-config checkpoint, 28 s for its comparison).
# Outputs under $OUT: env.log, gen_*.log, tests_bloom.log, bloom_cmp.jsonl, study.log,
# study_report.md, six.log, six.json, six_table.md, tests_bloom_7b.log.
set -u
R=$(pwd); B=/root/b; W=/root/h19g
OUT=${OUT:-/tmp/out-h19g}; mkdir -p "$OUT" "$B" "$W"
for f in "$R"/.gpu/bin/*.xz; do
  n=$(basename "$f" .xz); [ -x "$B/$n" ] || { xz -dc "$f" > "$B/$n" && chmod +x "$B/$n"; }
done
{ date -u; nvidia-smi --query-gpu=name,driver_version,memory.total,power.limit --format=csv,noheader; nproc
  python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"; } > "$OUT/env.log" 2>&1
cat "$OUT/env.log"
GEN=$R/crates/eai-model/scripts/make_bloom_fixtures.py
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))s"; }
export EAI_REQUIRE_GPU=1 EAI_NO_FETCH=1

# 1. Checkpoints: tiny32 now; the 7B-config layer in the background (niced, 10 threads).
python3 "$GEN" tiny32 $W/tiny32 > "$OUT/gen_tiny32.log" 2>&1; echo "tiny32 gen rc=$? $(t)"
(OMP_NUM_THREADS=10 nice -n 19 python3 "$GEN" 7b $W/b7 > "$OUT/gen_7b.log" 2>&1; echo "rc=$?" >> "$OUT/gen_7b.log") &
GENPID=$!

# 2. The BLOOM GPU tests, with transformers' tiny32 logits.
EAI_BLOOM_DIRS=$W/tiny32 timeout 60 $B/cuda_tests --test-threads=1 --nocapture bloom > "$OUT/tests_bloom.log" 2>&1
echo "bloom tests rc=$? $(t)"; grep -E "^test |test result|BLOOM GPU|panicked" "$OUT/tests_bloom.log" | cut -c1-220
grep -h '^BLOOMCMP ' "$OUT/tests_bloom.log" | cut -c10- > "$OUT/bloom_cmp.jsonl"

# 3. eai study on the BLOOM folder, on the GPU.
timeout 40 $B/eai study --model $W/tiny32 --cuda 0 --data /root/data --schemes fp32,fp16,int8,dynamic \
  --task arc_easy:10 --repeats 1 --baseline 0 --cooldown 0 --out $W/study > "$OUT/study.log" 2>&1
echo "study rc=$? $(t)"; grep -iE "error|acc|\[" "$OUT/study.log" | head -12; cp $W/study/report.md "$OUT/study_report.md" 2>/dev/null

# 4. The 7B-config layer against transformers (waits for the generator, so that nothing else runs
#    on the machine during the speed and energy measurements of step 5).
wait $GENPID; echo "7b gen: $(tail -1 "$OUT/gen_7b.log") $(t)"
EAI_BLOOM_DIRS=$W/b7 timeout 90 $B/cuda_tests --test-threads=1 --nocapture bloom_gpu_matches_transformers \
  > "$OUT/tests_bloom_7b.log" 2>&1
echo "7b compare rc=$? $(t)"; grep -E "test result|panicked" "$OUT/tests_bloom_7b.log"
grep -h '^BLOOMCMP ' "$OUT/tests_bloom_7b.log" | cut -c10- >> "$OUT/bloom_cmp.jsonl"
python3 - "$OUT/bloom_cmp.jsonl" <<'PY'
import json, sys
for l in open(sys.argv[1]):
    x = json.loads(l)
    print(f"{x['dir'].split('/')[-1]:7} seq {x['seq']} {x['scheme']:11} vs {x['vs']:18} max|Δ| {x['max_abs']:.3e} "
          f"(logit scale {x['max_abs_logit']:.2f}, relative {x['relative']:.2e}) top-1 {x['top1_agree']:.2f}")
PY
rm -rf $W/b7

# 5. The paper's six shapes, FP16 vs W8A16 (decode batch 1, 128 new tokens; scoring 2 reps).
#    `--half-head true`: the int8 schemes' f16 LM head, eai's default (GpuOptions::new); rows are
#    labelled `int8-w8a16+f16-head` (session 5's table had the f32 head).
timeout 200 $B/gpu_bench --gguf none --only 7b --quick --score-reps 2 --shapes paper \
  --half-head true --schemes fp16,int8-w8a16 --out $W/six > "$OUT/six.log" 2>&1
echo "six shapes rc=$? $(t)"; cp $W/six/gpu_bench.json "$OUT/six.json" 2>/dev/null
python3 - "$OUT/six.json" <<'PY' | tee "$OUT/six_table.md"
import json, sys
r = json.load(open(sys.argv[1]))
print(f"device: {r.get('device')} (cc {r.get('compute_capability')})\n")
print("| model (synthetic weights) | scheme | decode tok/s (batch 1) | decode-only tok/s | J/token decode | scoring tok/s | J/token scoring | weights GB |")
print("|---|---|---|---|---|---|---|---|")
for x in r.get("synthetic_7b", []):
    if "error" in x:
        print(f"| {x['model']} | {x['scheme']} | — | — | — | — | — | error: {x['error'][:120]} |"); continue
    d = (x.get("decode") or [{}])[0]; p = x.get("prefill") or {}
    f = lambda v, n=3: "n/a" if v is None else f"{v:.{n}f}"
    print(f"| {x['model']} | {x['scheme']} | {f(d.get('tokens_per_s'),1)} | {f(d.get('decode_only_tokens_per_s'),1)} | "
          f"{f(d.get('j_per_token'))} | {f(p.get('tokens_per_s'),0)} | {f(p.get('j_per_token'),4)} | {x.get('memory', {}).get('weights', 0) / 1e9:.2f} |")
PY
