# Call 7 (carry nothing; eai-quant's cuda_bench, cuda and cuda_quant test executables came in
# call 2 to /root/bq, xz, built from main): issue 16's quantization-kernel and fused INT8 GEMM
# bars (gpu/h16q/run.sh, ~3 min; it packs $OUT/h16q.tar.xz and prints the bars).
set -u
mkdir -p .gpu/bin && cp /root/bq/*.xz .gpu/bin/
timeout 300 bash gpu/h16q/run.sh
