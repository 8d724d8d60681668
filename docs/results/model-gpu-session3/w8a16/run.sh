#!/bin/bash
# w8a16 session-3 device call: tests, then 7B-shape decode (Qwen, Mistral) old vs new W8A16, then SmolLM2 shapes.
cd "$(dirname "$0")"
set -o pipefail
{ date -u; nvidia-smi; nvidia-smi --query-gpu=name,driver_version,memory.total,power.limit,clocks.max.sm --format=csv; nproc; } > $OUT/env.log 2>&1
export EAI_CACHE=/root/nocache
T0=$(date +%s)
EAI_REQUIRE_GPU=1 timeout 60 ./cuda --test-threads=1 --nocapture > $OUT/test.log 2>&1; echo "tests rc=$? $(( $(date +%s) - T0 ))s" | tee -a $OUT/env.log
grep -E "^test |test result" $OUT/test.log
C="--gguf none --only 7b --quick --fused true --decode-new 192"
taskset -c 0-7 timeout 65 ./gpu_bench $C --out oq --shapes qwen --schemes fp16,int8-w8a16 --half-head true --int8-head false,true --tile r4u2,k4u2,t8u4,t8u8 > $OUT/qwen.log 2>&1; echo "qwen rc=$? $(( $(date +%s) - T0 ))s" | tee -a $OUT/env.log
cp oq/gpu_bench.json $OUT/qwen.json
taskset -c 0-7 timeout 60 ./gpu_bench $C --out om --shapes mistral --schemes fp16,int8-w8a16 --half-head false --int8-head false,true --tile r4u2,k4u2,t8u4,t8u8 > $OUT/mistral.log 2>&1; echo "mistral rc=$? $(( $(date +%s) - T0 ))s" | tee -a $OUT/env.log
cp om/gpu_bench.json $OUT/mistral.json
taskset -c 0-7 timeout 15 ./gpu_bench $C --out os --shapes smol --schemes fp16,int8-w8a16 --tile auto,t8u4 > $OUT/smol.log 2>&1; echo "smol rc=$? $(( $(date +%s) - T0 ))s" | tee -a $OUT/env.log
cp os/gpu_bench.json $OUT/smol.json
grep -h '"scheme"' /dev/null
python3 - <<'PY' 2>&1 | tee -a $OUT/env.log
import json,os
for f in ["qwen","mistral","smol"]:
    p=os.path.join(os.environ["OUT"],f+".json")
    try: rows=json.load(open(p)).get("synthetic_7b",[])
    except Exception as e: print(f,"no json",e); continue
    for r in rows:
        d=(r.get("decode") or [{}])[0]
        print(f"{f:8s} {r.get('scheme'):40s} tok/s {d.get('tokens_per_s',0):8.1f} steps {d.get('decode_only_tokens_per_s',0):8.1f} J/tok {d.get('j_per_token') or 0:.3f} weights {r.get('memory',{}).get('weights',0)/1e9:.2f} GB {r.get('error','')}")
PY
