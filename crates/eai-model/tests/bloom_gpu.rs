//! BLOOM on the GPU against the CPU reference (itself checked against transformers:
//! `tests/bloom.rs`) for every scheme, from safetensors-style sources and GGUF, with shared
//! contexts, greedy decode and CUDA graphs; and against transformers' logits directly for the
//! checkpoint folders named by `EAI_BLOOM_DIRS` (written by `scripts/make_bloom_fixtures.py`).

use std::collections::HashMap;
use std::path::Path;

use eai_model::cuda::{GpuEngine, GpuModel, GpuOptions, GpuScheme, PackedSeq};
use eai_model::{
    F32Tensor, GgufFile, GgufSource, LoadOptions, Model, ModelConfig, SafetensorsSource, Scheme,
    WeightSource,
};

use super::{BOUNDS, compare, gpu, mc_requests, tiny_tokenizer};

/// A random BLOOM checkpoint as `save_pretrained` names it (`transformer.` prefix, fused
/// `query_key_value` in Hugging Face's per-head interleaving).
struct BloomTiny {
    t: HashMap<String, F32Tensor>,
}

impl WeightSource for BloomTiny {
    fn source_name(&self) -> String {
        "bloom-tiny-random".into()
    }
    fn tensor(&self, name: &str) -> eai_model::Result<Option<F32Tensor>> {
        Ok(self.t.get(name).cloned())
    }
}

/// Hidden 192, **6 heads** (not a power of two: BLOOM's extra ALiBi slopes) of dim 32, 2 layers,
/// vocab 300, tied embeddings.
fn bloom_tiny() -> (ModelConfig, BloomTiny) {
    let cfg = ModelConfig::from_hf_json(
        r#"{ "architectures": ["BloomForCausalLM"], "hidden_size": 192, "n_head": 6,
             "n_layer": 2, "vocab_size": 300, "layer_norm_epsilon": 1e-5,
             "bos_token_id": 1, "eos_token_id": 2 }"#,
        "bloom-tiny.json",
    )
    .unwrap();
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut rnd = |n: usize, a: f32| -> Vec<f32> {
        (0..n)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                ((state >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * a
            })
            .collect()
    };
    let (h, f) = (cfg.hidden, cfg.ffn);
    let mut t = HashMap::new();
    let mut put = |name: String, shape: Vec<usize>, data: Vec<f32>| {
        t.insert(name, F32Tensor { shape, data });
    };
    let mut norm = |put: &mut dyn FnMut(String, Vec<usize>, Vec<f32>), p: &str| {
        put(format!("{p}.weight"), vec![h], rnd(h, 0.3).iter().map(|v| 1.0 + v).collect());
        put(format!("{p}.bias"), vec![h], rnd(h, 0.3));
    };
    norm(&mut put, "transformer.word_embeddings_layernorm");
    norm(&mut put, "transformer.ln_f");
    for l in 0..cfg.n_layers {
        norm(&mut put, &format!("transformer.h.{l}.input_layernorm"));
        norm(&mut put, &format!("transformer.h.{l}.post_attention_layernorm"));
    }
    put("transformer.word_embeddings.weight".into(), vec![cfg.vocab, h], rnd(cfg.vocab * h, 1.0));
    for l in 0..cfg.n_layers {
        let p = format!("transformer.h.{l}");
        for (m, o, i) in [
            ("self_attention.query_key_value", 3 * h, h),
            ("self_attention.dense", h, h),
            ("mlp.dense_h_to_4h", f, h),
            ("mlp.dense_4h_to_h", h, f),
        ] {
            put(format!("{p}.{m}.weight"), vec![o, i], rnd(o * i, 1.5 * (3.0 / i as f32).sqrt()));
            put(format!("{p}.{m}.bias"), vec![o], rnd(o, 0.1));
        }
    }
    (cfg, BloomTiny { t })
}

const IDS: [u32; 19] = [1, 17, 250, 3, 99, 42, 7, 7, 7, 280, 0, 299, 150, 151, 152, 8, 5, 6, 200];

fn cpu_model(src: &dyn WeightSource, cfg: &ModelConfig, s: Scheme) -> Model {
    Model::load(src, cfg.clone(), LoadOptions::new(s)).unwrap()
}

/// Every scheme's logits (scoring pass and generation pass) against the CPU reference of the
/// same scheme (FP32 for dynamic), within the Llama bounds of `cuda.rs`.
#[test]
fn bloom_gpu_matches_cpu_for_every_scheme() {
    let Some(dev) = gpu("bloom_gpu_matches_cpu_for_every_scheme") else { return };
    let (cfg, src) = bloom_tiny();
    let fp32 = cpu_model(&src, &cfg, Scheme::Fp32).logits_for(&IDS).unwrap();
    let scale = fp32.iter().fold(0f32, |a, &x| a.max(x.abs()));
    for (scheme, bound, top1) in BOUNDS {
        let want = match scheme.cpu_reference() {
            Some(s) => cpu_model(&src, &cfg, s).logits_for(&IDS).unwrap(),
            None => fp32.clone(),
        };
        // The CPU reference's f32 LM head (the GPU's int8 schemes default to an f16 one).
        let opts = GpuOptions::new(scheme).half_head(false);
        let mut m = GpuModel::load_with(dev.clone(), &src, cfg.clone(), opts).unwrap();
        let score = compare(&m.logits_for(&IDS).unwrap(), &want);
        let generation = compare(&m.generation_logits_for(&IDS[..4]).unwrap(), &{
            let w = match scheme.cpu_reference() {
                Some(s) => cpu_model(&src, &cfg, s),
                None => cpu_model(&src, &cfg, Scheme::Fp32),
            };
            w.logits_for(&IDS[..4]).unwrap()
        });
        eprintln!(
            "BLOOM GPU {scheme}: max |Δ| vs CPU {:.2e} (scoring), {:.2e} (generation pass), top-1 \
             {:.2}, logit scale {scale:.2}",
            score.max_abs, generation.max_abs, score.top1_agree
        );
        assert!(score.max_abs <= bound, "{scheme}: {}", score.max_abs);
        assert!(generation.max_abs <= bound, "{scheme}: {}", generation.max_abs);
        assert!(score.top1_agree >= top1, "{scheme}: top-1 {}", score.top1_agree);
        if scheme == GpuScheme::Fp32 {
            assert!(score.max_abs <= 1e-4 * scale, "fp32 relative: {}", score.max_abs);
        }
    }
}

/// The checkpoint written as a llama.cpp `bloom` GGUF (fused QKV regrouped to `[3, heads, d]`)
/// loads on the GPU to the same logits as the safetensors-named source.
#[test]
fn bloom_gpu_reads_gguf_like_safetensors() {
    let Some(dev) = gpu("bloom_gpu_reads_gguf_like_safetensors") else { return };
    let (cfg, src) = bloom_tiny();
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("bloom.gguf");
    super::bloom_gguf::write_bloom_gguf(&p, &cfg, &src, eai_model::GgmlType::F32);
    let f = GgufFile::open(&p).unwrap();
    let gcfg = ModelConfig::from_gguf(&f).unwrap();
    let mut a = GpuModel::load(dev.clone(), &src, cfg, GpuScheme::Fp32).unwrap();
    let mut b = GpuModel::load(dev, &GgufSource::new(&f, &gcfg), gcfg, GpuScheme::Fp32).unwrap();
    let (la, lb) = (a.logits_for(&IDS).unwrap(), b.logits_for(&IDS).unwrap());
    let d =
        la.iter().flatten().zip(lb.iter().flatten()).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
    eprintln!("BLOOM GPU gguf vs safetensors: max |Δ| {d:.2e}");
    assert!(d < 1e-5, "gguf vs safetensors: {d}");
}

/// ALiBi with shared prefixes (a continuation attending to another sequence's KV slots at
/// positions that start after the prefix), greedy decode equal to the CPU's, and CUDA-graph
/// decode equal to eager decode for the graph-capable schemes.
#[test]
fn bloom_gpu_prefixes_decode_and_graphs() {
    let Some(dev) = gpu("bloom_gpu_prefixes_decode_and_graphs") else { return };
    let (cfg, src) = bloom_tiny();
    let mut m = GpuModel::load(dev.clone(), &src, cfg.clone(), GpuScheme::Fp32).unwrap();
    let (ctx, cont) = (&IDS[..11], &IDS[11..]);
    let targets: Vec<Vec<u32>> = (0..cont.len()).map(|i| vec![IDS[(i + 3) % IDS.len()]]).collect();
    let pos: Vec<usize> = (0..cont.len()).collect();
    let packed = [PackedSeq::new(ctx), PackedSeq::continuing(cont, 0, ctx.len())];
    let shared =
        m.score_packed(&packed, &[vec![], pos.clone()], &[vec![], targets.clone()]).unwrap();
    let pos_full: Vec<usize> = (ctx.len()..IDS.len()).collect();
    let full = m.score_batch(&[&IDS], &[pos_full], &[targets]).unwrap();
    for (a, b) in shared[1].iter().zip(&full[0]) {
        assert!((a.log_z - b.log_z).abs() < 1e-4, "log Z {} vs {}", a.log_z, b.log_z);
        assert!((a.picks[0].1 - b.picks[0].1).abs() < 1e-4);
        assert_eq!(a.argmax, b.argmax);
    }
    // Greedy decode of two prompts against the CPU's argmax over its full logits.
    let cpu = cpu_model(&src, &cfg, Scheme::Fp32);
    let prompts: [&[u32]; 2] = [&IDS[..5], &IDS[7..9]];
    let (got, _, _) = m.generate_greedy(&prompts, &[12, 12], &[], cfg.vocab, |_, _| false).unwrap();
    for (p, g) in prompts.iter().zip(&got) {
        let mut seq = p.to_vec();
        for &t in g {
            let l = cpu.logits_for(&seq).unwrap();
            let last = l.row(seq.len() - 1);
            let am = (0..cfg.vocab).fold(0, |b, i| if last[i] > last[b] { i } else { b });
            assert_eq!(t as usize, am, "greedy token after {seq:?}");
            seq.push(t);
        }
        assert_eq!(g.len(), 12);
    }
    for scheme in [GpuScheme::Fp32, GpuScheme::Fp16, GpuScheme::Bf16, GpuScheme::W8A16] {
        let mut m = GpuModel::load_with(
            dev.clone(),
            &src,
            cfg.clone(),
            GpuOptions::new(scheme).cuda_graph(true),
        )
        .unwrap();
        let eager = {
            m.set_cuda_graph(false);
            m.generate_greedy(&prompts, &[16, 16], &[], cfg.vocab, |_, _| false).unwrap().0
        };
        assert!(m.set_cuda_graph(true), "{scheme}: graphs unavailable");
        let graph = m.generate_greedy(&prompts, &[16, 16], &[], cfg.vocab, |_, _| false).unwrap().0;
        assert_eq!(eager, graph, "{scheme}: graph decode differs from eager decode");
    }
}

/// The GPU engine scores lm-eval requests with and without shared contexts alike, and like the
/// CPU engine of the same scheme (FP32 for dynamic): per continuation token within twice the
/// scheme's logit bound of `cuda.rs` (a log-softmax moves at most twice the largest logit change).
#[test]
fn bloom_gpu_engine_shares_contexts_like_the_cpu_engine() {
    let Some(dev) = gpu("bloom_gpu_engine_shares_contexts_like_the_cpu_engine") else { return };
    let (cfg, src) = bloom_tiny();
    let dir = tempfile::tempdir().unwrap();
    let tok = tiny_tokenizer(dir.path());
    let reqs = mc_requests();
    for (scheme, bound, _) in BOUNDS {
        let cpu_scheme = scheme.cpu_reference().unwrap_or(Scheme::Fp32);
        let cpu_model = cpu_model(&src, &cfg, cpu_scheme);
        let want = eai_model::Engine::new(cpu_model, tok.clone(), "bloom-tiny")
            .loglikelihood_tokens(&reqs)
            .unwrap();
        let opts = GpuOptions::new(scheme).half_head(false);
        let model = GpuModel::load_with(dev.clone(), &src, cfg.clone(), opts).unwrap();
        let mut g = GpuEngine::new(model, tok.clone(), "bloom-tiny");
        let mut runs = Vec::new();
        for share in [false, true] {
            let mut o = GpuEngine::default_options();
            o.share_prefixes = share;
            g = g.with_options(o);
            runs.push(g.loglikelihood_tokens(&reqs).unwrap());
        }
        let mut worst = (0f64, 0f64);
        for (i, (((a, _), (b, _)), (c, _))) in runs[1].iter().zip(&runs[0]).zip(&want).enumerate() {
            let n = reqs[i].1.len() as f64;
            worst = (worst.0.max((a - b).abs() / n), worst.1.max((a - c).abs() / n));
            assert!(a.is_finite(), "{scheme}: request {i}");
        }
        eprintln!(
            "BLOOM GPU engine {scheme}: |Δ|/token shared vs unshared {:.2e}, vs CPU {} {:.2e}",
            worst.0,
            cpu_scheme.label(),
            worst.1
        );
        let share_bound = match scheme {
            GpuScheme::Fp32 => 1e-4,
            GpuScheme::Fp16 | GpuScheme::W8A16 => 1e-2,
            _ => 5e-2,
        };
        assert!(worst.0 <= share_bound, "{scheme}: shared vs unshared {}", worst.0);
        assert!(worst.1 <= 2.0 * f64::from(bound), "{scheme}: vs CPU {}", worst.1);
    }
}

/// `(ids, logits [positions][vocab], max |logit|)` of each sequence in a fixture's
/// `expected.json`.
fn expected(dir: &Path) -> Vec<(Vec<u32>, Vec<Vec<f32>>, f32)> {
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    meta["sequences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let ids: Vec<u32> =
                s["ids"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect();
            let vocab = s["shape"][1].as_u64().unwrap() as usize;
            let raw = std::fs::read(dir.join(s["logits_f32le"].as_str().unwrap())).unwrap();
            let flat: Vec<f32> =
                raw.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
            assert_eq!(flat.len(), ids.len() * vocab);
            (
                ids,
                flat.chunks(vocab).map(<[f32]>::to_vec).collect(),
                s["max_abs_logit"].as_f64().unwrap() as f32,
            )
        })
        .collect()
}

fn max_diff(a: &[Vec<f32>], b: &[Vec<f32>]) -> (f32, f64) {
    let mut d = 0f32;
    let mut agree = 0usize;
    for (ra, rb) in a.iter().zip(b) {
        assert_eq!(ra.len(), rb.len());
        let am = |r: &[f32]| (0..r.len()).fold(0, |b, i| if r[i] > r[b] { i } else { b });
        agree += usize::from(am(ra) == am(rb));
        for (x, y) in ra.iter().zip(rb) {
            assert!(x.is_finite(), "non-finite logit");
            d = d.max((x - y).abs());
        }
    }
    (d, agree as f64 / a.len().max(1) as f64)
}

/// Checkpoints written by transformers (`make_bloom_fixtures.py tiny32|7b DIR`), named by
/// `EAI_BLOOM_DIRS` (`:`-separated): FP32 GPU logits within `1e-4 × max |logit|` of
/// `BloomForCausalLM`'s at every position, the GPU against the CPU engine, and every other
/// scheme's agreement with transformers with the default options (int8 schemes: f16 LM head),
/// printed as `BLOOMCMP {json}` lines.
#[test]
fn bloom_gpu_matches_transformers() {
    let Some(dirs) = std::env::var_os("EAI_BLOOM_DIRS") else {
        eprintln!("skipped bloom_gpu_matches_transformers: EAI_BLOOM_DIRS not set");
        return;
    };
    let Some(dev) = gpu("bloom_gpu_matches_transformers") else { return };
    for dir in std::env::split_paths(&dirs) {
        let cfg = ModelConfig::from_hf_file(dir.join("config.json")).unwrap();
        let exp = expected(&dir);
        let src = SafetensorsSource::open(&dir).unwrap();
        let name = dir.display().to_string();
        let mut gpu_fp32 = Vec::new();
        for scheme in GpuScheme::ALL {
            let t = std::time::Instant::now();
            let mut m = GpuModel::load(dev.clone(), &src, cfg.clone(), scheme).unwrap();
            let load_s = t.elapsed().as_secs_f64();
            for (si, (ids, want, scale)) in exp.iter().enumerate() {
                let got = m.logits_for(ids).unwrap();
                let (d, top1) = max_diff(&got, want);
                let bound = 1e-4 * scale.max(1.0);
                println!(
                    "BLOOMCMP {}",
                    serde_json::json!({"dir": name, "layers": cfg.n_layers, "hidden": cfg.hidden,
                        "heads": cfg.n_heads, "vocab": cfg.vocab, "seq": si, "positions": ids.len(),
                        "scheme": scheme.label(), "vs": "transformers fp32", "max_abs": d,
                        "max_abs_logit": scale, "relative": d / scale.max(1.0),
                        "top1_agree": top1, "load_s": load_s})
                );
                if scheme == GpuScheme::Fp32 {
                    assert!(d <= bound, "{name} seq {si}: GPU fp32 max |Δ| {d} > {bound}");
                    gpu_fp32.push(got);
                }
            }
        }
        let cpu = Model::load(&src, cfg.clone(), LoadOptions::new(Scheme::Fp32)).unwrap();
        for (si, (ids, want, scale)) in exp.iter().enumerate() {
            let c = cpu.logits_for(ids).unwrap();
            let c: Vec<Vec<f32>> = c.rows().into_iter().map(|r| r.to_vec()).collect();
            let (d_cpu_tf, _) = max_diff(&c, want);
            let (d, top1) = max_diff(&gpu_fp32[si], &c);
            println!(
                "BLOOMCMP {}",
                serde_json::json!({"dir": name, "seq": si, "positions": ids.len(),
                    "scheme": "fp32", "vs": "eai cpu fp32", "max_abs": d, "max_abs_logit": scale,
                    "relative": d / scale.max(1.0), "top1_agree": top1,
                    "cpu_vs_transformers_max_abs": d_cpu_tf})
            );
            assert!(d <= 1e-4 * scale.max(1.0), "{name} seq {si}: GPU vs CPU {d}");
        }
    }
}
