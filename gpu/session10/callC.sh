# Session 10, call C (carry .gpu/g3; after ../session9/call7.sh and ../session9/call2.sh): joins
# the GGUF; the scoring-pass tests (16-bit gate/up, tiled attention), then eai-model's whole cuda
# suite; then issue 14's HellaSwag run (hs10.sh).
set -u
R=$(pwd)
cp $R/.gpu/g3/part.ac /root/g/ && cat /root/g/part.aa /root/g/part.ab /root/g/part.ac > /root/g/SmolLM2-135M-Instruct.Q4_1.gguf && rm /root/g/part.a?
sha256sum /root/g/SmolLM2-135M-Instruct.Q4_1.gguf
mkdir -p /root/cache/models && ln -sf /root/g/SmolLM2-135M-Instruct.Q4_1.gguf /root/cache/models/
mkdir -p /root/o/cC; : > /root/env.sh
( export EAI_REQUIRE_GPU=1 EAI_CACHE=/root/cache
  timeout 90 /root/b/cuda --test-threads=1 --nocapture half_gate_up tiled_scoring_attention > /root/o/cC/scoring.log 2>&1; rc=$?
  echo "scoring tests rc=$rc"; grep -E "^shape|test result|panicked" /root/o/cC/scoring.log | tail -30
  [ $rc = 0 ] || echo "export EAI_HALF_GATE_UP=0" > /root/env.sh
  timeout 80 /root/b/cuda --test-threads=1 --nocapture --skip half_gate_up --skip tiled_scoring_attention \
    > /root/o/cC/suite.log 2>&1; echo "suite rc=$?"; grep -E "test result|panicked|FAILED" /root/o/cC/suite.log | tail -8 )
tar cJf $OUT/cC.tar.xz -C /root/o cC
mkdir -p /root/o/hs && (OUT=/root/o/hs timeout 230 bash gpu/session10/hs10.sh > /root/o/hs/console.log 2>&1); echo "hs rc=$?"
tail -16 /root/o/hs/console.log; tar cJf $OUT/hs.tar.xz -C /root/o hs
