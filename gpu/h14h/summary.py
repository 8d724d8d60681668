"""Issue 14's bars from gpu/h14h/run.sh's logs: `summary.py LOG_DIR`.

eai figures come from each study's tasks.csv (per-pass wall time of ≥ 5 s windows; the time
breakdown per pass), transformers figures from hf_samples_compare.py's row (same documents, same
GPU, same call). Request rates divide lm-eval's request count (transformers' `requests_per_pass`)
by each stack's seconds per pass, as docs/results/user-path-gpu.md does.
"""
import csv
import json
import os
import sys
from collections import defaultdict

logs = sys.argv[1]


def rows(name):
    try:
        return list(csv.DictReader(open(os.path.join(logs, f"{name}_tasks.csv"))))
    except OSError:
        return []


def by_scheme(name, task):
    out = defaultdict(list)
    for r in rows(name):
        if r["task"] == task:
            out[r["scheme"]].append(r)
    return out


def mean(rs, key):
    xs = [float(r[key]) for r in rs if r.get(key) not in ("", None)]
    return sum(xs) / len(xs) if xs else float("nan")


def verdict(ok):
    return "met" if ok else "NOT met"


def breakdown(label, rs):
    for r in rs:
        print(f"  {label} rep {r['repetition']}: {float(r['wall_s']):.3f} s/pass ({r['passes']} passes in "
              f"{float(r['window_s']):.2f} s), tokenize {float(r['tokenize_s']):.3f} + engine "
              f"{float(r['engine_s']):.3f} + scoring {float(r['scoring_s']):.3f} s per pass, engine busy "
              f"{float(r['engine_busy'] or 'nan'):.1%}, {float(r['energy_j'] or 'nan') / float(r['requests']):.4f} J/req")


hf = {}
try:
    for line in open(os.path.join(logs, "hf.jsonl")):
        r = json.loads(line)
        task = os.path.basename(r["samples"]).replace("samples_", "").replace(".jsonl", "")
        hf[(task, r["dtype"])] = r
except OSError:
    pass

print("== issue 14 bars (h14h run.sh) ==")
hs = by_scheme("s_hs", "hellaswag").get("fp16", [])
h = hf.get(("hellaswag", "fp16"))
if hs:
    s = mean(hs, "wall_s")
    n = h["requests_per_pass"] if h else 40168
    if h:
        x = (n / s) / h["requests_per_s"]
        print(f"HellaSwag full fp16: eai study {s:.3f} s/pass = {n / s:,.0f} req/s (lm-eval's {n:,} requests) | "
              f"transformers {h['requests_per_s']:,.0f} req/s, {h['seconds_per_pass']:.2f} s/pass | {x:.2f}x -> "
              f"{verdict(x >= 5)} (>= 5x); argmax agreement {h['argmax_agreement']}/{h['docs']}")
    else:
        print(f"HellaSwag full fp16: eai study {s:.3f} s/pass = {n / s:,.0f} req/s; transformers: no result")
    breakdown("eai hellaswag fp16", hs)
main = by_scheme("s_hs_main", "hellaswag").get("fp16", [])
if main:
    print(f"HellaSwag full fp16 with main's eai (before, same call): {mean(main, 'wall_s'):.3f} s/pass")
    breakdown("main hellaswag fp16", main)

try:
    for line in open(os.path.join(logs, "gpu_bench_hs.log")):
        if line.startswith("throughput fp16 "):
            r = json.loads(line[len("throughput fp16 "):])
            if r.get("task") == "hellaswag" and r.get("shared_contexts"):
                print(f"engine alone (gpu_bench loglikelihood_tokens, pre-tokenized, main's build): {r['requests']} "
                      f"requests in {r['seconds']:.2f} s = {r['requests_per_s']:,.0f} req/s of eai's "
                      f"{r['requests'] // max(r['repeats'], 1):,} unique = {r['seconds'] / max(r['repeats'], 1):.3f} s/pass, "
                      f"{r['forward_passes']} passes, {r['tokens_processed']:,} tokens per pass set")
except OSError:
    pass

for bt in (16384, 32768):
    rs = by_scheme(f"s_hs_bt{bt}", "hellaswag").get("fp16", [])
    if rs and hs:
        s = mean(rs, "wall_s")
        print(f"HellaSwag full fp16 at {bt} tokens per pass: {s:.3f} s/pass = {mean(hs, 'wall_s') / s:.2f}x "
              f"the default's (8192) req/s")
        breakdown(f"hellaswag fp16 bt{bt}", rs)

arc = by_scheme("s_arc", "arc_easy")
fp16 = mean(arc.get("fp16", []), "wall_s")
print(f"ARC-Easy full fp16: eai study {fp16:.3f} s/pass = {9501 / fp16:,.0f} req/s (lm-eval's 9,501)")
breakdown("arc_easy fp16", arc.get("fp16", []))
for scheme in ("int8", "dynamic"):
    rs = arc.get(scheme, [])
    if rs:
        s = mean(rs, "wall_s")
        ratio = fp16 / s
        print(f"ARC-Easy {scheme}: {s:.3f} s/pass = {ratio:.2f}x eai FP16 req/s -> {verdict(ratio >= 0.8)} (>= 0.8); "
              f"acc {mean(rs, 'score'):.4f}")
        breakdown(f"arc_easy {scheme}", rs)

try:
    ev = json.load(open(os.path.join(logs, "eval_arc_results.json")))["eai"]["arc_easy"]["timing"]
    per_pass = ev["total"] - ev.get("prepare", 0.0)
    d = per_pass / fp16 - 1
    print(f"eai eval ARC-Easy fp16: timed pass {per_pass:.3f} s (engine {ev['engine']:.3f} incl. tokenize "
          f"{ev.get('tokenize')}, scoring {ev.get('scoring', 0):.3f}; warm-up pass {ev.get('warmup', 0):.3f} s "
          f"untimed; prepare {ev.get('prepare', 0):.3f} s excluded) vs study {fp16:.3f} s/pass: {d:+.1%} -> "
          f"{verdict(abs(d) <= 0.10)} (within 10 %)")
    # Like for like: the pass's model calls and request handling, scoring excluded on both sides
    # (both tools score once per task; the study spreads that over its window's passes).
    a = per_pass - ev.get("scoring", 0.0)
    b = fp16 - mean(arc.get("fp16", []), "scoring_s")
    print(f"  without scoring: eval {a:.3f} s vs study {b:.3f} s per pass: {a / b - 1:+.1%} -> "
          f"{verdict(abs(a / b - 1) <= 0.10)} (within 10 %)")
except (OSError, KeyError, TypeError, ZeroDivisionError) as e:
    print(f"eai eval ARC-Easy: no result ({e})")
