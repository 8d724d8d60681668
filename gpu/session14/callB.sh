#!/bin/bash
# Session 14, call B (carry .gpu/q1 .gpu/b14; < 5 s): the SmolLM2 GGUF's first part (split -b
# 42000000 of SmolLM2-135M-Instruct.Q4_1.gguf) and main's gpu_bench (ef626dc = main's eai-model).
set -u
R=$(pwd); mkdir -p /root/g /root/b
cp $R/.gpu/q1/part.aa /root/g/ && xz -dc $R/.gpu/b14/gpu_bench.xz > /root/b/gpu_bench && chmod +x /root/b/gpu_bench
ls -la /root/g /root/b
