#!/usr/bin/env python3
"""Writes the fuzz corpora's seeds (fuzz/seeds/<target>/): the heads of the real data files
(../shared/data, the eai-eval fixtures, docs/example-report*) and small GGUF/safetensors files
built here in the layouts llama.cpp and Hugging Face write. Run once; the seeds are committed."""
import json, os, struct, sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.environ.get("EAI_DATA", os.path.join(ROOT, "..", "..", "shared", "data"))
if not os.path.isdir(DATA):
    DATA = "/work/shared/data"
OUT = os.path.join(ROOT, "fuzz", "seeds")

def put(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())

def head_lines(path, n):
    with open(path, encoding="utf-8") as f:
        return "".join(f.readline() for _ in range(n))

# --- data loaders: heads of the real files
put("arc", "easy_test_2.jsonl", head_lines(f"{DATA}/arc/ARC-Easy/ARC-Easy-Test.jsonl", 2))
put("arc", "challenge_train_3.jsonl", head_lines(f"{DATA}/arc/ARC-Challenge/ARC-Challenge-Train.jsonl", 3))
put("gsm8k", "test_2.jsonl", head_lines(f"{DATA}/gsm8k/test.jsonl", 2))
put("gsm8k", "train_1.jsonl", head_lines(f"{DATA}/gsm8k/train.jsonl", 1))
put("mmlu", "abstract_algebra_dev_3.csv", head_lines(f"{DATA}/mmlu/dev/abstract_algebra_dev.csv", 3))
put("mmlu", "virology_dev_2.csv", head_lines(f"{DATA}/mmlu/dev/virology_dev.csv", 2))
put("hellaswag", "val_2.txt", head_lines(f"{DATA}/hellaswag/hellaswag_val_full.txt", 12))
hs = {"ind": 24, "activity_label": "Roof shingle removal", "ctx_a": "A man is sitting on a roof.",
      "ctx_b": "he", "ctx": "A man is sitting on a roof. he", "split": "val", "split_type": "indomain",
      "label": 3, "endings": ["is using wrap to wrap a pair of skis.", "is ripping level tiles off.",
                              "is holding a rubik's cube.", "starts pulling up roofing on a roof."],
      "source_id": "activitynet~v_-JhWjGDPHMY"}
put("hellaswag", "val_1.jsonl", json.dumps(hs) + "\n")
with open(f"{DATA}/truthfulqa/mc_task.json", encoding="utf-8") as f:
    tq = json.load(f)
put("truthfulqa", "mc_task_2.json", json.dumps(tq[:2], indent=1))
put("truthfulqa", "mc_task_1.json", json.dumps(tq[5:6]))

# --- trace replay and runs.json: the example reports
rep = os.path.join(ROOT, "docs", "example-report-estimated")
put("replay", "trace_head.csv", head_lines(os.path.join(rep, "trace.csv"), 40))
put("replay", "counter.csv", "source,signal,t_s,value\n" + "".join(
    f"nvml/GPU-0,instant,{i/50},{100+i}\nnvml/GPU-0,counter,{i/50},{1000+2*i}\n" for i in range(20)))
tl = {"sources": [], "channels": [], "events": [], "status": [], "own_pids": []}
with open(os.path.join(rep, "trace.json"), encoding="utf-8") as f:
    full = json.load(f)
tl["sources"] = full["sources"][:1]
tl["channels"] = [dict(c, samples=c["samples"][:8]) for c in full["channels"] if c["source"] == 0][:2]
put("replay", "trace_small.json", json.dumps(tl))
with open(os.path.join(rep, "runs.json"), encoding="utf-8") as f:
    runs = json.load(f)
put("runs", "runs_4.json", json.dumps(runs[:4]))
put("runs", "runs_2.json", json.dumps(runs[:2], indent=1))

# --- GGUF (v3) as llama.cpp writes it: a tiny llama with F32, F16, Q8_0 and Q4_1 tensors
def s(x):
    b = x.encode()
    return struct.pack("<Q", len(b)) + b

def kv(key, ty, payload):
    return s(key) + struct.pack("<I", ty) + payload

U32, F32, STR, ARR, BOOL = 4, 6, 8, 9, 7
meta = [
    kv("general.architecture", STR, s("llama")),
    kv("general.name", STR, s("tiny")),
    kv("general.file_type", U32, struct.pack("<I", 3)),
    kv("general.alignment", U32, struct.pack("<I", 32)),
    kv("llama.block_count", U32, struct.pack("<I", 1)),
    kv("llama.context_length", U32, struct.pack("<I", 64)),
    kv("llama.embedding_length", U32, struct.pack("<I", 32)),
    kv("llama.feed_forward_length", U32, struct.pack("<I", 64)),
    kv("llama.attention.head_count", U32, struct.pack("<I", 4)),
    kv("llama.attention.head_count_kv", U32, struct.pack("<I", 2)),
    kv("llama.rope.freq_base", F32, struct.pack("<f", 10000.0)),
    kv("llama.attention.layer_norm_rms_epsilon", F32, struct.pack("<f", 1e-5)),
    kv("llama.vocab_size", U32, struct.pack("<I", 4)),
    kv("tokenizer.ggml.model", STR, s("gpt2")),
    kv("tokenizer.ggml.tokens", ARR, struct.pack("<IQ", STR, 4) + s("a") + s("b") + s("ab") + s("<eos>")),
    kv("tokenizer.ggml.add_bos_token", BOOL, b"\x00"),
]
def f16(x):
    return struct.pack("<e", x)
tensors = [  # name, dims, ggml type, data
    ("token_embd.weight", [32, 4], 0, b"".join(struct.pack("<f", i / 10) for i in range(128))),
    ("output_norm.weight", [32], 1, b"".join(f16(1.0) for _ in range(32))),
    ("blk.0.attn_q.weight", [32, 1], 8, f16(0.5) + bytes(range(32))),
    ("blk.0.attn_k.weight", [32, 1], 3, f16(0.25) + f16(-1.0) + bytes(range(16))),
]
info, blob = b"", b""
for name, dims, ty, data in tensors:
    info += s(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
    info += struct.pack("<IQ", ty, len(blob))
    blob += data + bytes((-len(data)) % 32)
head = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(meta)) + b"".join(meta) + info
head += bytes((-len(head)) % 32)
put("gguf", "tiny_llama.gguf", head + blob)
put("gguf", "header_only.gguf", b"GGUF" + struct.pack("<IQQ", 3, 0, 2) + meta[0] + meta[2])

# --- safetensors as Hugging Face writes it
def safetensors(ts):
    hdr, blob = {"__metadata__": {"format": "pt"}}, b""
    for name, dtype, shape, data in ts:
        hdr[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(blob), len(blob) + len(data)]}
        blob += data
    h = json.dumps(hdr, separators=(",", ":")).encode()
    h += b" " * ((-len(h)) % 8)
    return struct.pack("<Q", len(h)) + h + blob
put("safetensors", "two_tensors.safetensors", safetensors([
    ("model.layers.0.mlp.down_proj.weight", "F32", [2, 4], b"".join(struct.pack("<f", i) for i in range(8))),
    ("model.norm.weight", "BF16", [4], b"\x80\x3f" * 4),
]))
put("safetensors", "f16_i8.safetensors", safetensors([
    ("lm_head.weight", "F16", [2, 2], b"".join(f16(x) for x in (1, -2, 0.5, 3))),
    ("a.weight_scale", "F32", [2, 1], struct.pack("<ff", 0.1, 0.2)),
    ("a.weight", "I8", [2, 2], bytes([1, 255, 3, 4])),
]))
print("seeds written to", OUT)
