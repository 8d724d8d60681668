#!/usr/bin/env python3
"""Cuts the committed test fixtures (tests/fixtures/data/, laid out like shared/data) out of the
full data sets. Rows are copied byte for byte (MMLU records keep their CRLF/embedded \\r);
TruthfulQA items are re-serialised with key order preserved. The HellaSwag files hold 10 genuine
lines of hellaswag_val.jsonl (quoted verbatim in public code; the full file is unavailable) plus
synthetic WikiHow-style items (source_id "synthetic~...") that exercise lm-eval's preprocessing.

usage: scripts/make_fixtures.py /work/shared/data   (run from crates/eai-eval)"""
import csv
import json
import os
import sys

src = sys.argv[1]
dst = "tests/fixtures/data"


def write(path, data, mode="w"):
    path = os.path.join(dst, path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, mode, newline="" if mode == "w" else None) as f:
        f.write(data)


def lines(path):
    with open(os.path.join(src, path), "rb") as f:
        return f.read().split(b"\n")


def pick(path, idx):
    ls = lines(path)
    return b"".join(ls[i] + b"\n" for i in idx)


# ARC: test head + the edge items of the spec (labels 1-4, 3 and 5 choices, non-ASCII).
for sub, extra in [("ARC-Challenge", [44, 121, 384, 836]), ("ARC-Easy", [])]:
    write(f"arc/{sub}/{sub}-Test.jsonl", pick(f"arc/{sub}/{sub}-Test.jsonl", list(range(30)) + extra), "wb")
    write(f"arc/{sub}/{sub}-Train.jsonl", pick(f"arc/{sub}/{sub}-Train.jsonl", range(60)), "wb")

# MMLU: every subject's dev file whole, and the first 3 test records byte for byte.
class Counting:
    def __init__(self, raw_lines):
        self.it = iter(raw_lines)
        self.used = []

    def __iter__(self):
        return self

    def __next__(self):
        line = next(self.it)
        self.used.append(line)
        return line


for split in ["dev", "test"]:
    for name in sorted(os.listdir(os.path.join(src, "mmlu", split))):
        raw = open(os.path.join(src, "mmlu", split, name), "rb").read()
        if split == "dev":
            write(f"mmlu/{split}/{name}", raw, "wb")
            continue
        text = raw.decode("utf-8")
        parts = text.split("\n")
        raw_lines = [p + "\n" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])
        c = Counting(raw_lines)
        rdr = csv.reader(c)
        for _ in range(3):
            next(rdr)
        write(f"mmlu/{split}/{name}", "".join(c.used).encode("utf-8"), "wb")

# TruthfulQA: items 0..29 and #208 (#25 is among the first 30), key order preserved.
items = json.load(open(os.path.join(src, "truthfulqa/mc_task.json"), encoding="utf-8"))
sel = items[:30] + [items[208]]
write("truthfulqa/mc_task.json", json.dumps(sel, indent=2, ensure_ascii=False) + "\n")

# GSM8K
write("gsm8k/test.jsonl", pick("gsm8k/test.jsonl", range(30)), "wb")
write("gsm8k/train.jsonl", pick("gsm8k/train.jsonl", range(100)), "wb")

# HellaSwag
genuine = open("scripts/hellaswag_val_head10.jsonl", encoding="utf-8").read().splitlines()


def syn(i, label, ctx_a, ctx_b, endings, act="Food and Entertaining"):
    return json.dumps({"ind": 900000 + i, "activity_label": act, "ctx_a": ctx_a, "ctx_b": ctx_b,
                       "ctx": (ctx_a + " " + ctx_b).strip(), "split": "val", "split_type": "zeroshot",
                       "label": label, "endings": endings, "source_id": f"synthetic~eai-{i}"},
                      ensure_ascii=False)


synthetic = [
    syn(1, 0, "[header] How to bake bread [title] Preheat the oven. [step] Heat it to 350 degrees.", "",
        ["[title] Mix the flour. [step] Use a bowl.", "Wait   for it   to cool [substeps] ok",
         " Knead the dough [step]", "Eat it."]),
    syn(2, 2, "A crowd gathers in the square.", "the Man in RED",
        ["waves at the café owner.", "sits down.", "naïvely walks away from everyone.", "[x] leaves"],
        act="Walking"),
    syn(3, 1, "[header] How to keep going [step] He keeps going [step]", "",
        ["He stops.", "He never stops [title] Really.", "  Spaces   around  ", "[only a tag]"]),
    syn(4, 3, "Unclosed [bracket stays. Tabs\there.", "\u01c6emal THE builder",
        ["ends [a] b [c", "ends two", "ends three", "ends \u00e9\u00e9\u00e9 four"], act="Building"),
]
write("hellaswag/hellaswag_val.jsonl", "\n".join(genuine + synthetic) + "\n")
train = [syn(10 + i, (i * 3) % 4, f"Step {i}: the cook [step] stirs the pot.", "she" if i % 2 else "",
             [f"adds salt {i}.", f"adds pepper {i} [title] Done.", f"tastes it {i}.", f"serves it {i}."])
         for i in range(8)]
write("hellaswag/hellaswag_train.jsonl", "\n".join(genuine[5:] + train) + "\n")
