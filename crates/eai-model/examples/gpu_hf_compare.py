"""Hugging Face transformers (PyTorch) on the same log-likelihood requests as gpu_bench, batched
the way lm-evaluation-harness's HF backend batches them (inputs = (ctx + cont)[-(L+1):][:-1],
sorted longest first, right-padded batches of --batch-size, log_softmax over the batch, per-request
gather / greedy check). Energy from NVML's total-energy counter around each timed run; with
--min-seconds S each task's run is repeated until S seconds have passed (figures per request are
over all repeats), so that the counter's granularity does not matter.

    python3 gpu_hf_compare.py HF_DIR requests.json out.json [--batch-size 64] [--min-seconds 5]
"""
import json
import sys
import time

import pynvml
import torch
import torch.nn.functional as F
from transformers import AutoModelForCausalLM


def main():
    hf_dir, req_path, out_path = sys.argv[1:4]
    bs = int(sys.argv[sys.argv.index("--batch-size") + 1]) if "--batch-size" in sys.argv else 64
    min_s = float(sys.argv[sys.argv.index("--min-seconds") + 1]) if "--min-seconds" in sys.argv else 0.0
    req = json.load(open(req_path))
    pairs, tasks = req["pairs"], req["tasks"]
    pynvml.nvmlInit()
    h = pynvml.nvmlDeviceGetHandleByIndex(0)
    energy = lambda: pynvml.nvmlDeviceGetTotalEnergyConsumption(h) / 1000.0
    rows = []
    for dtype_name, dtype in [("fp32", torch.float32), ("fp16", torch.float16)]:
        model = AutoModelForCausalLM.from_pretrained(hf_dir, torch_dtype=dtype).cuda().eval()
        max_length = 2048

        def run(reqs):
            order = sorted(range(len(reqs)), key=lambda i: (-(len(reqs[i][0]) + len(reqs[i][1])), tuple(reqs[i][0] + reqs[i][1])))
            out = [None] * len(reqs)
            with torch.no_grad():
                for b0 in range(0, len(order), bs):
                    idx = order[b0:b0 + bs]
                    inps, conts, inplens = [], [], []
                    for i in idx:
                        ctx, cont = reqs[i]
                        inp = (ctx + cont)[-(max_length + 1):][:-1]
                        inps.append(inp)
                        conts.append(cont)
                        inplens.append(len(inp))
                    L = max(inplens)
                    batch = torch.zeros((len(inps), L), dtype=torch.long)
                    for r, inp in enumerate(inps):
                        batch[r, :len(inp)] = torch.tensor(inp, dtype=torch.long)
                    logits = F.log_softmax(model(batch.cuda()).logits, dim=-1)
                    for r, i in enumerate(idx):
                        cont = conts[r]
                        lg = logits[r, inplens[r] - len(cont):inplens[r]].unsqueeze(0)
                        greedy = lg.argmax(dim=-1)
                        ct = torch.tensor(cont, dtype=torch.long, device=lg.device).unsqueeze(0)
                        max_equal = bool((greedy == ct).all())
                        lp = torch.gather(lg, 2, ct.unsqueeze(-1)).squeeze(-1)
                        out[i] = (float(lp.sum()), max_equal)
            return out

        run(pairs[:min(len(pairs), 2 * bs)])  # warm-up
        torch.cuda.synchronize()
        all_lp = []
        for name, a, b in tasks:
            reqs = pairs[a:b]
            torch.cuda.synchronize()
            e0, t0 = energy(), time.time()
            reps = 0
            while reps == 0 or time.time() - t0 < min_s:
                res = run(reqs)
                torch.cuda.synchronize()
                reps += 1
            s, j = time.time() - t0, energy() - e0
            all_lp.extend(x[0] for x in res)
            n = len(reqs) * reps
            row = {"stack": "transformers", "dtype": dtype_name, "task": name, "repeats": reps, "requests": n, "seconds": s,
                   "requests_per_s": n / s, "joules": j, "j_per_request": j / n, "batch_size": bs,
                   "torch": torch.__version__, "transformers": __import__("transformers").__version__}
            print(json.dumps(row), flush=True)
            rows.append(row)
        json.dump(all_lp, open(out_path.replace(".json", f"_logprobs_{dtype_name}.json"), "w"))
        del model
        torch.cuda.empty_cache()
    json.dump(rows, open(out_path, "w"), indent=1)


if __name__ == "__main__":
    main()
