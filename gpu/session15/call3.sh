# Session 15, call 3 (carry .gpu/q3 .gpu/lb; after calls 1 and 2 on the same warm machine): join the GGUF, then issue 16's batch-1 decode on
# SmolLM2-135M: llama.cpp CUDA (llama-bench, F16 and Q8_0 requantized from the same Q4_1 file)
# beside eai-model's `gpu_bench --only speed` (FP16, W8A16), same call, same GPU.
set -u
# The same steps as gpu/session12/callC.sh, with main's build (.gpu/s15/COMMIT).
R=$(pwd); B=/root/b; G=/root/g/SmolLM2-135M-Instruct.Q4_1.gguf; O=/root/o/c3; mkdir -p $O
cp $R/.gpu/q3/part.ac /root/g/ && cat /root/g/part.aa /root/g/part.ab /root/g/part.ac > $G && rm /root/g/part.a?
sha256sum $G | tee $O/sha256.txt
mkdir -p /root/cache/models && ln -sf $G /root/cache/models/
xz -dc $R/.gpu/lb/llama-bench.xz > /root/ll/llama-bench && chmod +x /root/ll/llama-bench
export EAI_REQUIRE_GPU=1 EAI_CACHE=/root/cache
T0=$(date +%s); t() { echo "[t=$(( $(date +%s)-T0 ))s] $*"; }
LIB=$(python3 -c "import nvidia, os; print(os.path.join(nvidia.__path__[0], 'cu13', 'lib'))" 2>/dev/null)
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64:${LIB:-}
cd /root/ll
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $O/device.txt
./llama-quantize --allow-requantize $G smol_f16.gguf F16 > $O/quant.log 2>&1; t "quant f16 rc=$?"
./llama-quantize --allow-requantize $G smol_q8.gguf Q8_0 >> $O/quant.log 2>&1; t "quant q8 rc=$?"
timeout 120 ./llama-bench -m smol_f16.gguf -m smol_q8.gguf -p 512 -n 128 -r 5 -ngl 99 -o md > $O/llama_bench.md 2> $O/llama_bench.err; t "llama-bench rc=$?"
timeout 120 $B/gpu_bench --gguf $G --only speed --schemes fp16,int8-w8a16 --out $O/eai > $O/eai_speed.log 2>&1; t "eai rc=$?"
timeout 60 ./llama-bench -m smol_f16.gguf -m smol_q8.gguf -p 512 -n 128 -r 5 -ngl 99 -o md > $O/llama_bench2.md 2>> $O/llama_bench.err; t "llama-bench 2 rc=$?"
cat $O/llama_bench.md $O/llama_bench2.md; tail -5 $O/llama_bench.err; grep -E "^speed" $O/eai_speed.log | head -20
tar cJf $OUT/c3.tar.xz -C /root/o c3
