"""transformers (PyTorch) on exactly the requests an `eai study`/`eai eval` run recorded in its
`samples_<task>.jsonl`, batched the way lm-evaluation-harness's HF backend batches them, with the
GPU's NVML energy counter read around each timed pass. Used for the user-path bars of issue 14:
the same documents, the same prompts, the same GPU, the same call as the `eai` CLI run.

Log-likelihood tasks (every `[context, continuation]` pair of every document, as lm-eval builds
them: no de-duplication): tokens as lm-eval's HF backend makes them (context and
context+continuation encoded whole, the continuation = the tail; trailing spaces of the context
moved to the continuation), inputs `(ctx + cont)[-(L+1):][:-1]`, sorted longest first,
right-padded batches of `--batch-size`, log_softmax, gather, greedy check.

Generation tasks: batched greedy `generate` (left padding, `--gen-batch-size`), lm-eval's stop
strings cut afterwards, `max_gen_toks` 256; the strict-match answer (`#### (-?[0-9.,]+)`)
compared with eai's.

    python3 hf_samples_compare.py HF_DIR SAMPLES.jsonl TASK_KIND out.json
        [--dtype fp16|fp32|bf16] [--batch-size 64] [--gen-batch-size 64] [--min-seconds 5]
        [--limit N]
TASK_KIND is `ll` or `gen`. Prints one JSON row per pass summary; writes the row to out.json.
"""
import json
import re
import sys
import time

try:
    import pynvml
except ImportError:  # only needed on the GPU
    pynvml = None
import torch
import torch.nn.functional as F
from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast


def arg(name, default):
    return type(default)(sys.argv[sys.argv.index(name) + 1]) if name in sys.argv else default


def main():
    hf_dir, samples_path, kind, out_path = sys.argv[1:5]
    dtype_name = arg("--dtype", "fp16")
    dtype = {"fp16": torch.float16, "fp32": torch.float32, "bf16": torch.bfloat16}[dtype_name]
    bs = arg("--batch-size", 64)
    gbs = arg("--gen-batch-size", 64)
    min_s = arg("--min-seconds", 5.0)
    limit = arg("--limit", 0)
    docs = [json.loads(l) for l in open(samples_path)]
    if limit:
        docs = docs[:limit]
    dev = arg("--device", "cuda")
    if dev == "cuda":
        pynvml.nvmlInit()
        h = pynvml.nvmlDeviceGetHandleByIndex(0)
        energy = lambda: pynvml.nvmlDeviceGetTotalEnergyConsumption(h) / 1000.0
        sync = torch.cuda.synchronize
    else:  # a smoke test of the script itself: no energy
        energy = lambda: float("nan")
        sync = lambda: None
    # the tokenizer.json that `gguf_to_hf` writes, used as is (no model-specific class rebuilding it)
    tok = PreTrainedTokenizerFast(tokenizer_file=f"{hf_dir}/tokenizer.json")
    model = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=dtype).to(dev).eval()
    max_length = 2048
    enc = lambda s: tok(s, add_special_tokens=False)["input_ids"]

    if kind == "ll":
        pairs = []
        for d in docs:
            for ctx, cont in d["arguments"]:
                n_sp = len(ctx) - len(ctx.rstrip())
                if n_sp:
                    cont = ctx[-n_sp:] + cont
                    ctx = ctx[:-n_sp]
                whole = enc(ctx + cont)
                c = enc(ctx)
                pairs.append((c, whole[len(c):]))
        order = sorted(range(len(pairs)), key=lambda i: -(len(pairs[i][0]) + len(pairs[i][1])))

        def run():
            out = [None] * len(pairs)
            with torch.no_grad():
                for b0 in range(0, len(order), bs):
                    idx = order[b0:b0 + bs]
                    inps, lens = [], []
                    for i in idx:
                        ctx, cont = pairs[i]
                        inp = (ctx + cont)[-(max_length + 1):][:-1]
                        inps.append(inp)
                        lens.append(len(inp))
                    L = max(lens)
                    batch = torch.zeros((len(inps), L), dtype=torch.long)
                    for r, inp in enumerate(inps):
                        batch[r, : len(inp)] = torch.tensor(inp, dtype=torch.long)
                    logits = F.log_softmax(model(batch.to(dev)).logits.float(), dim=-1)
                    for r, i in enumerate(idx):
                        cont = pairs[i][1]
                        lg = logits[r, lens[r] - len(cont): lens[r]]
                        ct = torch.tensor(cont, dtype=torch.long, device=lg.device)
                        greedy = bool((lg.argmax(dim=-1) == ct).all())
                        out[i] = (float(lg.gather(1, ct.unsqueeze(-1)).sum()), greedy)
            return out

        run()  # warm-up pass (not timed)
        sync()
        e0, t0, reps = energy(), time.time(), 0
        while reps == 0 or time.time() - t0 < min_s:
            res = run()
            sync()
            reps += 1
        s, j = time.time() - t0, energy() - e0
        # argmax agreement with eai's per-document predictions (acc, not acc_norm)
        k, agree, max_d = 0, 0, 0.0
        for d in docs:
            n = len(d["arguments"])
            ours = [x[0] for x in res[k:k + n]]
            eai = d.get("loglikelihoods") or [float(x[0]) for x in d["filtered_resps"]]
            agree += int(max(range(n), key=lambda c: ours[c]) == max(range(n), key=lambda c: eai[c]))
            max_d = max(max_d, max(abs(a - b) for a, b in zip(ours, eai)))
            k += n
        n = len(pairs) * reps
        row = {"stack": "transformers", "kind": "loglikelihood", "dtype": dtype_name, "docs": len(docs),
               "requests_per_pass": len(pairs), "passes": reps, "seconds": s, "seconds_per_pass": s / reps,
               "requests_per_s": n / s, "joules": j, "j_per_request": j / n, "batch_size": bs,
               "argmax_agreement": agree, "max_abs_ll_diff_vs_eai": max_d}
    else:
        tok.padding_side = "left"
        if tok.pad_token is None:
            tok.pad_token = tok.convert_ids_to_tokens(model.config.eos_token_id)
        until = ["Question:", "</s>", "<|im_end|>"]
        prompts = [d["arguments"][0][0] for d in docs]

        def run():
            texts, ntoks = [None] * len(prompts), 0
            order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
            with torch.no_grad():
                for b0 in range(0, len(order), gbs):
                    idx = order[b0:b0 + gbs]
                    b = tok([prompts[i] for i in idx], return_tensors="pt", padding=True,
                            add_special_tokens=False).to(dev)
                    g = model.generate(**b, max_new_tokens=256, do_sample=False, stop_strings=until,
                                       tokenizer=tok, pad_token_id=tok.pad_token_id)
                    new = g[:, b["input_ids"].shape[1]:]
                    for r, i in enumerate(idx):
                        ids = new[r].tolist()
                        # tokens actually generated: up to and including EOS / the stop, not padding
                        while ids and ids[-1] == tok.pad_token_id:
                            ids.pop()
                        ntoks += len(ids)
                        t = tok.decode(ids, skip_special_tokens=True)
                        cut = min([t.find(u) for u in until if u in t] or [len(t)])
                        texts[i] = t[:cut]
            return texts, ntoks

        run_texts, _ = None, None
        sync()
        e0, t0, reps, total_toks = energy(), time.time(), 0, 0
        while reps == 0 or time.time() - t0 < min_s:
            run_texts, nt = run()
            sync()
            reps += 1
            total_toks += nt
        s, j = time.time() - t0, energy() - e0
        rx = re.compile(r"#### (\-?[0-9\.\,]+)")
        same_ans, same_text = 0, 0
        for d, t in zip(docs, run_texts):
            ours = rx.findall(t)
            ours = ours[0] if ours else "[invalid]"
            eai_text = d["resps"][0][0]
            eai_ans = d["filtered_resps"].get("strict-match", "[invalid]") if isinstance(d["filtered_resps"], dict) else None
            same_ans += int(ours == eai_ans)
            same_text += int(t == eai_text)
        row = {"stack": "transformers", "kind": "generate", "dtype": dtype_name, "docs": len(docs),
               "passes": reps, "seconds": s, "seconds_per_pass": s / reps, "generated_tokens": total_toks,
               "tokens_per_s": total_toks / s, "joules": j, "j_per_token": j / max(total_toks, 1),
               "batch_size": gbs, "same_strict_answer": same_ans, "same_text": same_text}
    row.update({"torch": torch.__version__, "transformers": __import__("transformers").__version__,
                "gpu": torch.cuda.get_device_name(0) if dev == "cuda" else "cpu", "samples": samples_path})
    print(json.dumps(row), flush=True)
    json.dump(row, open(out_path, "w"), indent=1)


if __name__ == "__main__":
    main()
