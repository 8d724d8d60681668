#!/usr/bin/env python3
"""llama.cpp CPU throughput on the same prompt as eai-model's `bench_cpu` example.

Usage: python3 bench_llamacpp.py model.gguf [pp] [tg] [reps] [threads]
Prints one JSON line per repetition: prefill (pp tokens in one eval) and decode (tg single-token
evals after a 1-token context) tokens/s.
"""
import json, sys, time

from llama_cpp import Llama

path = sys.argv[1]
pp = int(sys.argv[2]) if len(sys.argv) > 2 else 512
tg = int(sys.argv[3]) if len(sys.argv) > 3 else 64
reps = int(sys.argv[4]) if len(sys.argv) > 4 else 3
threads = int(sys.argv[5]) if len(sys.argv) > 5 else 2
llm = Llama(model_path=path, n_ctx=pp + tg + 8, n_batch=pp, n_threads=threads, n_threads_batch=threads,
            type_k=0, type_v=0, verbose=False)
text = "The quick brown fox jumps over the lazy dog while the energy meter keeps counting joules. " * 64
ids = llm.tokenize(text.encode(), add_bos=False, special=True)[:pp]
assert len(ids) == pp
for rep in range(reps):
    llm.reset()
    t = time.perf_counter()
    llm.eval(ids)
    pp_s = time.perf_counter() - t
    llm.reset()
    llm.eval(ids[:1])
    nxt = ids[1]
    t = time.perf_counter()
    for _ in range(tg):
        llm.eval([nxt])
        nxt = ids[llm.n_tokens % pp]  # logits of the last position are computed every step
    tg_s = time.perf_counter() - t
    print(json.dumps({"engine": "llama.cpp", "model": path.split("/")[-1], "threads": threads, "rep": rep,
                      "pp": pp, "pp_tok_s": round(pp / pp_s, 2), "tg": tg, "tg_tok_s": round(tg / tg_s, 2)}))
