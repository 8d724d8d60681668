# Call 3 (carry .gpu/g3): joins the GGUF; correctness first:
# (a) issue 14's tiled scoring attention against the per-row kernel and the CPU — if it fails,
#     EAI_TILED_ATTENTION=0 for the rest of the session's calls (written to /root/env.sh);
# (b) eai-model's whole cuda suite on the defaults (W16 GEMV tests: the gate of
#     `W16_DEFAULT_MAX_ROWS`; shared-context and SmolLM2 scoring against the CPU);
# (c) eai-quant's defaults bit for bit against the CPU and the INT8 GEMM / quantize benches
#     (gpu/h16q/run.sh, ~65 s).
set -u
R=$(pwd)
cp $R/.gpu/g3/part.ac /root/g/ && cat /root/g/part.aa /root/g/part.ab /root/g/part.ac > /root/g/SmolLM2-135M-Instruct.Q4_1.gguf && rm /root/g/part.a?
sha256sum /root/g/SmolLM2-135M-Instruct.Q4_1.gguf | tee $OUT/sha.txt
mkdir -p /root/cache/models && ln -sf /root/g/SmolLM2-135M-Instruct.Q4_1.gguf /root/cache/models/
export EAI_REQUIRE_GPU=1 EAI_CACHE=/root/cache; mkdir -p /root/o/c3; : > /root/env.sh
timeout 60 /root/b/cuda --test-threads=1 --nocapture tiled_scoring_attention > /root/o/c3/tiled.log 2>&1; rc=$?
echo "tiled attention test rc=$rc"; grep -E "^shape|test result|panicked" /root/o/c3/tiled.log | tail -20
[ $rc = 0 ] || echo "export EAI_TILED_ATTENTION=0" > /root/env.sh
. /root/env.sh
T0=$(date +%s)
timeout 220 /root/b/cuda --test-threads=1 --nocapture --skip tiled_scoring_attention \
  > /root/o/c3/suite.log 2>&1; echo "eai-model cuda suite rc=$? in $(( $(date +%s)-T0 )) s"
grep -E "^test |test result|panicked" /root/o/c3/suite.log | tail -30
grep -E "vs CPU|batched|R1U8" /root/o/c3/suite.log | tail -12
rm -rf .gpu/bin && mkdir -p .gpu/bin && cp /root/bq/*.xz .gpu/bin/ && (OUT=/root/o/c3 timeout 150 bash gpu/h16q/run.sh > /root/o/c3/h16q.log 2>&1); echo "h16q rc=$?"
rm -rf .gpu/bin; tail -40 /root/o/c3/h16q.log
tar cJf $OUT/c3.tar.xz -C /root/o c3
