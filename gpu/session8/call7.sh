# Call 7 (carry .gpu/bq .gpu/sh8; .gpu/bq = eai-quant's cuda_bench, cuda and cuda_quant test
# executables, xz, built from main (the commit in .gpu/b1/COMMIT)): issue 16's quantization-kernel and fused
# INT8 GEMM bars (gpu/h16q/run.sh, ~3 min; it packs $OUT/h16q.tar.xz and prints the bars).
set -u
mkdir -p .gpu/bin && cp .gpu/bq/*.xz .gpu/bin/
timeout 300 bash gpu/h16q/run.sh
