#!/usr/bin/env python3
"""Generate llama.cpp reference fixtures for eai-model's parity tests.

Requires `llama-cpp-python` (built from source; tested with 0.3.36) and the SmolLM2 GGUF.
Usage:
    python3 make_fixtures.py --gguf SmolLM2-135M-Instruct.Q4_1.gguf [--gguf-f32 smollm2-f32.gguf] --out ../tests/fixtures

Writes:
  tokens.jsonl        {"text": ..., "ids": [...]} for ~3000 deterministic, varied strings
                      (llama.cpp tokenize, add_bos=False, special=True)
  logits_<tag>.json   per prompt: token ids, per-position top-10 (id, logit), logit and NLL of the
                      next token, mean NLL; <tag> = q4_1 (the GGUF as shipped) or f32 (its
                      dequantized F32 twin, f32 KV cache), so tests can bound both differences.
"""
import argparse, json, math, random, sys

from llama_cpp import Llama

PROMPTS = [
    "The capital of France is Paris. The capital of Germany is Berlin. The capital of Italy is Rome. The capital of Spain is Madrid.",
    "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n",
    "Question: Which of these is a renewable source of energy?\nAnswer: wind power",
    "def fibonacci(n):\n    if n < 2:\n        return n\n    return fibonacci(n - 1) + fibonacci(n - 2)\n",
]
# A longer passage for perplexity.
PASSAGE = (
    "Photosynthesis is the process by which green plants and some other organisms use sunlight to "
    "synthesize foods from carbon dioxide and water. Photosynthesis in plants generally involves the "
    "green pigment chlorophyll and generates oxygen as a byproduct. The process takes place mainly in "
    "the leaves, inside small structures called chloroplasts. Energy from light is absorbed and used to "
    "split water molecules, releasing oxygen, while the hydrogen is combined with carbon dioxide to form "
    "glucose. Animals, in turn, depend on plants for food and for the oxygen they breathe, which makes "
    "photosynthesis one of the most important chemical processes on Earth."
)


def strings(n, seed=1234):
    rng = random.Random(seed)
    words = ["the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "energy", "model",
             "don't", "it's", "we'll", "I'm", "they've", "Hello", "WORLD", "naïve", "café", "Zürich",
             "東京", "你好", "世界", "こんにちは", "Привет", "مرحبا", "😀", "🚀", "👍🏽", "ß", "œ", "Ελληνικά"]
    pieces = [" ", "  ", "   ", "\t", "\n", "\n\n", " \n ", "\r\n", ".", ",", "!", "?", "...", "--",
              "(", ")", "[", "]", "{", "}", "'", '"', "`", "#", "$", "%", "&", "*", "+", "=", "/",
              "\\", "|", "<", ">", "@", "^", "_", "~", ":", ";"]
    out = []
    for i in range(n):
        kind = i % 6
        parts = []
        for _ in range(rng.randint(1, 12)):
            r = rng.random()
            if r < 0.45:
                parts.append(rng.choice(words))
            elif r < 0.65:
                parts.append(str(rng.randint(0, 10 ** rng.randint(1, 9))))
            elif r < 0.9:
                parts.append(rng.choice(pieces))
            else:
                parts.append(chr(rng.randint(0x20, 0x2FF)))
            if kind != 3:
                parts.append(rng.choice([" ", " ", "", "  ", "\n"]))
        s = "".join(parts)
        if kind == 4:
            s = " " * rng.randint(1, 5) + s
        if kind == 5 and i % 12 == 5:
            s = "<|im_start|>user\n" + s + "<|im_end|>\n"
        out.append(s)
    return out


def tokenize(llm, text):
    return llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)


def logits_fixture(llm, texts):
    out = []
    for text in texts:
        ids = tokenize(llm, text)
        llm.reset()
        llm.eval(ids)
        scores = llm.scores[: len(ids)]
        rows = []
        nll = []
        for p in range(len(ids)):
            row = [float(x) for x in scores[p]]
            m = max(row)
            lse = m + math.log(sum(math.exp(x - m) for x in row))
            top = sorted(range(len(row)), key=lambda k: -row[k])[:10]
            entry = {"top": [[k, row[k]] for k in top], "logsumexp": lse}
            if p + 1 < len(ids):
                t = ids[p + 1]
                entry["next"] = [t, row[t]]
                nll.append(lse - row[t])
            rows.append(entry)
        out.append({"text": text, "ids": ids, "positions": rows,
                    "mean_nll": sum(nll) / max(1, len(nll))})
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gguf", required=True)
    ap.add_argument("--gguf-f32")
    ap.add_argument("--out", required=True)
    ap.add_argument("--n-strings", type=int, default=3000)
    a = ap.parse_args()
    import llama_cpp
    meta = {"llama_cpp_python": llama_cpp.__version__}
    llm = Llama(model_path=a.gguf, n_ctx=1024, logits_all=True, n_threads=2, verbose=False)
    with open(f"{a.out}/tokens.jsonl", "w", encoding="utf-8") as f:
        for s in strings(a.n_strings):
            f.write(json.dumps({"text": s, "ids": tokenize(llm, s)}, ensure_ascii=False) + "\n")
    variants = [("q4_1", llm)]
    if a.gguf_f32:
        # type_k/type_v 0 = GGML_TYPE_F32: no f16 rounding of the KV cache.
        variants.append(("f32", Llama(model_path=a.gguf_f32, n_ctx=1024, logits_all=True, n_threads=2,
                                      type_k=0, type_v=0, verbose=False)))
    for tag, m in variants:
        fx = {"meta": meta, "prompts": logits_fixture(m, PROMPTS + [PASSAGE])}
        with open(f"{a.out}/logits_{tag}.json", "w", encoding="utf-8") as f:
            json.dump(fx, f, ensure_ascii=False, separators=(",", ":"))
        print(tag, [round(p["mean_nll"], 4) for p in fx["prompts"]], file=sys.stderr)


if __name__ == "__main__":
    main()
