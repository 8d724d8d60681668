#![allow(clippy::unwrap_used, clippy::expect_used)]
//! GPU runtime benchmark: parity with the CPU reference, accuracy on ARC-Easy / HellaSwag
//! subsets, log-likelihood requests/s and J/request, prefill and decode tokens/s and J/token per
//! scheme (energy from NVML's total-energy counter), a synthetic 7B-shaped model, and the token
//! requests for the Hugging Face transformers comparison (`examples/gpu_hf_compare.py`).
//!
//! ```text
//! gpu_bench --gguf SmolLM2.gguf --data ../shared/data --out out/ [--limit 200]
//!           [--throughput-limit 2000] [--schemes fp32,fp16,...] [--skip-7b] [--cpu-only]
//!           [--only parity,eval,throughput,speed,7b] [--shapes qwen,mistral]
//!           [--half-head false,true] [--gemv true,false] [--graph true,false] [--pdl true,false]
//!           [--share true,false] [--min-seconds 5] [--throughput-schemes fp32,fp16] [--full-arc]
//!           [--accuracy-share true] [--fused true,false] [--tile auto,r1u8,k4u2,t8u4,w16]
//!           [--quick] [--int8-head false,true] [--decode-new 128] [--score-reps 5]
//!           [--batches 1,8,32] [--decode-new-batched 64]
//!
//! `--shapes` takes the paper's six models at their exact published shapes — `qwen`
//! (Qwen2.5-7B-Instruct), `r1` (DeepSeek-R1-Distill-Qwen-7B), `mistral` (Mistral-7B-Instruct-v0.2),
//! `neural-chat` (Neural-Chat-7B-v3-3), `yi` (Yi-6B), `bloom` (Bloomz-7B1), or `paper` for all
//! six — and `smol` (SmolLM2-135M's shapes), all with synthetic weights;
//! `--graph` runs the speed measurement of each synthetic model with CUDA-graph decode on and/or
//! off (the same loaded model, toggled with `GpuModel::set_cuda_graph`), `--pdl` with
//! programmatic dependent launch of the fused decode kernels forced on and/or off
//! (`GpuModel::set_pdl`; sm_90+; without it, each scheme's default, `pdl_default`); `--fused` and `--tile`
//! likewise toggle the fused decode kernels and the row layout of their plain GEMVs
//! (`GpuModel::set_fused_decode`, `set_gemv_tile`; tiles only with fused on); `--quick` measures
//! batch-1 decode only; `--int8-head` builds the int8 schemes' synthetic models with and/or
//! without the int8 LM head (`GpuOptions::int8_head`); `--decode-new` sets the tokens generated
//! per batch-1 decode measurement (default 128); `--score-reps N` the scoring passes (8 × 512
//! tokens each) measured per model (default 5, or 0 with `--quick`); `--batches` the greedy
//! decode batch sizes (default 1 with `--quick`, else 1,16; for every (fused, tile) variant:
//! `w16` also runs decode steps of 5–32 sequences on the batched W16 GEMV), each batch above 1 generating
//! `--decode-new-batched` tokens per sequence (default 64). Every decode row carries its roofline
//! (bytes a step reads — weights, scales, KV cache — times steps/s, as a fraction of a
//! device-to-device copy measured in the same process) and the 7B section ends with the
//! roofline table and issue 16's bars (`roofline.md` in `--out`). `--only profile` runs a few greedy steps of each synthetic model (and
//! `--fused` setting) between `cuProfilerStart` / `cuProfilerStop`, for
//! `ncu --profile-from-start off`.
//! ```
//! `--cpu-only` runs the accuracy subsets on the CPU reference engine instead (no GPU needed).
//!
//! `eval`: accuracy on the `--limit` subsets (and on the whole ARC-Easy test set with
//! `--full-arc`) per scheme, with shared contexts on (the engine's default); then log-likelihood
//! throughput on the `--throughput-limit` documents for `--throughput-schemes` (default: every
//! scheme), once per `--share` setting, each task's call repeated until `--min-seconds` have
//! passed (so that NVML's energy counter granularity does not matter).

use std::path::{Path, PathBuf};
use std::time::Instant;

use eai_eval::{Evaluator, Limit, Suite, TaskOptions};
use eai_model::cuda::{GemvTile, GpuEngine, GpuModel, GpuOptions, GpuScheme, open_device};
use eai_model::{Engine, EngineOptions, LoadOptions, ModelConfig, Scheme, TokenPair};
use serde_json::{Value, json};

#[path = "gpu_bench/roofline.rs"]
mod roofline;

struct Meter {
    dev: Option<nvml_wrapper::Device<'static>>,
}

impl Meter {
    fn new() -> Self {
        let nvml = nvml_wrapper::Nvml::init().ok().map(|n| &*Box::leak(Box::new(n)));
        Meter { dev: nvml.and_then(|n| n.device_by_index(0).ok()) }
    }
    fn mj(&self) -> Option<u64> {
        self.dev.as_ref().and_then(|d| d.total_energy_consumption().ok())
    }
    /// Runs `f` and returns (seconds, joules).
    fn measure<R>(&self, f: impl FnOnce() -> R) -> (R, f64, Option<f64>) {
        let e0 = self.mj();
        let t = Instant::now();
        let r = f();
        let s = t.elapsed().as_secs_f64();
        let e1 = self.mj();
        let j = match (e0, e1) {
            (Some(a), Some(b)) => Some((b - a) as f64 / 1e3),
            _ => None,
        };
        (r, s, j)
    }
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned())
}

fn write(out: &Path, name: &str, v: &Value) {
    std::fs::write(out.join(name), serde_json::to_string_pretty(v).unwrap()).unwrap();
}

fn suite(data: &Path, limit: usize) -> Suite {
    let opts = TaskOptions { limit: Some(Limit::Count(limit)), ..TaskOptions::default() };
    Suite::load_spec(data, "arc_easy,hellaswag", &opts).unwrap()
}

fn bools(args: &[String], name: &str, def: &str) -> Vec<bool> {
    arg(args, name)
        .unwrap_or_else(|| def.into())
        .split(',')
        .map(|x| x == "1" || x == "true")
        .collect()
}

fn metrics(res: &eai_eval::EvalResults) -> Value {
    json!(res.tasks.iter().map(|t| json!({
        "task": t.name,
        "n": t.n_effective,
        "metrics": t.metrics.iter().map(|m| json!({"metric": m.key(), "value": m.value, "stderr": m.stderr})).collect::<Vec<_>>(),
    })).collect::<Vec<_>>())
}

fn texts() -> Vec<&'static str> {
    vec![
        "The history of the city begins in the third century, when a small settlement grew up around a river crossing. Over the next centuries it became a market town, then a regional capital, and finally, after the arrival of the railway, an industrial centre whose factories drew workers from the whole country.",
        "Question: A student mixes baking soda and vinegar in a cup and observes bubbles. Which statement best explains what the student observed?\nAnswer: A chemical reaction produced a gas.\n\nQuestion: Which of these is a renewable source of energy?\nAnswer:",
        "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n\nprint([fibonacci(i) for i in range(10)])",
    ]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let gguf = PathBuf::from(arg(&args, "--gguf").expect("--gguf PATH"));
    let data = PathBuf::from(arg(&args, "--data").unwrap_or_else(|| "../shared/data".into()));
    let out = PathBuf::from(arg(&args, "--out").unwrap_or_else(|| "gpu_bench_out".into()));
    std::fs::create_dir_all(&out).unwrap();
    let limit: usize = arg(&args, "--limit").map_or(200, |s| s.parse().unwrap());
    let tlimit: usize = arg(&args, "--throughput-limit").map_or(2000, |s| s.parse().unwrap());
    let schemes: Vec<GpuScheme> = arg(&args, "--schemes")
        .map(|s| s.split(',').map(|x| GpuScheme::from_label(x).expect("scheme")).collect())
        .unwrap_or_else(|| GpuScheme::ALL.to_vec());
    let only = |name: &str| arg(&args, "--only").is_none_or(|o| o.split(',').any(|x| x == name));
    let fuseds = bools(&args, "--fused", "true");
    let tiles: Vec<GemvTile> = arg(&args, "--tile")
        .map(|s| s.split(',').map(|x| GemvTile::from_label(x).expect("tile")).collect())
        .unwrap_or_else(|| vec![GemvTile::default()]);
    let quick = args.iter().any(|a| a == "--quick");
    let batches: Vec<usize> = arg(&args, "--batches").map_or_else(
        || if quick { vec![1] } else { vec![1, 16] },
        |s| s.split(',').map(|x| x.parse().expect("--batches N,N")).collect(),
    );

    if args.iter().any(|a| a == "--cpu-only") {
        let s = suite(&data, limit);
        let mut rows = Vec::new();
        for sch in schemes {
            let Some(cs) = sch.cpu_reference() else { continue };
            let mut e = Engine::from_gguf(&gguf, LoadOptions::new(cs)).unwrap();
            let t = Instant::now();
            let res = Evaluator::new().progress(false).batch_size(1 << 20).run(&mut e, &s).unwrap();
            rows.push(json!({"scheme": sch.label(), "seconds": t.elapsed().as_secs_f64(), "tasks": metrics(&res)}));
            eprintln!("cpu {sch}: {:?}", rows.last());
            write(&out, "cpu_accuracy.json", &json!(rows));
        }
        return;
    }

    let meter = Meter::new();
    if let Some(dir) = arg(&args, "--hf-dir") {
        // A Hugging Face folder (f32 safetensors + config.json) for the transformers comparison;
        // needs no GPU (`--only none --hf-dir DIR` converts and stops).
        let (_, s, _) = meter
            .measure(|| eai_model::gguf_to_hf(&gguf, &dir, eai_model::ConvertDtype::F32).unwrap());
        eprintln!("converted to {dir} in {s:.1}s");
        if arg(&args, "--only").as_deref() == Some("none") {
            return;
        }
    }
    let dev = match open_device(0) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("gpu_bench: no usable GPU: {e}");
            std::process::exit(1);
        }
    };
    let info = dev.info().clone();
    let mut report = json!({
        "device": info.name, "compute_capability": format!("{}.{}", info.compute_capability.0, info.compute_capability.1),
        "memory_bytes": info.total_memory_bytes, "sms": info.multiprocessors, "nvml_energy": meter.mj().is_some(),
    });
    eprintln!("device: {report}");
    // The memory roof of the decode rows, measured once in this process.
    let copy = if only("speed") || only("7b") { roofline::copy_bandwidth(&dev) } else { 0.0 };
    report["copy_bytes_per_s"] = json!(copy);
    eprintln!("device-to-device copy: {:.0} GB/s (read + write)", copy / 1e9);

    // ---- parity with the CPU reference ---------------------------------------------------
    let mut cpu_tok = None;
    if only("parity") {
        let mut rows = Vec::new();
        let fp32 = Engine::from_gguf(&gguf, LoadOptions::new(Scheme::Fp32)).unwrap();
        let seqs: Vec<Vec<u32>> =
            texts().iter().map(|t| fp32.tokenizer().encode(t).unwrap()).collect();
        let ref32: Vec<_> = seqs.iter().map(|s| fp32.model().logits_for(s).unwrap()).collect();
        for &sch in &schemes {
            let cs = sch.cpu_reference();
            let refs = match cs {
                Some(Scheme::Fp32) | None => ref32.clone(),
                Some(c) => {
                    let e = Engine::from_gguf(&gguf, LoadOptions::new(c)).unwrap();
                    seqs.iter().map(|s| e.model().logits_for(s).unwrap()).collect()
                }
            };
            let mut g = GpuEngine::from_gguf(dev.clone(), &gguf, sch).unwrap();
            let (mut max_abs, mut sum_abs, mut n, mut agree, mut pos) =
                (0f32, 0f64, 0usize, 0usize, 0usize);
            let (mut max32, mut agree32) = (0f32, 0usize);
            let (mut nll_g, mut nll_c) = (0f64, 0f64);
            for (si, s) in seqs.iter().enumerate() {
                let got = g.model_mut().logits_for(s).unwrap();
                for (p, row) in got.iter().enumerate() {
                    let want = refs[si].row(p);
                    let w32 = ref32[si].row(p);
                    let am = |it: &mut dyn Iterator<Item = f32>| {
                        it.enumerate()
                            .fold(
                                (0, f32::NEG_INFINITY),
                                |b, (i, v)| if v > b.1 { (i, v) } else { b },
                            )
                            .0
                    };
                    let ag = am(&mut row.iter().copied());
                    let aw = am(&mut want.iter().copied());
                    let a32 = am(&mut w32.iter().copied());
                    agree += usize::from(ag == aw);
                    agree32 += usize::from(ag == a32);
                    pos += 1;
                    for ((&x, &y), &z) in row.iter().zip(want.iter()).zip(w32.iter()) {
                        let dd = (x - y).abs();
                        max_abs = max_abs.max(dd);
                        max32 = max32.max((x - z).abs());
                        sum_abs += f64::from(dd);
                        n += 1;
                    }
                    if p + 1 < s.len() {
                        let t = s[p + 1] as usize;
                        let lz = |r: &mut dyn Iterator<Item = f32>, v: f32| {
                            let xs: Vec<f32> = r.collect();
                            let mx = xs.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                            xs.iter().map(|&q| f64::from(q - mx).exp()).sum::<f64>().ln()
                                + f64::from(mx)
                                - f64::from(v)
                        };
                        nll_g += lz(&mut row.iter().copied(), row[t]);
                        nll_c += lz(&mut want.iter().copied(), want[t]);
                    }
                }
            }
            let row = json!({
                "scheme": sch.label(), "reference": cs.map_or("fp32 (no CPU dynamic)", |c| c.label()),
                "positions": pos, "max_abs_logit_diff": max_abs, "mean_abs_logit_diff": sum_abs / n as f64,
                "top1_agreement": agree as f64 / pos as f64,
                "max_abs_logit_diff_vs_cpu_fp32": max32, "top1_agreement_vs_cpu_fp32": agree32 as f64 / pos as f64,
                "mean_nll_gpu": nll_g / (pos - seqs.len()) as f64, "mean_nll_cpu": nll_c / (pos - seqs.len()) as f64,
            });
            eprintln!("parity {row}");
            rows.push(row);
        }
        report["parity"] = json!(rows);
        cpu_tok = Some(fp32);
        write(&out, "gpu_bench.json", &report);
    }

    // ---- accuracy subsets and log-likelihood throughput ------------------------------------
    if only("eval") {
        let s_acc = suite(&data, limit);
        let s_tp = suite(&data, tlimit);
        let cpu = cpu_tok
            .take()
            .unwrap_or_else(|| Engine::from_gguf(&gguf, LoadOptions::new(Scheme::Fp32)).unwrap());
        // Token pairs of the throughput set (for ours at token level and for transformers).
        let mut pairs: Vec<TokenPair> = Vec::new();
        let mut per_task = Vec::new();
        for t in &s_tp.tasks {
            let start = pairs.len();
            for inst in t.instances().unwrap() {
                if let eai_eval::DocRequests::Loglikelihood(rs) = inst.requests {
                    for r in rs {
                        pairs.push(cpu.encode_pair(&r.context, &r.continuation).unwrap());
                    }
                }
            }
            per_task.push((t.name().to_string(), start, pairs.len()));
        }
        write(
            &out,
            "requests.json",
            &json!({"pairs": pairs, "tasks": per_task.iter().map(|(n, a, b)| json!([n, a, b])).collect::<Vec<_>>()}),
        );
        let shares = bools(&args, "--share", "true,false");
        // Shared contexts for the accuracy runs (default on, the engine's default).
        let acc_share = bools(&args, "--accuracy-share", "true")[0];
        let min_s: f64 = arg(&args, "--min-seconds").map_or(0.0, |s| s.parse().unwrap());
        let tp_schemes: Vec<GpuScheme> = arg(&args, "--throughput-schemes")
            .map(|s| s.split(',').map(|x| GpuScheme::from_label(x).expect("scheme")).collect())
            .unwrap_or_else(|| schemes.clone());
        let s_full = args
            .iter()
            .any(|a| a == "--full-arc")
            .then(|| Suite::load_spec(&data, "arc_easy", &TaskOptions::default()).unwrap());
        let mut rows = Vec::new();
        for &sch in &schemes {
            let mut g = GpuEngine::from_gguf(dev.clone(), &gguf, sch).unwrap().with_options({
                let mut o = EngineOptions::default();
                o.batch_tokens = 8192;
                o.share_prefixes = acc_share;
                o
            });
            let (res, acc_s, acc_j) = meter.measure(|| {
                Evaluator::new().progress(false).batch_size(1 << 20).run(&mut g, &s_acc).unwrap()
            });
            let full = s_full.as_ref().map(|sf| {
                let (r, secs, j) = meter.measure(|| {
                    Evaluator::new().progress(false).batch_size(1 << 20).run(&mut g, sf).unwrap()
                });
                json!({"tasks": metrics(&r), "seconds": secs, "joules": j})
            });
            // Warm-up, then token-level throughput per task on the same pairs as transformers,
            // with shared contexts on and off; each measured region repeated to ≥ min_s.
            let mut tp = Vec::new();
            let mut lps: Vec<(bool, Vec<f64>)> = Vec::new();
            if !tp_schemes.contains(&sch) {
                // Not timed: one call per setting, for the shared-vs-unshared comparison only.
                for &share in &shares {
                    g.set_share_prefixes(share);
                    let lp = g.loglikelihood_tokens(&pairs).unwrap();
                    lps.push((share, lp.into_iter().map(|x| x.0).collect()));
                }
                g.set_share_prefixes(true);
            } else {
                for &share in &shares {
                    g.set_share_prefixes(share);
                    let _ = g.loglikelihood_tokens(&pairs[..pairs.len().min(256)]).unwrap();
                    let mut all_lp = Vec::new();
                    for (name, a, b) in &per_task {
                        let passes0 = g.counters().forward_passes;
                        let tok0 = g.counters().tokens_processed;
                        let mut reps = 0usize;
                        let mut lp = Vec::new();
                        let (_, secs, j) = meter.measure(|| {
                            let t = Instant::now();
                            while reps == 0 || t.elapsed().as_secs_f64() < min_s {
                                lp = g.loglikelihood_tokens(&pairs[*a..*b]).unwrap();
                                reps += 1;
                            }
                        });
                        let nreq = (b - a) * reps;
                        tp.push(json!({
                            "task": name, "shared_contexts": share, "repeats": reps,
                            "requests": nreq, "seconds": secs, "requests_per_s": nreq as f64 / secs,
                            "joules": j, "j_per_request": j.map(|j| j / nreq as f64),
                            "forward_passes": (g.counters().forward_passes - passes0) / reps as u64,
                            "tokens_processed": (g.counters().tokens_processed - tok0) / reps as u64,
                        }));
                        eprintln!("throughput {sch} {}", tp.last().unwrap());
                        all_lp.extend(lp.into_iter().map(|x| x.0));
                    }
                    lps.push((share, all_lp));
                }
                g.set_share_prefixes(true);
                if let Some((_, lp)) = lps.iter().find(|(s, _)| *s).or(lps.first()) {
                    std::fs::write(
                        out.join(format!("logprobs_{}.json", sch.label())),
                        serde_json::to_string(lp).unwrap(),
                    )
                    .unwrap();
                }
            }
            // Shared vs unshared log-likelihoods on the throughput requests.
            let share_diff = match (lps.iter().find(|x| x.0), lps.iter().find(|x| !x.0)) {
                (Some((_, a)), Some((_, b))) => {
                    let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| (x - y).abs()).collect();
                    json!({
                        "max_abs": d.iter().copied().fold(0f64, f64::max),
                        "mean_abs": d.iter().sum::<f64>() / d.len().max(1) as f64,
                        "requests": d.len(),
                    })
                }
                _ => Value::Null,
            };
            let mem = g.model().memory().unwrap();
            let row = json!({
                "scheme": sch.label(), "accuracy": metrics(&res), "accuracy_run_seconds": acc_s, "accuracy_run_joules": acc_j,
                "arc_easy_full": full, "throughput": tp, "shared_vs_unshared_logprob": share_diff,
                "settings": g.settings_label(),
                "memory": roofline::memory_json(&mem),
            });
            eprintln!("eval {row}");
            rows.push(row);
            report["eval"] = json!(rows);
            write(&out, "gpu_bench.json", &report);
        }
    }

    // ---- prefill and decode speed on SmolLM2 -----------------------------------------------
    if only("speed") {
        let f = eai_model::GgufFile::open(&gguf).unwrap();
        let cfg = ModelConfig::from_gguf(&f).unwrap();
        let mut rows = Vec::new();
        let gemvs: Vec<bool> = arg(&args, "--gemv")
            .unwrap_or_else(|| "true".into())
            .split(',')
            .map(|x| x == "1" || x == "true")
            .collect();
        for &sch in &schemes {
            for &gv in &gemvs {
                if !gv && matches!(sch, GpuScheme::W8A8 | GpuScheme::Dynamic) {
                    continue;
                }
                let mut m = GpuModel::load_with(
                    dev.clone(),
                    &eai_model::GgufSource::new(&f, &cfg),
                    cfg.clone(),
                    GpuOptions::new(sch).decode_gemv(gv),
                )
                .unwrap();
                let label =
                    if gv { sch.label().to_string() } else { format!("{}+no-gemv", sch.label()) };
                for (fl, tile) in variants(&fuseds, &tiles) {
                    let l = variant_label(&mut m, &label, fl, tile);
                    let tag = json!({"base_scheme": sch.label(), "tile": if fl { tile.label() } else { "unfused" }, "int8_head": false});
                    let b = &batches[..];
                    rows.push(speed(&mut m, &meter, &l, "SmolLM2-135M", quick, (tag, b, copy)));
                    report["speed"] = json!(rows);
                    write(&out, "gpu_bench.json", &report);
                }
            }
        }
    }

    // ---- synthetic 7B shapes ----------------------------------------------------------------
    // `--shapes qwen,mistral`, `--half-head false,true` (default true: the library default for the int8 schemes), `--gemv true,false` (decode GEMV on/off).
    if (only("7b") || only("profile")) && !args.iter().any(|a| a == "--skip-7b") {
        // The paper's six models at their exact published shapes (config.json as on the Hugging
        // Face Hub, quoted with sources in docs/paper-models.md), synthetic weights.
        // (Embedded: the binary runs on machines without the source tree.)
        macro_rules! cfg_json {
            ($f:literal) => {
                ($f, include_str!(concat!("../tests/fixtures/configs/", $f)))
            };
        }
        let paper = |(file, text): (&str, &str)| -> ModelConfig {
            ModelConfig::from_hf_json(text, file).unwrap()
        };
        let qwen = paper(cfg_json!("Qwen2.5-7B-Instruct.json"));
        let mistral = paper(cfg_json!("Mistral-7B-Instruct-v0.2.json"));
        // SmolLM2-135M's sizes (the fields of its config.json the model reads).
        let smol = ModelConfig::from_hf_json(
            include_str!("../tests/fixtures/smollm2_135m_shapes.json"),
            "SmolLM2-135M config.json",
        )
        .unwrap();
        let six = [
            ("qwen", "synthetic Qwen2.5-7B-Instruct shapes", cfg_json!("Qwen2.5-7B-Instruct.json")),
            (
                "r1",
                "synthetic DeepSeek-R1-Distill-Qwen-7B shapes",
                cfg_json!("DeepSeek-R1-Distill-Qwen-7B.json"),
            ),
            (
                "mistral",
                "synthetic Mistral-7B-Instruct-v0.2 shapes",
                cfg_json!("Mistral-7B-Instruct-v0.2.json"),
            ),
            (
                "neural-chat",
                "synthetic Neural-Chat-7B-v3-3 shapes",
                cfg_json!("neural-chat-7b-v3-3.json"),
            ),
            ("yi", "synthetic Yi-6B shapes", cfg_json!("Yi-6B.json")),
            ("bloom", "synthetic Bloomz-7B1 shapes", cfg_json!("bloomz-7b1.json")),
        ];
        let names = arg(&args, "--shapes").unwrap_or_else(|| "qwen".into());
        let names = names.replace("paper", "qwen,r1,mistral,neural-chat,yi,bloom");
        let shapes: Vec<(&str, ModelConfig)> = names
            .split(',')
            .map(|x| match x {
                "smol" => ("synthetic SmolLM2-135M shapes", smol.clone()),
                // The first 4 layers only (per-kernel profiles: every layer runs the same kernels).
                "qwen4" => ("synthetic Qwen2.5-7B shapes, 4 layers", layers(&qwen, 4)),
                "mistral4" => ("synthetic Mistral-7B shapes, 4 layers", layers(&mistral, 4)),
                other => match six.iter().find(|(k, _, _)| *k == other) {
                    Some((_, label, json)) => (*label, paper(*json)),
                    None => panic!("unknown shape {other}"),
                },
            })
            .collect();
        if arg(&args, "--only").is_some_and(|o| o.split(',').any(|x| x == "profile")) {
            profile(&dev, &shapes, &schemes, &fuseds, &tiles);
        }
        if !only("7b") || arg(&args, "--only").is_some_and(|o| !o.split(',').any(|x| x == "7b")) {
            write(&out, "gpu_bench.json", &report);
            eprintln!("done");
            return;
        }
        let half_heads = bools(&args, "--half-head", "true");
        let int8_heads = bools(&args, "--int8-head", "false");
        let gemvs = bools(&args, "--gemv", "true");
        let graphs = bools(&args, "--graph", "true");
        // `--pdl true,false` forces programmatic dependent launch on / off; without it each
        // scheme runs its default (`pdl_default`).
        let pdls: Vec<Option<bool>> = match arg(&args, "--pdl") {
            Some(_) => bools(&args, "--pdl", "true").into_iter().map(Some).collect(),
            None => vec![None],
        };
        let mut rows = Vec::new();
        for (model_name, cfg) in &shapes {
            for sch in [GpuScheme::Fp16, GpuScheme::W8A16, GpuScheme::W8A8, GpuScheme::Dynamic] {
                for &hh in &half_heads {
                    for &ih in &int8_heads {
                        for &gv in &gemvs {
                            // The int8 head exists for the int8 schemes only: one row for the others.
                            let float = matches!(sch, GpuScheme::Fp16);
                            if float && ih && int8_heads.contains(&false) {
                                continue;
                            }
                            // FP16's head is f16 anyway: one row for it (under `true` when
                            // `--half-head true` alone is asked for).
                            let fp16_dup =
                                sch == GpuScheme::Fp16 && hh && half_heads.contains(&false);
                            if !schemes.contains(&sch) || fp16_dup {
                                continue;
                            }
                            // The GEMV switch only matters for the schemes that use it.
                            if !gv && matches!(sch, GpuScheme::W8A8 | GpuScheme::Dynamic) {
                                continue;
                            }
                            let mut label = sch.label().to_string();
                            if ih && !float {
                                label.push_str("+int8-head");
                            } else if hh && sch != GpuScheme::Fp16 {
                                label.push_str("+f16-head");
                            }
                            if !gv {
                                label.push_str(if sch == GpuScheme::Fp16 {
                                    "+cublas"
                                } else {
                                    "+eai-quant-gemv"
                                });
                            }
                            let t = Instant::now();
                            let opts = GpuOptions::new(sch)
                                .half_head(hh)
                                .int8_head(ih)
                                .decode_gemv(gv)
                                .cuda_graph(graphs.contains(&true));
                            let mut m = match GpuModel::synthetic_with(
                                dev.clone(),
                                cfg.clone(),
                                opts,
                                7,
                            ) {
                                Ok(m) => m,
                                Err(e) => {
                                    rows.push(json!({"model": model_name, "scheme": label, "error": e.to_string()}));
                                    continue;
                                }
                            };
                            eprintln!(
                                "7b {model_name} {label}: built in {:.1}s",
                                t.elapsed().as_secs_f64()
                            );
                            for (&gr, &pd) in
                                graphs.iter().flat_map(|g| pdls.iter().map(move |p| (g, p)))
                            {
                                let on = m.set_cuda_graph(gr);
                                let pdl_on = match pd {
                                    Some(on) => m.set_pdl(on),
                                    None => m.pdl_on(),
                                };
                                let l = format!(
                                    "{label}{}{}",
                                    if on { "+graph" } else { "" },
                                    if pdl_on { "+pdl" } else { "" }
                                );
                                // Prefill and batch 16 do not depend on the decode variant:
                                // measured with the first one only.
                                for (vi, (fl, tile)) in
                                    variants(&fuseds, &tiles).into_iter().enumerate()
                                {
                                    // W8A8 / dynamic never take the decode GEMV: one row.
                                    let int8_act =
                                        matches!(sch, GpuScheme::W8A8 | GpuScheme::Dynamic);
                                    if int8_act && vi > 0 {
                                        continue;
                                    }
                                    let l2 = if int8_act {
                                        l.clone()
                                    } else {
                                        variant_label(&mut m, &l, fl, tile)
                                    };
                                    let tile_label = match (int8_act, fl) {
                                        (true, _) => "cublaslt",
                                        (false, true) => tile.label(),
                                        (false, false) => "unfused",
                                    };
                                    let tag = json!({"base_scheme": sch.label(), "tile": tile_label, "int8_head": ih && !float});
                                    // Batches of 5–32 take the batched W16 GEMV with `--tile
                                    // w16`: every tile measures every batch size.
                                    let b = &batches[..];
                                    rows.push(speed(
                                        &mut m,
                                        &meter,
                                        &l2,
                                        model_name,
                                        quick || vi > 0,
                                        (tag, b, copy),
                                    ));
                                    report["synthetic_7b"] = json!(rows);
                                    write(&out, "gpu_bench.json", &report);
                                }
                            }
                        }
                    }
                }
            }
        }
        let md = roofline::summary(&rows, copy, &info.name);
        std::fs::write(out.join("roofline.md"), &md).unwrap();
        eprintln!("{md}");
    }
    write(&out, "gpu_bench.json", &report);
    eprintln!("done");
}

/// `cfg` with only its first `n` layers.
fn layers(cfg: &ModelConfig, n: usize) -> ModelConfig {
    let mut c = cfg.clone();
    c.n_layers = n;
    c
}

/// (fused, tile) settings to measure: every tile with fused on, once with fused off.
fn variants(fuseds: &[bool], tiles: &[GemvTile]) -> Vec<(bool, GemvTile)> {
    let mut v = Vec::new();
    for &f in fuseds {
        if f {
            v.extend(tiles.iter().map(|&t| (true, t)));
        } else {
            v.push((false, GemvTile::default()));
        }
    }
    v
}

/// Applies a (fused, tile) setting to `m` and labels it.
fn variant_label(m: &mut GpuModel, base: &str, fused: bool, tile: GemvTile) -> String {
    let on = m.set_fused_decode(fused);
    m.set_gemv_tile(tile);
    if on { format!("{base}+fused-{}", tile.label()) } else { base.to_string() }
}

/// A few greedy decode steps of each synthetic model between `cuProfilerStart` and
/// `cuProfilerStop` (decode step 3 of 8; the prefill and the graph capture stay
/// outside).
fn profile(
    dev: &std::sync::Arc<eai_quant::cuda::CudaDevice>,
    shapes: &[(&str, ModelConfig)],
    schemes: &[GpuScheme],
    fuseds: &[bool],
    tiles: &[GemvTile],
) {
    for (name, cfg) in shapes {
        for &sch in schemes {
            if !matches!(sch, GpuScheme::Fp16 | GpuScheme::W8A16) {
                continue;
            }
            let mut m = GpuModel::synthetic_with(dev.clone(), cfg.clone(), GpuOptions::new(sch), 7)
                .unwrap();
            let vocab = cfg.vocab;
            let prompt: Vec<u32> = (0..32u32).map(|i| (i * 7919) % 30000 + 100).collect();
            for (fl, tile) in variants(fuseds, tiles) {
                let l = variant_label(&mut m, sch.label(), fl, tile);
                m.generate_greedy(&[&prompt], &[8], &[], vocab, |_, _| false).unwrap();
                m.synchronize().unwrap();
                let t = Instant::now();
                m.generate_greedy(&[&prompt], &[8], &[], vocab, |_, g| {
                    if g.len() == 2 || g.len() == 3 {
                        // SAFETY: profiler API calls without arguments; the model's context
                        // is current on this thread (the step before used it).
                        let r = unsafe {
                            if g.len() == 2 {
                                cudarc::driver::sys::cuProfilerStart()
                            } else {
                                cudarc::driver::sys::cuProfilerStop()
                            }
                        };
                        eprintln!("profile {name} {l}: profiler {} -> {r:?}", g.len());
                    }
                    false
                })
                .unwrap();
                m.synchronize().unwrap();
                eprintln!(
                    "profile {name} {l}: 8 tokens in {:.2} ms",
                    t.elapsed().as_secs_f64() * 1e3
                );
            }
        }
    }
}

/// Prefill (8 × 512 tokens, scoring the last position; none with `quick` unless
/// `--score-reps`) and greedy decode at each of `batches`, with the roofline of each decode
/// measurement against `copy` (bytes/s); `tag`'s fields are merged into the row.
fn speed(
    m: &mut GpuModel,
    meter: &Meter,
    sch: &str,
    model: &str,
    quick: bool,
    (tag, batches, copy): (Value, &[usize], f64),
) -> Value {
    let vocab = m.config().vocab as u32;
    let seq = |s: u32, n: usize| -> Vec<u32> {
        (0..n as u32)
            .map(|i| (i * 2654435761u32.wrapping_add(s)) % vocab.min(30000) + 100)
            .collect()
    };
    let seqs: Vec<Vec<u32>> = (0..8).map(|s| seq(s, 512)).collect();
    let refs: Vec<&[u32]> = seqs.iter().map(Vec::as_slice).collect();
    let pos: Vec<Vec<usize>> = seqs.iter().map(|s| vec![s.len() - 1]).collect();
    let tg: Vec<Vec<Vec<u32>>> = seqs.iter().map(|_| vec![vec![1]]).collect();
    let all: Vec<String> = std::env::args().collect();
    // `--score-reps N`: scoring passes measured (default 5; 0 with `--quick` unless given).
    let reps: usize = arg(&all, "--score-reps")
        .map_or(if quick { 0 } else { 5 }, |v| v.parse().expect("--score-reps N"));
    if reps > 0 {
        m.score_batch(&refs, &pos, &tg).unwrap();
    }
    m.synchronize().unwrap();
    let (_, ps, pj) = meter.measure(|| {
        for _ in 0..reps {
            m.score_batch(&refs, &pos, &tg).unwrap();
        }
        m.synchronize().unwrap();
    });
    let ptok = (reps * 8 * 512) as f64;
    let mut dec = Vec::new();
    let n1: usize = arg(&all, "--decode-new").map_or(128, |v| v.parse().expect("--decode-new N"));
    let nb: usize = arg(&all, "--decode-new-batched")
        .map_or(64, |v| v.parse().expect("--decode-new-batched N"));
    let shapes: Vec<(usize, usize)> =
        batches.iter().map(|&b| (b, if b == 1 { n1 } else { nb })).collect();
    for &(batch, new) in &shapes {
        let prompts: Vec<Vec<u32>> = (0..batch).map(|s| seq(100 + s as u32, 32)).collect();
        let pr: Vec<&[u32]> = prompts.iter().map(Vec::as_slice).collect();
        let mn = vec![new; batch];
        m.generate_greedy(&pr, &vec![8; batch], &[], vocab as usize, |_, _| false).unwrap();
        let ((g, passes, _), s, j) = meter
            .measure(|| m.generate_greedy(&pr, &mn, &[], vocab as usize, |_, _| false).unwrap());
        let toks: usize = g.iter().map(Vec::len).sum();
        // `tokens_per_s` includes the 32-token prefill; `decode_only_tokens_per_s` subtracts
        // the median time of the same call generating one token (prefill + first argmax), as
        // llama-bench's tg (no prompt) measures decode steps alone.
        let mut t1: Vec<f64> = (0..3)
            .map(|_| {
                let t = Instant::now();
                m.generate_greedy(&pr, &vec![1; batch], &[], vocab as usize, |_, _| false).unwrap();
                t.elapsed().as_secs_f64()
            })
            .collect();
        t1.sort_by(f64::total_cmp);
        let steps = (passes - 1) as f64 * batch as f64;
        let dec_tok_s = steps / (s - t1[1]);
        // Mean context of a decode step: the 32-token prompt and half the generated tokens.
        let roof = roofline::decode_roofline(m, batch, 32 + new.div_ceil(2), dec_tok_s, copy);
        // The decode GEMV layout a step of `batch` rows ran (`auto` resolves per row count).
        let tile = m.gemv_tile_for(batch).label();
        dec.push(json!({"batch": batch, "gemv_tile": tile, "new_tokens": toks, "passes": passes, "seconds": s,
                        "tokens_per_s": toks as f64 / s, "joules": j, "j_per_token": j.map(|j| j / toks as f64),
                        "prefill_first_token_seconds": t1[1], "decode_only_tokens_per_s": dec_tok_s,
                        "roofline": roof}));
    }
    let mem = m.memory().unwrap();
    let mut row = json!({
        "model": model, "scheme": sch,
        "prefill": {"tokens": ptok, "seconds": ps, "tokens_per_s": if reps == 0 { 0.0 } else { ptok / ps }, "joules": pj, "j_per_token": pj.map(|j| if reps == 0 { 0.0 } else { j / ptok })},
        "decode": dec,
        "memory": roofline::memory_json(&mem),
    });
    if let (Some(r), Some(t)) = (row.as_object_mut(), tag.as_object()) {
        r.extend(t.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    eprintln!("speed {row}");
    m.release_buffers();
    row
}
