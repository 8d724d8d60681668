### call1.sh
# call 1: GGUF part.00 + every GPU test on the tiny random models (SmolLM2 test skips: no GGUF yet)
R=$(pwd); B=$R/.gpu/modelscore
sh .gpu/gguf/join.sh
nvidia-smi --query-gpu=name,driver_version,memory.total,power.limit,clocks.max.sm --format=csv | tee $OUT/device.txt
EAI_REQUIRE_GPU=1 EAI_CACHE=/root/nocache $B/cuda_test --test-threads=1 --nocapture 2>&1 | tee $OUT/cuda_test_tiny.log | grep -E 'test |share|20:2|result|panicked|FAILED' 

### call2.sh
# call 2: GGUF part.01 + prefill speed with the new scoring attention kernel on SmolLM2 shapes
R=$(pwd); B=$R/.gpu/modelscore
sh .gpu/gguf/join.sh
cd /root && taskset -c 0-7 $B/gpu_bench --gguf none --only 7b --shapes smol --schemes fp32,fp16 --graph true --out /root/s2 2>&1 | grep -v '^7b' | tee $OUT/smol_speed.log | cut -c1-400
cp /root/s2/gpu_bench.json $OUT/smol_speed.json

### call3.sh
# call 3: GGUF part.02 (joined) + SmolLM2 test + accuracy/throughput + transformers
R=$(pwd); B=$R/.gpu/modelscore
sh .gpu/gguf/join.sh || exit 1
G=/root/gguf/model.gguf
mkdir -p /root/c/models /root/w && ln -sf $G /root/c/models/SmolLM2-135M-Instruct.Q4_1.gguf
cd /root/w && mkdir -p data && tar xJf $R/.gpu/data/arc_hellaswag.tar.xz -C data
EAI_REQUIRE_GPU=1 EAI_CACHE=/root/c $B/cuda_test --test-threads=1 --nocapture smollm2 2>&1 | tee $OUT/cuda_smollm2.log | grep -E 'request|tokens|result|panicked'
taskset -c 0-7 $B/gpu_bench --gguf $G --data data --out out --hf-dir hf --limit 200 --throughput-limit 1000 --only eval --full-arc --min-seconds 5 --throughput-schemes fp32,fp16 --share true,false 2>&1 | tee $OUT/bench.log | grep -E '^throughput' | cut -c1-330
cp out/gpu_bench.json $OUT/
PYTHONUNBUFFERED=1 taskset -c 0-7 python3 $B/gpu_hf_compare.py hf out/requests.json out/hf.json --batch-size 64 --min-seconds 5 2>&1 | grep -v Warning | tee $OUT/hf.log
cp out/hf.json $OUT/
python3 - <<'PY' | tee $OUT/compare.txt
import json
for d in ["fp32","fp16"]:
    a=json.load(open(f"out/logprobs_{d}.json")); b=json.load(open(f"out/hf_logprobs_{d}.json"))
    x=[abs(p-q) for p,q in zip(a,b)]
    print(d, "ours vs transformers: n", len(x), "max", max(x), "mean", sum(x)/len(x))
PY

### call4.sh
# call 4: GPU tests on the tiny models with the corrected bounds; dynamic accuracy without shared contexts if the GGUF is still there
R=$(pwd); B=$R/.gpu/modelscore
EAI_REQUIRE_GPU=1 EAI_CACHE=/root/nocache $B/cuda_test --test-threads=1 --nocapture 2>&1 | tee $OUT/cuda_test_tiny.log | grep -E 'test |share|20:2|result|panicked|FAILED|w8a8'
if [ -f /root/gguf/model.gguf ] && [ -d /root/w/data ]; then
  cd /root/w && taskset -c 0-7 $B/gpu_bench --gguf /root/gguf/model.gguf --data data --out out4 --limit 200 --only eval --full-arc --schemes dynamic --throughput-schemes fp32 --accuracy-share false 2>&1 | tail -c 1500
  cp out4/gpu_bench.json $OUT/dynamic_unshared.json
fi

