#!/usr/bin/env python3
"""Write BLOOM checkpoints with Hugging Face transformers and the logits BloomForCausalLM gives.

eai-model's BLOOM tests read what this writes (random weights, FP32, eager attention):

    python3 make_bloom_fixtures.py tiny OUT   # hidden 96, 2 layers, 6 heads (not a power of two),
                                              # vocab 300; also a byte-level BPE tokenizer.json
                                              # trained here (BLOOM's pre-tokenizer, 300 tokens)
    python3 make_bloom_fixtures.py tiny32 OUT # as tiny with hidden 192 (head dim 32, the GPU
                                              # kernels' granularity), 6 heads, and a tokenizer
    python3 make_bloom_fixtures.py 7b OUT     # Bloomz-7B1's exact config (hidden 4096, 32 heads,
                                              # vocab 250,880) with n_layer = 1 (~4.9 GB of f32)

OUT receives `config.json` and `model.safetensors` (`save_pretrained`), `tokenizer.json` (tiny
only), and `expected.json`: the token ids of each test sequence, the logits of every position
(`logits_f32le`: file name of little-endian f32 `[positions, vocab]` per sequence), and versions.
Requires torch and transformers (a CPU torch build is enough).
"""
import argparse
import json
import os
import sys

import torch
import transformers
from transformers import BloomConfig, BloomForCausalLM

# Bloomz-7B1's config.json (bigscience/bloomz-7b1), with n_layer overridden for the 7b fixture.
BLOOMZ_7B1 = dict(
    apply_residual_connection_post_layernorm=False,
    attention_dropout=0.0,
    bos_token_id=1,
    eos_token_id=2,
    hidden_dropout=0.0,
    hidden_size=4096,
    initializer_range=0.02,
    layer_norm_epsilon=1e-05,
    n_head=32,
    n_layer=30,
    pad_token_id=3,
    pretraining_tp=1,
    slow_but_exact=False,
    unk_token_id=0,
    vocab_size=250880,
)

# BLOOM's tokenizer.json pre-tokenizer: split on this regex (isolated), then byte-level.
BLOOM_SPLIT = " ?[^(\\s|[.,!?…。，、।۔،])]+"

TOKENIZER_TEXT = [
    "The history of the city begins in the third century, when a small settlement grew up.",
    "Question: Which of these is a renewable source of energy? Answer: wind power.",
    "def fibonacci(n):\n    a, b = 0, 1\n    return a\n",
    "Les modèles de langue multilingues, 多语言模型, and numbers 1234 5678.",
] * 20


def randomize(model, std):
    """Random weights everywhere (LayerNorm weights near 1, biases non-zero) so every term counts."""
    g = torch.Generator().manual_seed(1234)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "layernorm" in name or "ln_f" in name:
                if name.endswith("weight"):
                    p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g))
                else:
                    p.copy_(0.2 * torch.randn(p.shape, generator=g))
            elif name.endswith("bias"):
                p.copy_(0.05 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(std * torch.randn(p.shape, generator=g))


def tiny_tokenizer(out):
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(BLOOM_SPLIT), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=["<unk>", "<s>", "</s>", "<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(TOKENIZER_TEXT, trainer)
    tok.save(os.path.join(out, "tokenizer.json"))
    return tok.get_vocab_size()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("which", choices=["tiny", "tiny32", "7b"])
    ap.add_argument("out")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    torch.manual_seed(0)
    if a.which in ("tiny", "tiny32"):
        # 6 heads (not a power of two: BLOOM's extra ALiBi slopes) need hidden % 6 == 0: 96.
        cfg = BloomConfig(
            # tiny32: head dim 32, the GPU attention kernels' granularity (16 for tiny).
            hidden_size=96 if a.which == "tiny" else 192,
            n_head=6,
            n_layer=2,
            vocab_size=300,
            layer_norm_epsilon=1e-5,
            bos_token_id=1,
            eos_token_id=2,
            pad_token_id=3,
            unk_token_id=0,
        )
        std = 0.15
        seqs = [
            [1, 17, 250, 3, 99, 42, 7, 7, 7, 280, 0, 299, 150, 151, 152, 8],
            [5, 6, 200],
        ]
    else:
        cfg = BloomConfig(**{**BLOOMZ_7B1, "n_layer": 1})
        std = 0.02
        seqs = [[1, 17, 250000, 3, 99, 42, 7, 250879, 1234, 65000]]
    model = BloomForCausalLM(cfg).eval()
    randomize(model, std)
    model.save_pretrained(a.out, safe_serialization=True)
    if a.which in ("tiny", "tiny32"):
        n = tiny_tokenizer(a.out)
        assert n <= cfg.vocab_size, n
    outs = []
    with torch.no_grad():
        for i, s in enumerate(seqs):
            ids = torch.tensor([s], dtype=torch.long)
            logits = model(input_ids=ids).logits[0].float().contiguous()
            fname = f"logits_{i}.f32"
            with open(os.path.join(a.out, fname), "wb") as f:
                f.write(logits.numpy().astype("<f4").tobytes())
            outs.append(
                {
                    "ids": s,
                    "logits_f32le": fname,
                    "shape": list(logits.shape),
                    "max_abs_logit": float(logits.abs().max()),
                }
            )
    meta = {
        "generator": "crates/eai-model/scripts/make_bloom_fixtures.py " + a.which,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": sys.version.split()[0],
        "sequences": outs,
    }
    with open(os.path.join(a.out, "expected.json"), "w") as f:
        json.dump(meta, f, indent=1)
    print(json.dumps({k: v for k, v in meta.items() if k != "sequences"}))


if __name__ == "__main__":
    main()
