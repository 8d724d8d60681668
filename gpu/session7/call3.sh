# issue 17 (llama.cpp 500 docs on CPU cores 4-15, in the background; the energy-under-load run) and
# issue 19 (BLOOM GPU tests + study on tiny32; the six-model table last, with nothing else running).
set -u
R=$(pwd); B=/root/b; W=/root/h19g; mkdir -p $W $OUT/h17 $OUT/h17ll $OUT/h19g
T0=$(date +%s); t() { echo "t=$(( $(date +%s) - T0 ))s $*"; }
(cd $R && OUT=$OUT/h17ll WORKERS=12 KV_DOCS=50 taskset -c 4-15 bash gpu/h17/llamacpp.sh > $OUT/h17ll/run.log 2>&1; echo "llamacpp exit $?" >> $OUT/h17ll/run.log) &
LL=$!
xz -dc $R/.gpu/bin/cuda_tests.xz > $B/cuda_tests && chmod +x $B/cuda_tests
export EAI_REQUIRE_GPU=1 EAI_NO_FETCH=1
GEN=$R/crates/eai-model/scripts/make_bloom_fixtures.py
taskset -c 0-3 python3 "$GEN" tiny32 $W/tiny32 > "$OUT/h19g/gen_tiny32.log" 2>&1; t "tiny32 gen rc=$?"
EAI_BLOOM_DIRS=$W/tiny32 timeout 70 taskset -c 0-3 $B/cuda_tests --test-threads=1 --nocapture bloom > "$OUT/h19g/tests_bloom.log" 2>&1
t "bloom tests rc=$?"; grep -E "^test |test result|BLOOM GPU|panicked" "$OUT/h19g/tests_bloom.log" | cut -c1-220
grep -h '^BLOOMCMP ' "$OUT/h19g/tests_bloom.log" | cut -c10- > "$OUT/h19g/bloom_cmp.jsonl"
timeout 40 taskset -c 0-3 $B/eai study --model $W/tiny32 --cuda 0 --data /root/data --schemes fp32,fp16,int8,dynamic \
  --task arc_easy:10 --repeats 1 --baseline 0 --cooldown 0 --out $W/study > "$OUT/h19g/study.log" 2>&1
t "bloom study rc=$?"; grep -iE "error|acc|\[" "$OUT/h19g/study.log" | head -12; cp $W/study/report.md "$OUT/h19g/study_report.md" 2>/dev/null
(cd $R && OUT=$OUT/h17 taskset -c 0-3 bash gpu/h17/run.sh > $OUT/h17/run.log 2>&1); t "h17 load rc=$?"; tail -25 $OUT/h17/run.log
(cd $R && OUT=$OUT/h20a HF=/tmp/h17-hf timeout 120 taskset -c 0-3 bash gpu/h20a/run.sh > $OUT/h20a.log 2>&1); t "h20a perplexity rc=$?"; cat $OUT/h20a/summary.txt 2>/dev/null | tail -12
wait $LL; t "llamacpp done"; tail -5 $OUT/h17ll/run.log; tail -c 1500 $OUT/h17ll/llamacpp-arc500.json 2>/dev/null
timeout 200 $B/gpu_bench --gguf none --only 7b --quick --score-reps 2 --shapes paper \
  --half-head true --schemes fp16,int8-w8a16 --out $W/six > "$OUT/h19g/six.log" 2>&1
t "six shapes rc=$?"; cp $W/six/gpu_bench.json "$OUT/h19g/six.json" 2>/dev/null
python3 - "$OUT/h19g/six.json" <<'PY' | tee "$OUT/h19g/six_table.md"
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
