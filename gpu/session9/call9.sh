# Second round, call 9 (carry .gpu/g3; after call7.sh and call2.sh): joins the GGUF, checks the
# revised tiled attention and one-pass row_stats (the tiled test, then eai-model's cuda suite but
# with the W16 test on its revised FP16 batched bound), then issue 14's HellaSwag run (hs.sh).
set -u
R=$(pwd)
cp $R/.gpu/g3/part.ac /root/g/ && cat /root/g/part.aa /root/g/part.ab /root/g/part.ac > /root/g/SmolLM2-135M-Instruct.Q4_1.gguf && rm /root/g/part.a?
sha256sum /root/g/SmolLM2-135M-Instruct.Q4_1.gguf
mkdir -p /root/cache/models && ln -sf /root/g/SmolLM2-135M-Instruct.Q4_1.gguf /root/cache/models/
mkdir -p /root/o/c9; : > /root/env.sh
( export EAI_REQUIRE_GPU=1 EAI_CACHE=/root/cache
  timeout 70 /root/b/cuda --test-threads=1 --nocapture tiled_scoring_attention > /root/o/c9/tiled.log 2>&1; rc=$?
  echo "tiled attention test rc=$rc"; grep -E "^shape|test result|panicked" /root/o/c9/tiled.log | tail -14
  [ $rc = 0 ] || echo "export EAI_TILED_ATTENTION=0" > /root/env.sh
  timeout 60 /root/b/cuda --test-threads=1 --nocapture --skip tiled_scoring_attention \
    > /root/o/c9/suite.log 2>&1; echo "suite rc=$?"; grep -E "test result|panicked|FAILED" /root/o/c9/suite.log | tail -8 )
tar cJf $OUT/c9.tar.xz -C /root/o c9
mkdir -p /root/o/hs && (OUT=/root/o/hs LEAN=${LEAN:-0} timeout 200 bash gpu/session9/hs.sh > /root/o/hs/console.log 2>&1); echo "hs rc=$?"
tail -14 /root/o/hs/console.log; tar cJf $OUT/hs.tar.xz -C /root/o hs
