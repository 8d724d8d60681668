#!/usr/bin/env python3
"""Writes tests/fixtures/pyrandom_golden.json: draws from CPython's random.Random that
eai_eval::PyRandom must reproduce exactly. Run from crates/eai-eval with python3 (3.11 was used)."""
import json
import random
import sys

out = {"python": sys.version.split()[0], "seeds": []}
for seed in [0, 1, 42, 1234, -5, 2**40 + 3]:
    r = random.Random(seed)
    rec = {"seed": seed}
    rec["u32"] = [r.getrandbits(32) for _ in range(10)]
    # as integers (x * 2**53 is exact) so JSON float parsing cannot blur the comparison
    rec["random53"] = [int(r.random() * 2**53) for _ in range(5)]
    rec["bits"] = [[k, r.getrandbits(k)] for k in [1, 7, 31, 33, 48, 64]]
    rec["randbelow"] = [[n, r._randbelow(n)] for n in [1, 2, 3, 1000, 2**33 + 1]]
    rec["samples"] = []
    for n, k in [(10, 3), (1119, 25), (7473, 5), (39905, 10), (30, 25), (2251, 25), (100, 100), (22, 6), (85, 10), (86, 10)]:
        rec["samples"].append([n, k, r.sample(range(n), k)])
    xs = list(range(20))
    r.shuffle(xs)
    rec["shuffle20"] = xs
    out["seeds"].append(rec)

# lm-eval's pattern: one generator per task, one draw per evaluated document.
r = random.Random(1234)
out["arc_challenge_25shot_first50"] = [r.sample(range(1119), 25) for _ in range(50)]
r = random.Random(1234)
out["gsm8k_5shot_first50"] = [r.sample(range(7473), 5) for _ in range(50)]
json.dump(out, open("tests/fixtures/pyrandom_golden.json", "w"), indent=None, separators=(",", ":"))
