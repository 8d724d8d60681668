#!/bin/sh
# Cluster energy on a real GPU (h17b). One run, two meters on the same work:
#   outer: `eai measure` reading NVML in-process (the reference, docs/power.md);
#   inner: `eai measure --agent` through an `eai agent` (NVML) on 127.0.0.1 over HTTP.
# Both windows enclose the same workload; the inner one is shorter by the agent round trips.
# Expected: agent offset ~0 ± tens of µs; GPU energy of the inner (agent) window within ~1 %
# of the outer (the outer also holds the inner's sync/begin/end, a few hundred ms at idle power);
# the agent's /metrics parse as Prometheus text with a non-zero eai_energy_joules_total.
# Needs: NVIDIA driver (NVML), cargo. Writes everything under $OUT.
set -eu
OUT=${OUT:-/tmp/h17b-out}
mkdir -p "$OUT"
cargo build --release --bin eai
cargo build --release -p eai-model --features cuda --example gpu_bench
EAI=${CARGO_TARGET_DIR:-target}/release/eai
[ -x "$EAI" ] || EAI=target/release/eai
WORK=${WORK:-"$(dirname "$EAI")/examples/gpu_bench"}
TOK="$OUT/agent.token"
echo "gpu-run-token-h17b" > "$TOK"
"$EAI" agent --listen 127.0.0.1:9464 --token-file "$TOK" --no-cpu > "$OUT/agent.log" 2>&1 &
AG=$!
trap 'kill $AG 2>/dev/null || true' EXIT
sleep 3
"$EAI" measure --no-cpu --json "$OUT/local.json" -- \
  "$EAI" measure --agent http://127.0.0.1:9464 --agent-token-file "$TOK" --json "$OUT/cluster.json" -- $WORK \
  > "$OUT/work.log" 2> "$OUT/measure.log"
curl -s -H "Authorization: Bearer $(cat "$TOK")" http://127.0.0.1:9464/metrics > "$OUT/metrics.prom" || true
python3 - "$OUT" <<'PY'
import json, sys
o = sys.argv[1]
loc = json.load(open(f"{o}/local.json"))["measurement"]
clu = json.load(open(f"{o}/cluster.json"))
el = sum(d["energy"] or 0 for d in loc["devices"])
ec = clu["energy"]
a = clu["agents"][0]
print(f"local (outer) {el:.1f} J over {loc['duration']:.3f} s; agent (inner) {ec:.1f} J over "
      f"{a['window']['measurement']['duration']:.3f} s; ratio {ec/el:.4f}; offset "
      f"{a['offset']['offset_ns']} ns ± {a['offset']['uncertainty_ns']} ns; complete {clu['complete']}")
PY
