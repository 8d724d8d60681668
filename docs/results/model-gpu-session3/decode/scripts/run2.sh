#!/bin/bash
# Session 3, call 2 (eai-model decode): tests of the revised kernels (persistent norm-fused GEMVs,
# multi-block argmax, 4-row tiles), Qwen2.5-7B and Mistral-7B shapes, SmolLM2 GGUF speed.
R=$PWD; G=$R/.gpu/modelgpu; W=/root/mg2; L=$W/logs
mkdir -p $L; cd $W
START=$(date +%s); t() { echo "[$(( $(date +%s) - START ))s] $*"; }
( sleep 158; tar cJf $OUT/logs_partial.tar.xz -C $W logs ) &
{ nvidia-smi --query-gpu=name,memory.total,power.limit,clocks.max.sm,driver_version --format=csv; date -u; } > $L/env.log 2>&1
export EAI_REQUIRE_GPU=1
timeout 60 $G/cuda_test --test-threads=1 --nocapture > $L/cuda_test.log 2>&1; t "cuda_test rc=$?"
grep -E "^test |test result|vocab 20000|panicked" $L/cuda_test.log | tail -14
timeout 55 $G/gpu_bench --gguf none --out $W/q --only 7b --shapes qwen --schemes fp16,int8-w8a16 \
  --half-head true --fused true,false --tile r4u2,r2u4 > $L/qwen.log 2>&1; t "qwen rc=$?"
python3 $G/bsum.py $W/q/gpu_bench.json | tee $L/qwen_summary.txt
python3 $G/gguf_fill.py $G/header.bin $G/tensors.json $W/smol_f16.gguf > $L/gguf.log 2>&1 &
GP=$!
timeout 75 $G/gpu_bench --gguf none --out $W/m --only 7b --shapes mistral --schemes fp16,int8-w8a16,int8-w8a8,dynamic \
  --fused true --tile r4u2,r2u4 > $L/mistral.log 2>&1; t "mistral rc=$?"
python3 $G/bsum.py $W/m/gpu_bench.json | tee $L/mistral_summary.txt
wait $GP
timeout 15 taskset -c 0-7 $G/gpu_bench --gguf $W/smol_f16.gguf --out $W/sp --only speed --schemes fp16,int8-w8a16 --fused true --tile r4u2,r2u4 --quick > $L/speed.log 2>&1; t "speed rc=$?"
python3 $G/bsum.py $W/sp/gpu_bench.json | tee $L/speed_summary.txt
grep "built in" $L/*.log
for f in q m sp; do cp $W/$f/gpu_bench.json $L/$f.json 2>/dev/null; done
tar cJf $OUT/logs.tar.xz -C $W logs; t done
