# Issue 16: batch-1 decode on SmolLM2, eai-model vs llama.cpp CUDA, same call, same GPU, same weights
# (not yet run). Carry .gpu/llama (llama-bench.xz, llama-quantize.xz: gpu/llamacpp/BUILD.md; 24 MB)
# in a call of its own after ../session9/call7.sh, call2.sh and a call that joins the GGUF
# (e.g. `. gpu/session11/prelude.sh cLL` with carry .gpu/g3), on the same warm machine.
# Both stacks read the same dequantized weights: llama-quantize requantizes the Q4_1 file to F16
# and Q8_0; eai-model loads the Q4_1 file as FP16 and W8A16.
set -u
R=$(pwd); G=/root/g/SmolLM2-135M-Instruct.Q4_1.gguf; B=/root/b; O=/root/o/cLL; mkdir -p $O /root/ll && cd /root/ll
export EAI_REQUIRE_GPU=1 EAI_CACHE=/root/cache
for f in llama-bench llama-quantize; do xz -dc $R/.gpu/llama/$f.xz > $f && chmod +x $f; done
LIB=$(python3 -c "import nvidia, os; print(os.path.join(nvidia.__path__[0], 'cu13', 'lib'))" 2>/dev/null)
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64:${LIB:-}
./llama-quantize --allow-requantize $G smol_f16.gguf F16 > $O/quant.log 2>&1
./llama-quantize --allow-requantize $G smol_q8.gguf Q8_0 >> $O/quant.log 2>&1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $O/device.txt
taskset -c 0-7 ./llama-bench -m smol_f16.gguf -m smol_q8.gguf -p 512 -n 128 -r 5 -ngl 99 -o md > $O/llama_bench.md 2> $O/llama_bench.err
taskset -c 0-7 $B/gpu_bench --gguf $G --only speed --schemes fp16,int8-w8a16 > $O/eai_speed.log 2>&1
cat $O/llama_bench.md; grep -iE "decode|tok/s" $O/eai_speed.log | head -20
tar cJf $OUT/cLL.tar.xz -C /root/o cLL
