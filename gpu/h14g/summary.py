"""Issue 14's bars from gpu/h14g/run.sh's outputs: `summary.py WORK_DIR LOG_DIR`.

eai figures come from each study's tasks.csv (per-pass wall time and energy of ≥ 5 s windows),
transformers figures from hf_samples_compare.py's rows (same documents, same GPU, same call).
Request rates divide lm-eval's request count (transformers' `requests_per_pass`, built as lm-eval
builds them) by each stack's seconds per pass, as in docs/results/user-path-gpu.md.
"""
import csv
import glob
import json
import os
import re
import sys
from collections import defaultdict

work, logs = sys.argv[1], sys.argv[2]


def rows(path):
    try:
        return list(csv.DictReader(open(path)))
    except OSError:
        return []


def mean(xs):
    xs = [float(x) for x in xs if x not in ("", None)]
    return sum(xs) / len(xs) if xs else float("nan")


hf = defaultdict(dict)
try:
    for line in open(os.path.join(logs, "hf.jsonl")):
        r = json.loads(line)
        task = os.path.basename(r["samples"]).replace("samples_", "").replace(".jsonl", "")
        hf[task][r["dtype"]] = r
except OSError:
    pass


def study(name, task):
    by = defaultdict(list)
    for r in rows(os.path.join(logs, f"{name}_tasks.csv")):
        if r["task"] == task:
            by[r["scheme"]].append(r)
    return by


def verdict(ok):
    return "met" if ok else "NOT met"


print("== issue 14 bars (h14g run.sh) ==")
arc = study("s_arc", "arc_easy")
arc_hf = hf.get("arc_easy", {})
n_arc = arc_hf.get("fp16", {}).get("requests_per_pass", 9501)
fp16_s = mean(r["wall_s"] for r in arc.get("fp16", []))
for scheme, dtype, speed_bar, energy_bar in [("fp16", "fp16", 10, 0.15), ("fp32", "fp32", 5, 0.25)]:
    rs = arc.get(scheme, [])
    s = mean(r["wall_s"] for r in rs)
    j = mean(r["energy_j"] for r in rs) / n_arc
    h = arc_hf.get(dtype)
    if h and rs:
        x, e = (n_arc / s) / h["requests_per_s"], j / h["j_per_request"]
        print(f"ARC-Easy {scheme}: eai {s:.3f} s/pass {n_arc / s:,.0f} req/s {j:.4f} J/req | "
              f"transformers {h['requests_per_s']:,.0f} req/s {h['j_per_request']:.4f} J/req | "
              f"{x:.1f}x, {e:.3f}x J -> {verdict(x >= speed_bar and e <= energy_bar)} "
              f"(>= {speed_bar}x, <= {energy_bar}x); argmax agreement {h['argmax_agreement']}/2376")
for scheme in ("int8", "dynamic"):
    rs = arc.get(scheme, [])
    s = mean(r["wall_s"] for r in rs)
    if rs:
        ratio = fp16_s / s
        acc = mean(r["score"] for r in rs)
        print(f"ARC-Easy {scheme}: {s:.3f} s/pass = {ratio:.2f}x eai FP16 req/s -> "
              f"{verdict(ratio >= 0.8)} (>= 0.8); acc {acc:.4f}")
for name, task in [("s_arc", "arc_easy"), ("s_hs", "hellaswag"), ("s_gsm", "gsm8k")]:
    for r in study(name, task).get("fp16", []):
        b = float(r["engine_busy"] or "nan")
        print(f"engine busy {task} fp16 rep {r['repetition']}: {b:.1%} -> {verdict(b >= 0.85)} (>= 85 %); "
              f"passes {r['passes']}, window {float(r['window_s']):.2f} s, tokenize {float(r['tokenize_s']):.3f} s, "
              f"engine {float(r['engine_s']):.3f} s per pass")

try:
    ev = json.load(open(os.path.join(logs, "eval_arc_results.json")))["eai"]["arc_easy"]["timing"]
    per_pass = ev["total"] - ev.get("prepare", 0.0)
    d = per_pass / fp16_s - 1
    print(f"eai eval ARC-Easy fp16: timed pass {per_pass:.3f} s (engine {ev['engine']:.3f}, tokenize "
          f"{ev.get('tokenize')}, warm-up pass {ev.get('warmup', 0):.3f} s untimed) vs study {fp16_s:.3f} s/pass: "
          f"{d:+.1%} -> {verdict(abs(d) <= 0.10)} (within 10 %)")
except (OSError, KeyError, TypeError) as e:
    print(f"eai eval ARC-Easy: no result ({e})")

hs = study("s_hs", "hellaswag").get("fp16", [])
h = hf.get("hellaswag", {}).get("fp16")
if hs and h:
    s = mean(r["wall_s"] for r in hs)
    n = h["requests_per_pass"]
    x = (n / s) / h["requests_per_s"]
    print(f"HellaSwag fp16: eai {s:.2f} s/pass {n / s:,.0f} req/s | transformers {h['requests_per_s']:,.0f} req/s | "
          f"{x:.2f}x -> {verdict(x >= 5)} (>= 5x); argmax agreement {h['argmax_agreement']}/{h['docs']}")

gsm = study("s_gsm", "gsm8k")
for dtype in ("fp16", "fp32"):
    rs, h = gsm.get(dtype, []), hf.get("gsm8k", {}).get(dtype)
    if rs and h:
        s = mean(r["wall_s"] for r in rs)
        toks = mean(r["tokens"] for r in rs)
        x = (toks / s) / h["tokens_per_s"]
        agree = h["same_strict_answer"] / h["docs"]
        speed = f" -> {verdict(x >= 5)} (>= 5x)" if dtype == "fp16" else ""
        print(f"GSM8K 200x5-shot {dtype}: eai {s:.2f} s/pass {toks:.0f} tokens {toks / s:,.0f} tok/s | transformers "
              f"{h['tokens_per_s']:,.1f} tok/s | {x:.1f}x{speed}; same strict answer {h['same_strict_answer']}/200 "
              f"= {agree:.1%} -> {verdict(agree >= 0.98)} (>= 98 %); same text {h['same_text']}/200")


def texts(path):
    out = {}
    for f in glob.glob(path):
        for line in open(f):
            d = json.loads(line)
            out[d["doc_id"]] = d["resps"][0][0] if d.get("resps") else None
    return out


a = texts(os.path.join(work, "s_gsm/samples/fp16/rep1/samples_gsm8k*.jsonl"))
b = texts(os.path.join(work, "s_gsm1/samples/fp16/rep1/samples_gsm8k*.jsonl"))
if a and b:
    same = sum(1 for k in a if a[k] == b.get(k))
    print(f"GSM8K fp16 batched (continuous, gen_batch 256) vs one at a time (EAI_GEN_BATCH=1): identical text "
          f"{same}/{len(a)}")
    for r in study("s_gsm1", "gsm8k").get("fp16", []):
        print(f"  one at a time: {float(r['wall_s']):.2f} s/pass, {float(r['tokens']) / float(r['wall_s']):,.0f} tok/s")

ncu = os.path.join(logs, "ncu_hs_fp16.txt")
if os.path.exists(ncu):
    kernels, name = [], None
    for line in open(ncu, errors="replace"):
        if line.startswith("  ") and not line.startswith("    ") and "(" in line:
            name = line.strip().split(" (")[0][:60]
        m = re.search(r"gpu__time_duration\.sum\s+(\w+)\s+([\d.,]+)\s+([\d.,]+)\s+([\d.,]+)", line)
        if m and name:
            unit, avg = m.group(1), float(m.group(4).replace(",", ""))
            scale = {"ns": 1e-3, "us": 1.0, "usecond": 1.0, "ms": 1e3, "msecond": 1e3, "nsecond": 1e-3}.get(unit, 1.0)
            kernels.append((name, avg * scale))
    inv = defaultdict(int)
    tot = defaultdict(float)
    for n, us in kernels:
        inv[n] += 1
        tot[n] += us
    grand = sum(tot.values())
    print(f"ncu HellaSwag:300 fp16 (eai eval, warm-up + timed pass): {len(kernels)} kernel entries, "
          f"{grand / 1e3:.1f} ms of kernel time; top kernels:")
    for n, us in sorted(tot.items(), key=lambda kv: -kv[1])[:15]:
        print(f"  {us / 1e3:9.2f} ms {us / max(grand, 1e-9):6.1%}  {n} (x{inv[n]} entries)")
