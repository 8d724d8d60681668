#!/bin/bash
# Session 3, call 1 (eai-model decode): tests, per-kernel profile, 7B/SmolLM2-shaped decode
# variants, llama.cpp vs ours on the same F16 GGUF. Run from the repo root on the device.
R=$PWD; G=$R/.gpu/modelgpu; W=/root/mg; L=$W/logs
mkdir -p $L; cd $W
START=$(date +%s); t() { echo "[$(( $(date +%s) - START ))s] $*"; }
{ nvidia-smi --query-gpu=name,memory.total,power.limit,clocks.max.sm,driver_version --format=csv; nproc; date -u; } > $L/env.log 2>&1
cat $L/env.log
( mkdir -p $W/llama && cd $W/llama && tar xJf $R/.gpu/llama/llama-src.tar.xz && cd llama.cpp && \
  nice -n 19 taskset -c 4-15 cmake -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 -DGGML_CUDA_FA_ALL_QUANTS=OFF -DGGML_CUDA_NCCL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_CURL=OFF && \
  time nice -n 19 taskset -c 4-15 ninja -C build -j 12 llama-bench llama-quantize ) > $L/llama_build.log 2>&1 &
BP=$!
( sleep 555; tar cJf $OUT/logs_partial.tar.xz -C $W logs ) &
taskset -c 0-3 python3 $G/gguf_fill.py $G/header.bin $G/tensors.json $W/smol_f16.gguf > $L/gguf.log 2>&1; t "gguf: $(tail -1 $L/gguf.log)"
export EAI_REQUIRE_GPU=1
timeout 150 taskset -c 0-3 $G/cuda_test --test-threads=1 --nocapture > $L/cuda_test.log 2>&1; t "cuda_test rc=$?"
grep -E "^test |test result|fused|rows 1:|panicked" $L/cuda_test.log | tail -45
NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
timeout 120 taskset -c 0-3 $NCU --profile-from-start off --clock-control none --metrics gpu__time_duration.sum --csv \
  $G/gpu_bench --gguf none --out $W/prof --only profile --shapes smol,qwen4 --schemes fp16,int8-w8a16 --fused false,true \
  > $L/ncu.csv 2> $L/profile.log; t "ncu rc=$?"
grep "8 tokens" $L/profile.log
python3 $G/ncu_sum.py $L/ncu.csv smol-fp16-unfused smol-fp16-fused smol-w8a16-unfused smol-w8a16-fused \
  qwen4-fp16-unfused qwen4-fp16-fused qwen4-w8a16-unfused qwen4-w8a16-fused > $L/ncu_summary.txt 2>&1
cat $L/ncu_summary.txt | cut -c1-120
timeout 200 taskset -c 0-3 $G/gpu_bench --gguf none --out $W/b7 --only 7b --shapes qwen --schemes fp16,int8-w8a16 \
  --half-head false,true --fused false,true --tile r1u8,r2u4 > $L/b7.log 2>&1; t "b7 rc=$?"
python3 $G/bsum.py $W/b7/gpu_bench.json | tee $L/b7_summary.txt
wait $BP; t "llama build rc=$?"; grep -E "^real|error" $L/llama_build.log | head -5
LB=$W/llama/llama.cpp/build/bin
$LB/llama-quantize --allow-requantize $W/smol_f16.gguf $W/q8.gguf Q8_0 > $L/quant.log 2>&1; t "quantize rc=$?"
timeout 90 taskset -c 0-7 $LB/llama-bench -m $W/smol_f16.gguf -m $W/q8.gguf -p 512 -n 128 -r 5 -ngl 99 > $L/llama_bench.md 2> $L/llama_bench.log; t "llama-bench rc=$?"
cat $L/llama_bench.md
timeout 70 taskset -c 0-7 $G/gpu_bench --gguf $W/smol_f16.gguf --out $W/sp --only speed --schemes fp16,int8-w8a16 --fused false,true > $L/speed.log 2>&1; t "speed rc=$?"
python3 $G/bsum.py $W/sp/gpu_bench.json | tee $L/speed_summary.txt
cp $W/b7/gpu_bench.json $L/b7.json 2>/dev/null; cp $W/sp/gpu_bench.json $L/speed.json 2>/dev/null
tar cJf $OUT/logs.tar.xz -C $W logs
( cd $W/llama/llama.cpp/build && tar cJf $W/llama_bin.tar.xz bin ) && split -b 15M $W/llama_bin.tar.xz $OUT/llama_bin.part. ; ls -la $OUT; t done
