set -u
R=$(pwd); B=/root/b; mkdir -p $B /root/g
cp $R/.gpu/g1/part.aa /root/g/
for f in $R/.gpu/bin/*.xz; do xz -dc $f > $B/$(basename $f .xz); chmod +x $B/$(basename $f .xz); done
echo "commit $(cat $R/.gpu/bin/COMMIT)"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
T0=$(date +%s)
# cluster agent vs in-process NVML (issue 17)
cd /root && echo "gpu-run-token" > tok && ($B/eai agent --listen 127.0.0.1:9464 --token-file tok --no-cpu > $OUT/agent.log 2>&1 &) ; sleep 3
$B/eai measure --no-cpu --json $OUT/local.json -- $B/eai measure --agent http://127.0.0.1:9464 --agent-token-file tok --json $OUT/cluster.json -- $B/gpu_bench --gguf none --only 7b --quick --shapes qwen --schemes fp16 --out /root/ag > $OUT/agent_work.log 2>&1; echo "agent run rc=$? $(( $(date +%s)-T0 ))s"
python3 - $OUT <<'PY'
import json, sys
o = sys.argv[1]
loc = json.load(open(f"{o}/local.json"))["measurement"]; clu = json.load(open(f"{o}/cluster.json"))
el = sum(d["energy"] or 0 for d in loc["devices"]); ec = clu["energy"]; a = clu["agents"][0]
print(f"local (outer) {el:.1f} J over {loc['duration']:.3f} s; agent (inner) {ec:.1f} J over {a['window']['measurement']['duration']:.3f} s; ratio {ec/el:.4f}; offset {a['offset']['offset_ns']} ns +- {a['offset']['uncertainty_ns']} ns; complete {clu['complete']}")
PY
pkill -f "eai agent" || true
# the paper's six models at their shapes (issue 19), FP16 vs W8A16 batch-1 decode
timeout 330 $B/gpu_bench --gguf none --only 7b --quick --shapes paper --schemes fp16,int8-w8a16 --out /root/six > $OUT/six.log 2>&1; echo "six rc=$? $(( $(date +%s)-T0 ))s"
cp /root/six/gpu_bench.json $OUT/six.json 2>/dev/null; grep -E "^7b|tok/s" $OUT/six.log | cut -c1-250 | head -20
