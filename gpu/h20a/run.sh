#!/usr/bin/env bash
# GPU run for issue 20 (h20a): the bundled perplexity task (rolling log-likelihoods) through
# `eai eval` on the GPU engine and the CPU engine, against an independent transformers
# computation of lm-eval's wikitext metrics on the same weights.
#
# What the lead builds/carries (no network on the GPU machine):
#   - eai built from a tree that contains h20a, with `--features cuda` (release), at $EAI
#     (default /root/b/eai)
#   - convert_gguf (`cargo build --release -p eai-model --example convert_gguf`) at $CONVERT
#     (default /root/b/convert_gguf)
#   - the SmolLM2 GGUF at $GGUF (default /root/g/SmolLM2-135M-Instruct.Q4_1.gguf)
#   - this repository (crates/eai-eval/data/perplexity_eai.txt is read by the reference)
# Expected: out/{gpu_fp16,gpu_fp32,cpu_fp32,hf_fp32}.json and summary.txt; bits_per_byte of
# cpu_fp32 = 1.2723 (measured on the CPU here), hf_fp32 and gpu_fp32 within 1e-3 of it, gpu_fp16
# within ~1e-2. Time: about 1 minute.
set -uo pipefail
R=$(pwd)
OUT=${OUT:-$R/out-h20a}
mkdir -p "$OUT"
EAI=${EAI:-/root/b/eai}
CONVERT=${CONVERT:-/root/b/convert_gguf}
GGUF=${GGUF:-/root/g/SmolLM2-135M-Instruct.Q4_1.gguf}
HF=${HF:-/root/smollm2-hf}
nvidia-smi --query-gpu=name,driver_version --format=csv | tee "$OUT/device.txt"

for s in fp16 fp32; do
  EAI_REQUIRE_GPU=1 "$EAI" eval --model "$GGUF" --task perplexity --scheme "$s" --json \
    > "$OUT/gpu_$s.json" 2> "$OUT/gpu_$s.err" || echo "gpu $s failed (see gpu_$s.err)"
done
"$EAI" eval --model "$GGUF" --task perplexity --scheme fp32 --cpu --json \
  > "$OUT/cpu_fp32.json" 2> "$OUT/cpu_fp32.err" || echo "cpu fp32 failed"

if [ ! -f "$HF/config.json" ]; then
  "$CONVERT" "$GGUF" "$HF" f32 > "$OUT/convert.log" 2>&1 || echo "conversion failed"
fi
# lm-eval's HFLM.loglikelihood_rolling + wikitext's process_results/aggregations, written out:
# tok_encode (tokenizer default special tokens), prefix_token_id (BOS else EOS), one window per
# paragraph (each is far shorter than max_length), Σ log p; words = len(re.split(r"\s+", t)).
HF="$HF" python3 - > "$OUT/hf_fp32.json" 2> "$OUT/hf_fp32.err" <<'PY'
import json, math, os, re, torch
from transformers import AutoModelForCausalLM, AutoTokenizer
hf = os.environ["HF"]
tok = AutoTokenizer.from_pretrained(hf)
model = AutoModelForCausalLM.from_pretrained(hf, torch_dtype=torch.float32).cuda().eval()
text = open("crates/eai-eval/data/perplexity_eai.txt", encoding="utf-8").read()
docs = [p.strip("\n") for p in text.split("\n\n") if p.strip("\n")]
prefix = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
ll = words = nbytes = 0
for d in docs:
    ids = tok(d)["input_ids"]
    inp = torch.tensor([[prefix] + ids[:-1]], device="cuda")
    with torch.no_grad():
        lp = model(inp).logits.float().log_softmax(-1)[0]
    ll += lp[torch.arange(len(ids), device="cuda"), torch.tensor(ids, device="cuda")].sum().item()
    words += len(re.split(r"\s+", d))
    nbytes += len(d.encode("utf-8"))
print(json.dumps({"docs": len(docs), "prefix": prefix, "loglikelihood": ll, "words": words, "bytes": nbytes,
                  "word_perplexity": math.exp(-ll / words),
                  "byte_perplexity": math.exp(-ll / nbytes),
                  "bits_per_byte": -ll / nbytes / math.log(2)}))
PY

python3 - "$OUT" > "$OUT/summary.txt" <<'PY'
import json, sys, os
out = sys.argv[1]
for name in ["cpu_fp32", "gpu_fp32", "gpu_fp16", "hf_fp32"]:
    try:
        d = json.load(open(os.path.join(out, name + ".json")))
    except Exception as e:
        print(name, "missing", e); continue
    r = d.get("results", {}).get("perplexity", d)
    vals = {k.split(",")[0]: v for k, v in r.items() if k.split(",")[0] in
            ("word_perplexity", "byte_perplexity", "bits_per_byte")}
    print(name, json.dumps(vals))
PY
cat "$OUT/summary.txt"
