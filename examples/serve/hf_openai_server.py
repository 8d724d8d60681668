#!/usr/bin/env python3
"""A tiny OpenAI-compatible completions server over Hugging Face transformers, for measuring
energy per response under load where no production server (vLLM, SGLang, TGI) is installed.

What it is, honestly: a test server, not a production engine. It batches statically — requests
that arrive while a batch decodes wait for the next batch (up to --max-batch, gathered for
--gather-ms) — so its throughput grows with load the way a batching server's does, but it has no
paged KV cache, no continuous batching and no CUDA graphs. Numbers measured against it describe
this server on this GPU, not vLLM.

Routes: GET /v1/models, GET /health, POST /v1/completions (prompt as text or token ids;
max_tokens; temperature 0 only = greedy; stop strings; stream with SSE and
stream_options.include_usage; ignore_eos; echo+logprobs for scoring, one prompt per request).

Standard library HTTP (ThreadingHTTPServer) + torch + transformers; no other dependency.

    python3 examples/serve/hf_openai_server.py --model HF_DIR --port 8000 [--dtype float16]
"""
import argparse
import json
import queue
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer


class Job:
    def __init__(self, ids, max_tokens, stop, ignore_eos):
        self.ids, self.max_tokens, self.stop, self.ignore_eos = ids, max_tokens, stop, ignore_eos
        self.out = queue.Queue()  # token ids, then None


class Engine:
    def __init__(self, path, dtype, device, max_batch, gather_ms):
        self.tok = AutoTokenizer.from_pretrained(path)
        try:
            m = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, dtype))
        except TypeError:  # transformers < 4.56 names it torch_dtype
            m = AutoModelForCausalLM.from_pretrained(path, torch_dtype=getattr(torch, dtype))
        self.model = m.to(device).eval()
        self.device, self.max_batch, self.gather = device, max_batch, gather_ms / 1000.0
        # A folder with tokenizer.json alone (no tokenizer_config.json) leaves the tokenizer's
        # EOS unset: take it from config.json.
        eos = self.tok.eos_token_id
        if eos is None:
            eos = self.model.config.eos_token_id
            eos = eos[0] if isinstance(eos, list) else eos
        self.eos = eos
        self.pad = self.tok.pad_token_id if self.tok.pad_token_id is not None else (self.eos or 0)
        self.jobs = queue.Queue()
        self.lock = threading.Lock()  # scoring and decoding share the model
        threading.Thread(target=self.loop, daemon=True).start()

    def loop(self):
        while True:
            batch = [self.jobs.get()]
            deadline = time.monotonic() + self.gather
            while len(batch) < self.max_batch:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    batch.append(self.jobs.get(timeout=left))
                except queue.Empty:
                    break
            with self.lock:
                self.decode(batch)

    @torch.inference_mode()
    def decode(self, batch):
        n = max(len(j.ids) for j in batch)
        ids = torch.full((len(batch), n), self.pad, dtype=torch.long)
        mask = torch.zeros((len(batch), n), dtype=torch.long)
        for i, j in enumerate(batch):  # left padding
            ids[i, n - len(j.ids):] = torch.tensor(j.ids)
            mask[i, n - len(j.ids):] = 1
        ids, mask = ids.to(self.device), mask.to(self.device)
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        done = [False] * len(batch)
        counts = [0] * len(batch)
        past = None
        inp = ids
        for step in range(max(j.max_tokens for j in batch)):
            out = self.model(input_ids=inp, attention_mask=mask, position_ids=pos, past_key_values=past, use_cache=True)
            past = out.past_key_values
            nxt = out.logits[:, -1, :].float().argmax(-1)
            toks = nxt.tolist()
            for i, j in enumerate(batch):
                if done[i]:
                    continue
                t = toks[i]
                if t == self.eos and not j.ignore_eos:
                    done[i] = True
                    j.out.put(None)
                    continue
                j.out.put(t)
                counts[i] += 1
                if counts[i] >= j.max_tokens:
                    done[i] = True
                    j.out.put(None)
            if all(done):
                break
            inp = nxt.unsqueeze(-1)
            mask = torch.cat([mask, torch.ones((len(batch), 1), dtype=mask.dtype, device=self.device)], -1)
            pos = pos[:, -1:] + 1
        for i, j in enumerate(batch):
            if not done[i]:
                j.out.put(None)

    @torch.inference_mode()
    def score(self, ids):
        """Echo + logprobs (lm-eval's request): per prompt token its log-probability, the top-1."""
        with self.lock:
            x = torch.tensor([ids], device=self.device)
            lp = torch.log_softmax(self.model(input_ids=x).logits[0].float(), -1)
        tl, top, toks = [None], [None], [self.tok.decode([ids[0]])]
        for p in range(1, len(ids)):
            row = lp[p - 1]
            best = int(row.argmax())
            tl.append(float(row[ids[p]]))
            top.append({self.tok.decode([best]): float(row[best]), self.tok.decode([ids[p]]): float(row[ids[p]])})
            toks.append(self.tok.decode([ids[p]]))
        last = lp[len(ids) - 1]
        g = int(last.argmax())
        tl.append(float(last[g]))
        top.append({self.tok.decode([g]): float(last[g])})
        toks.append(self.tok.decode([g]))
        offs, o = [], 0
        for t in toks:
            offs.append(o)
            o += len(t)
        return {"tokens": toks, "token_logprobs": tl, "top_logprobs": top, "text_offset": offs}, "".join(toks)


def make_handler(engine, served):
    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def send_json(self, code, obj):
            b = json.dumps(obj).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(b)))
            self.end_headers()
            self.wfile.write(b)

        def do_GET(self):
            if self.path.rstrip("/") in ("/v1/models", "/models"):
                self.send_json(200, {"object": "list", "data": [{"id": served, "object": "model"}]})
            elif self.path == "/health":
                self.send_json(200, {"status": "ok"})
            else:
                self.send_json(404, {"error": "not found"})

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            if self.path.rstrip("/") != "/v1/completions":
                return self.send_json(404, {"error": f"{self.path}: only /v1/completions"})
            if float(body.get("temperature", 0) or 0) != 0:
                return self.send_json(400, {"error": "only temperature 0 (greedy)"})
            prompt = body.get("prompt", "")
            ids = prompt if isinstance(prompt, list) and all(isinstance(x, int) for x in prompt) else self.encode(prompt)
            if body.get("echo") and body.get("logprobs") is not None:
                lp, text = engine.score(ids)
                usage = {"prompt_tokens": len(ids), "completion_tokens": 1, "total_tokens": len(ids) + 1}
                return self.send_json(200, {"id": "cmpl-" + uuid.uuid4().hex, "object": "text_completion", "model": served,
                                            "choices": [{"index": 0, "text": text, "logprobs": lp, "finish_reason": "length"}],
                                            "usage": usage})
            stop = body.get("stop") or []
            stop = [stop] if isinstance(stop, str) else stop
            job = Job(ids, int(body.get("max_tokens", 16)), stop, bool(body.get("ignore_eos", False)))
            engine.jobs.put(job)
            if body.get("stream"):
                self.stream(job, len(ids), body)
            else:
                toks = []
                while (t := job.out.get()) is not None:
                    toks.append(t)
                text = cut(engine.tok.decode(toks, skip_special_tokens=True), stop)
                self.send_json(200, {"id": "cmpl-" + uuid.uuid4().hex, "object": "text_completion", "model": served,
                                     "choices": [{"index": 0, "text": text, "finish_reason": "length"}],
                                     "usage": {"prompt_tokens": len(ids), "completion_tokens": len(toks),
                                               "total_tokens": len(ids) + len(toks)}})

        def encode(self, text):
            return engine.tok(text)["input_ids"]

        def chunk(self, data):
            b = f"data: {data}\n\n".encode()
            self.wfile.write(f"{len(b):x}\r\n".encode() + b + b"\r\n")
            self.wfile.flush()

        def stream(self, job, n_prompt, body):
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            cid = "cmpl-" + uuid.uuid4().hex
            toks, sent = [], ""
            while (t := job.out.get()) is not None:
                toks.append(t)
                text = engine.tok.decode(toks, skip_special_tokens=True)
                delta, sent = text[len(sent):], text
                self.chunk(json.dumps({"id": cid, "object": "text_completion", "model": served,
                                       "choices": [{"index": 0, "text": delta, "finish_reason": None}]}))
            if (body.get("stream_options") or {}).get("include_usage"):
                self.chunk(json.dumps({"id": cid, "object": "text_completion", "model": served, "choices": [],
                                       "usage": {"prompt_tokens": n_prompt, "completion_tokens": len(toks),
                                                 "total_tokens": n_prompt + len(toks)}}))
            self.chunk("[DONE]")
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

    return H


class Server(ThreadingHTTPServer):
    # socketserver's listen backlog is 5, fewer than the load levels' clients connecting at once;
    # the H100 load run of 2026-12-06 lost 6 of its 32-client requests to connection errors (their
    # messages were not brought back, so this is the likely cause, not a proven one).
    request_queue_size = 1024
    daemon_threads = True


def cut(text, stop):
    idx = [text.find(s) for s in stop if s and s in text]
    return text[: min(idx)] if idx else text


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--served-model-name", default=None)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("--dtype", default="float16")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--max-batch", type=int, default=64)
    ap.add_argument("--gather-ms", type=float, default=20.0)
    a = ap.parse_args()
    engine = Engine(a.model, a.dtype, a.device, a.max_batch, a.gather_ms)
    served = a.served_model_name or a.model
    srv = Server((a.host, a.port), make_handler(engine, served))
    print(f"serving {served} on http://{a.host}:{a.port} ({a.device}, {a.dtype})", flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
