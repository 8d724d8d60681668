#!/bin/bash
# Session 14, call C (carry .gpu/q2 .gpu/lq; < 5 s): the GGUF's second part and llama-quantize
# (gpu/llamacpp/BUILD.md).
set -u
R=$(pwd); mkdir -p /root/g /root/ll
cp $R/.gpu/q2/part.ab /root/g/ && xz -dc $R/.gpu/lq/llama-quantize.xz > /root/ll/llama-quantize && chmod +x /root/ll/llama-quantize
ls -la /root/g /root/ll
