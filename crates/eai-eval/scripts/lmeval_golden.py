#!/usr/bin/env python3
"""Golden parity fixture: runs EleutherAI lm-evaluation-harness itself (installed from commit
4e7e0d47f33bc71070c1d38394bafbb52b117163, no torch needed) on the committed fixture data
(tests/fixtures/data) with a scripted stand-in model, and records

  * every request lm-eval builds (SHA-256 of context + "\\x1f" + continuation, in (doc, choice)
    order; full text for the first two documents of each task),
  * lm-eval's own results (metrics, stderr, group aggregates, n-samples, versions, n-shot).

The scripted model is a pure function both sides compute identically:
  loglikelihood(ctx, cont) = (-(h % 100000) / 10000.0 - 0.01, h % 7 == 0),
  h = FNV-1a-64(utf8(ctx + "\\x00" + cont));
  generate_until: a canned answer chosen from the doc's gold answer and h(ctx), written to the
  golden file as `generations` (raw, uncut) so the Rust side replays it.

usage (from crates/eai-eval):
  python -m venv /tmp/v && /tmp/v/bin/pip install <lm-evaluation-harness checkout>
  /tmp/v/bin/python scripts/lmeval_golden.py > tests/fixtures/lmeval_golden.json
  /tmp/v/bin/python scripts/lmeval_golden.py --full /work/shared/data \
      > tests/fixtures/lmeval_golden_full.json   # hashes truncated to 16 hex digits
"""
import hashlib
import json
import logging
import os
import sys

import datasets

import lm_eval
import lm_eval.api.task as lm_task
from lm_eval.api.model import LM

logging.disable(logging.WARNING)
FULL = len(sys.argv) > 2 and sys.argv[1] == "--full"
# --full <shared/data>: the real files and pools (hashes only), for tests that run when
# ../shared/data is present; default: the committed fixture subsets.
FIX = sys.argv[2] if FULL else os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "data")


def jl(path):
    with open(os.path.join(FIX, path), encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def arc(sub):
    def conv(split):
        rows = []
        for d in jl(f"arc/{sub}/{sub}-{split}.jsonl"):
            rows.append({"id": d["id"], "question": d["question"]["stem"],
                         "choices": {"text": [c["text"] for c in d["question"]["choices"]],
                                     "label": [c["label"] for c in d["question"]["choices"]]},
                         "answerKey": d["answerKey"]})
        return datasets.Dataset.from_list(rows)
    test = conv("Test")
    return datasets.DatasetDict({"train": conv("Train"), "validation": test, "test": test})


def mmlu(subject):
    import csv
    def conv(split):
        with open(os.path.join(FIX, f"mmlu/{split}/{subject}_{split}.csv"), newline="", encoding="utf-8") as f:
            rows = [{"question": r[0], "subject": subject, "choices": r[1:5], "answer": "ABCD".index(r[5])}
                    for r in csv.reader(f)]
        return datasets.Dataset.from_list(rows)
    test = conv("test")
    return datasets.DatasetDict({"test": test, "validation": test, "dev": conv("dev")})


def hellaswag():
    def conv(name):
        rows = []
        for d in jl(f"hellaswag/{name}"):
            d = dict(d)
            d["label"] = str(d["label"])
            d["ind"] = int(d["ind"])
            rows.append(d)
        return datasets.Dataset.from_list(rows)
    return datasets.DatasetDict({"train": conv("hellaswag_train.jsonl"), "validation": conv("hellaswag_val.jsonl")})


def truthfulqa():
    items = json.load(open(os.path.join(FIX, "truthfulqa/mc_task.json"), encoding="utf-8"))
    rows = [{"question": it["question"],
             "mc1_targets": {"choices": list(it["mc1_targets"].keys()), "labels": list(it["mc1_targets"].values())},
             "mc2_targets": {"choices": list(it["mc2_targets"].keys()), "labels": list(it["mc2_targets"].values())}}
            for it in items]
    return datasets.DatasetDict({"validation": datasets.Dataset.from_list(rows)})


def gsm8k():
    return datasets.DatasetDict({s: datasets.Dataset.from_list(jl(f"gsm8k/{s}.jsonl")) for s in ["train", "test"]})


def fake_load_dataset(path=None, name=None, **kw):
    if path == "allenai/ai2_arc":
        return arc(name)
    if path == "cais/mmlu":
        return mmlu(name)
    if path == "Rowan/hellaswag":
        return hellaswag()
    if path == "truthfulqa/truthful_qa":
        return truthfulqa()
    if path == "openai/gsm8k":
        return gsm8k()
    raise RuntimeError(f"unexpected dataset {path} {name}")


lm_task.datasets.load_dataset = fake_load_dataset


def fnv(s):
    h = 0xcbf29ce484222325
    for b in s.encode("utf-8"):
        h ^= b
        h = (h * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


def sha(s):
    return hashlib.sha256(s.encode("utf-8")).hexdigest()


REQS = {}
GENS = {}
# MMLU subjects whose full request text is kept (others: hashes only, to keep the file small).
TEXT_MMLU = {"mmlu_abstract_algebra", "mmlu_college_mathematics", "mmlu_college_medicine"}


def gold_of(doc):
    return (doc.get("answer") or doc.get("target")).split("####")[-1].strip()


def canned(ctx, doc):
    g = gold_of(doc)
    h = fnv(ctx)
    with_commas = f"{int(g):,}" if g.lstrip("-").isdigit() else g
    variants = [
        f"Let me think. {g} is it.\n#### {g}\n\nQuestion: more",
        f"So the total is {g}. The answer is {g}.\nQ: next",
        f"It costs ${with_commas}.",
        f"The answer is {g}",
        f"#### 7\nThe final answer is {g}",
        f"The final answer is ${with_commas}.<|eot_id|>junk",
        "I do not know.",
        f"{g}.00 dollars",
    ]
    return variants[h % len(variants)]


class Scripted(LM):
    def loglikelihood(self, requests, disable_tqdm=False):
        out = []
        for r in requests:
            ctx, cont = r.args
            REQS.setdefault(r.task_name, {})[(r.doc_id, r.idx)] = (ctx, cont)
            h = fnv(ctx + "\x00" + cont)
            out.append((-(h % 100000) / 10000.0 - 0.01, h % 7 == 0))
        return out

    def loglikelihood_rolling(self, requests, disable_tqdm=False):
        raise NotImplementedError

    def generate_until(self, requests, disable_tqdm=False):
        out = []
        for r in requests:
            ctx, kw = r.args
            REQS.setdefault(r.task_name, {})[(r.doc_id, r.idx)] = (ctx, json.dumps(kw["until"]))
            text = canned(ctx, r.doc)
            GENS[sha(ctx)] = text
            for u in kw["until"]:  # what an engine returns: cut at the stop strings
                if u:
                    text = text.split(u)[0]
            out.append(text)
        return out


def run(name, tasks, num_fewshot, limit=None):
    REQS.clear()
    res = lm_eval.simple_evaluate(model=Scripted(), tasks=tasks, num_fewshot=num_fewshot, limit=limit,
                                  bootstrap_iters=100000, random_seed=0, numpy_random_seed=1234,
                                  torch_random_seed=None, fewshot_random_seed=1234, log_samples=False)
    requests = {}
    for task, reqs in REQS.items():
        keys = sorted(reqs)
        first_docs = sorted({d for d, _ in keys})[:2]
        if task.startswith("mmlu_") and task not in TEXT_MMLU:
            first_docs = []
        elif FULL:
            first_docs = first_docs[:1]
        requests[task] = {
            "hashes": [sha(reqs[k][0] + "\x1f" + reqs[k][1])[: 16 if FULL else 64] for k in keys],
            "keys": [list(k) for k in keys],
            "text": [[k[0], k[1], reqs[k][0], reqs[k][1]] for k in keys if k[0] in first_docs],
        }
    results = {}
    for t, r in res["results"].items():
        results[t] = {k: v for k, v in r.items() if "," in k}
    return {"name": name, "tasks": tasks, "num_fewshot": num_fewshot, "limit": limit,
            "requests": requests, "results": results, "n-samples": res.get("n-samples", {}),
            "versions": {k: str(v) for k, v in res.get("versions", {}).items()},
            "n-shot": res.get("n-shot", {}), "group_subtasks": res.get("group_subtasks", {})}


full_runs = [
    run("arc_challenge_25shot_limit25", ["arc_challenge"], 25, limit=25),
    run("arc_easy_25shot_limit25", ["arc_easy"], 25, limit=25),
    run("gsm8k_5shot_limit25", ["gsm8k"], None, limit=25),
    run("gsm8k_cot_limit10", ["gsm8k_cot"], None, limit=10),
    run("mmlu_5shot_limit3", ["mmlu"], 5, limit=3),
    run("truthfulqa_full", ["truthfulqa_mc1", "truthfulqa_mc2"], None),
] if FULL else None

runs = full_runs or [
    run("arc_0shot", ["arc_easy", "arc_challenge"], None),
    run("arc_25shot", ["arc_easy", "arc_challenge"], 25),
    run("arc_challenge_25shot_limit10", ["arc_challenge"], 25, limit=10),
    run("hellaswag_0shot", ["hellaswag"], None),
    run("hellaswag_3shot", ["hellaswag"], 3),
    run("mmlu_0shot", ["mmlu"], None),
    run("mmlu_5shot", ["mmlu"], 5),
    run("truthfulqa", ["truthfulqa_mc1", "truthfulqa_mc2"], None),
    run("gsm8k", ["gsm8k"], None),
    run("gsm8k_3shot", ["gsm8k"], 3),
    run("gsm8k_cot", ["gsm8k_cot", "gsm8k_cot_llama"], None),
]
json.dump({"lm_eval": lm_eval.__version__ if hasattr(lm_eval, "__version__") else "0.4.13.dev0",
           "harness_commit": "4e7e0d47f33bc71070c1d38394bafbb52b117163",
           "python": sys.version.split()[0], "runs": runs, "generations": GENS},
          sys.stdout, separators=(",", ":"), ensure_ascii=False, sort_keys=True)
