#!/usr/bin/env bash
# Issue 18 on ONE GPU (branch h18): the multi-device code paths that one H100 can check.
#  1. `eai eval --cuda all` on a one-GPU machine equals `--cuda 0` (same engine path): identical
#     results; `--cuda 0,0` (two data-parallel replicas on the same GPU: the DataParallel path with
#     CUDA engines, each on its own thread) scores within float rounding of one replica.
#  2. `eai study` alone on GPU 0: no `shared` flag; the charged sources add up to each task's
#     energy as stored; every GPU's counter read around the window's edges (no CoarseEdge).
#  3. The same study while a second process (torch matmuls) loads GPU 0: `shared` on nvml/0.
#  4. `eai study --cuda 0 --cuda 0,0`: two device sets, sub-folders, scaling.md (efficiency on one
#     GPU is only a functional check: both replicas share the GPU).
# Carries: .gpu/bin/eai.xz (release `eai`, features cuda; built with
#   flock /work/target/.release.lock env CARGO_TARGET_DIR=/work/target cargo build --release --bin eai
# then strip + xz). Needs the SmolLM2 GGUF and the data root; python3 with torch (step 3 only).
# Expected: ~2 minutes on one H100. Prints "IDENTICAL" for 1, max |Δ log-likelihood| for 0,0,
# "shared: no" then "shared: yes" for nvml/0, "sum check ok" lines, and the scaling table.
set -uo pipefail
OUT=${OUT:-gpu_out}/h18
mkdir -p "$OUT"
G=${GGUF:-/root/g/SmolLM2-135M-Instruct.Q4_1.gguf}
D=${DATA:-/root/data}
# This branch's binary (carried) unless BIN names another build of it.
if [ -z "${BIN:-}" ] && [ -f .gpu/bin/eai.xz ]; then
  mkdir -p /tmp/h18b && xz -dc .gpu/bin/eai.xz > /tmp/h18b/eai && chmod +x /tmp/h18b/eai
  BIN=/tmp/h18b/eai
fi
BIN=${BIN:-/root/b/eai}
export EAI_REQUIRE_GPU=1
nvidia-smi --query-gpu=index,name,driver_version,power.limit --format=csv | tee "$OUT/gpu.txt"
T=arc_easy:500

for dev in 0 all 0,0; do
  tag=$(echo "$dev" | tr ',' '_')
  /usr/bin/time -f "%e s wall" "$BIN" eval --model "$G" --data "$D" --task "$T" --scheme fp16 \
    --cuda "$dev" --out "$OUT/eval-$tag" > "$OUT/eval-$tag.txt" 2>&1
  echo "eval --cuda $dev: rc=$? $(tail -1 "$OUT/eval-$tag.txt")"
  grep -E "arc_easy|acc" "$OUT/eval-$tag.txt" | head -3
done
python3 - "$OUT" <<'EOF'
import json, sys, glob, os
out = sys.argv[1]
def load(tag):
    f = glob.glob(os.path.join(out, f"eval-{tag}", "**", "samples_arc_easy*.jsonl"), recursive=True)
    if not f:
        return None
    return [json.loads(l) for l in open(f[0])]
def lls(rows):
    v = []
    for r in rows:
        for x in r.get("resps", []):
            y = x[0] if isinstance(x, list) and x and isinstance(x[0], list) else x
            try:
                v.append(float(y[0]))
            except Exception:
                pass
    return v
a, b, c = load("0"), load("all"), load("0_0")
if not (a and b and c):
    print("samples missing:", [x is None for x in (a, b, c)]); sys.exit(0)
print("cuda all vs cuda 0:", "IDENTICAL" if a == b else "DIFFERENT")
la, lc = lls(a), lls(c)
d = max(abs(x - y) for x, y in zip(la, lc)) if la and len(la) == len(lc) else None
acc = lambda rows: sum(r.get("acc", 0) for r in rows) / len(rows)
print(f"cuda 0,0 (2 replicas) vs cuda 0: {len(la)} log-likelihoods, max |diff| = {d}, "
      f"acc {acc(a):.4f} vs {acc(c):.4f}, identical records: {sum(x == y for x, y in zip(a, c))}/{len(a)}")
EOF

study() { # $1 = out dir, rest = extra flags
  local o=$1; shift
  "$BIN" study --model "$G" --data "$D" --task "$T" --schemes fp16 --repeats 2 --warmup 0 \
    --baseline 0 --min-window 5 --out "$o" "$@" > "$o.txt" 2>&1
  echo "study $(basename "$o"): rc=$?"
}
study "$OUT/study-alone" --cuda 0
python3 - "$OUT/study-load.py" <<'EOF'
import sys
open(sys.argv[1], "w").write("""
import time, torch
x = torch.randn(8192, 8192, device="cuda:0", dtype=torch.float16)
t = time.time()
while time.time() - t < 60:
    y = x @ x
    torch.cuda.synchronize()
""")
EOF
python3 "$OUT/study-load.py" > "$OUT/load.txt" 2>&1 &
LOAD=$!
sleep 4
study "$OUT/study-shared" --cuda 0
kill "$LOAD" 2>/dev/null; wait "$LOAD" 2>/dev/null
study "$OUT/study-sets" --cuda 0 --cuda 0,0
cat "$OUT/study-sets/scaling.md" 2>/dev/null

python3 - "$OUT" <<'EOF'
import json, sys, os
out = sys.argv[1]
for name in ["study-alone", "study-shared", "study-sets/cuda0", "study-sets/cuda0-0"]:
    p = os.path.join(out, name, "results.json")
    if not os.path.exists(p):
        print(name, "no results.json"); continue
    r = json.load(open(p))
    wins = {w["id"]: w for w in r.get("windows", [])}
    for t in r["tasks"]:
        devs = t["devices"]
        charged = sum(d["energy"] for d in devs if d.get("charged", True) and d["energy"] is not None)
        total = t["energy"] if t["energy"] is not None else float("nan")
        gpu = [d for d in devs if d["source"].startswith("nvml")]
        shared = {d["source"]: ("shared" in d["flags"]) for d in gpu}
        ok = abs(charged - total) <= 1e-9 * max(total, 1e-12)
        w = wins.get(t["window"], {})
        reads = {d["source"]: (d.get("counter_reads"), [f.get("flag", f) if isinstance(f, dict) else f for f in d.get("flags", [])]) for d in w.get("devices", [])}
        sh = ", ".join("%s: %s" % (k, "yes" if v else "no") for k, v in shared.items())
        per = ", ".join("%s %s J charged=%s" % (d["source"], d["energy"], d.get("charged", True)) for d in gpu)
        print("%s rep%s %s: score %.4f, %d req in %.2f s/pass, %.2f J charged; sum check %s "
              "(sum of charged %.6f); shared: %s; per GPU: %s; window reads/flags %s"
              % (name, t["repetition"], t["task"], t["score"], t["requests"], t["wall"], total,
                 "ok" if ok else "FAILED", charged, sh, per, reads))
EOF
