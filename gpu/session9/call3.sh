# Call 3 (carry .gpu/g3): joins the GGUF; the correctness checks the session-8 defaults wait for:
# (a) eai-model's W16 GEMV tests — when `w16_decode_gemv_matches_the_cuda_core_path_and_the_cpu`
#     passes, raise `W16_DEFAULT_MAX_ROWS` to `W16_MAX_ROWS` (crates/eai-model/src/cuda/model/tile.rs);
# (b) eai-quant's new default kernels bit for bit against the CPU and the INT8 GEMM / quantize
#     benches on the defaults (gpu/h16q/run.sh, ~65 s).
set -u
R=$(pwd)
cp $R/.gpu/g3/part.ac /root/g/ && cat /root/g/part.aa /root/g/part.ab /root/g/part.ac > /root/g/SmolLM2-135M-Instruct.Q4_1.gguf && rm /root/g/part.a?
sha256sum /root/g/SmolLM2-135M-Instruct.Q4_1.gguf | tee $OUT/sha.txt
export EAI_REQUIRE_GPU=1; mkdir -p /root/o/c3
timeout 120 /root/b/cuda --test-threads=1 --nocapture w16_decode_gemv memory_report_adds_up fused_decode_matches \
  > /root/o/c3/w16_tests.log 2>&1; echo "eai-model W16 tests rc=$?"
grep -E "^test |test result|vs CPU|batched|panicked" /root/o/c3/w16_tests.log | tail -40
mkdir -p .gpu/bin && cp /root/bq/*.xz .gpu/bin/ && (OUT=/root/o/c3 timeout 200 bash gpu/h16q/run.sh > /root/o/c3/h16q.log 2>&1); echo "h16q rc=$?"
tail -45 /root/o/c3/h16q.log
tar cJf $OUT/c3.tar.xz -C /root/o c3
