#!/usr/bin/env python3
"""Extracts the 8 fixed chain-of-thought exemplars of lm-eval's gsm8k_cot and gsm8k_cot_llama
(fewshot_config.samples of lm_eval/tasks/gsm8k/gsm8k-cot.yaml and gsm8k-cot-llama.yaml, harness
commit 4e7e0d47f33bc71070c1d38394bafbb52b117163) into data/gsm8k_cot_exemplars.json, resolving
YAML line folding exactly as lm-eval's loader (PyYAML) does.

usage: scripts/cot_exemplars.py <path to lm-evaluation-harness checkout>"""
import json
import sys

import yaml

root = sys.argv[1]
out = {}
for key, name in [("gsm8k_cot", "gsm8k-cot.yaml"), ("gsm8k_cot_llama", "gsm8k-cot-llama.yaml")]:
    cfg = yaml.safe_load(open(f"{root}/lm_eval/tasks/gsm8k/{name}"))
    out[key] = [{"question": s["question"], "target": s["target"]} for s in cfg["fewshot_config"]["samples"]]
json.dump(out, open("data/gsm8k_cot_exemplars.json", "w"), indent=1, ensure_ascii=False)
