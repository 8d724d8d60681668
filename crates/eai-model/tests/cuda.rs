#![allow(clippy::unwrap_used, clippy::expect_used)]
//! GPU runtime against the CPU reference. Every test that needs a GPU skips with a printed
//! reason when none is usable, unless `EAI_REQUIRE_GPU=1`, which turns the skip into a failure.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use eai_model::cuda::{GpuModel, GpuScheme, open_device};
use eai_model::{F32Tensor, LoadOptions, Model, ModelConfig, Scheme, WeightSource};
use eai_quant::cuda::CudaDevice;

mod attention_gpu;
mod bloom_gguf;
mod bloom_gpu;
mod pdl_gpu;
mod w16_gpu;

use w16_gpu::w16_model as w16_gpu_model;

fn gpu(test: &str) -> Option<Arc<CudaDevice>> {
    match open_device(0) {
        Ok(d) => Some(d),
        Err(e) => {
            assert!(
                std::env::var("EAI_REQUIRE_GPU").as_deref() != Ok("1"),
                "{test}: EAI_REQUIRE_GPU=1 but no usable GPU: {e}"
            );
            eprintln!("skipped {test}: no usable GPU ({e})");
            None
        }
    }
}

/// A tiny random Qwen2-style model (GQA, q/k/v biases) as a weight source.
struct Tiny {
    t: HashMap<String, F32Tensor>,
}

impl WeightSource for Tiny {
    fn source_name(&self) -> String {
        "tiny-random".into()
    }
    fn tensor(&self, name: &str) -> eai_model::Result<Option<F32Tensor>> {
        Ok(self.t.get(name).cloned())
    }
}

fn tiny() -> (ModelConfig, Tiny) {
    tiny_with_vocab(300)
}

fn tiny_with_vocab(vocab: usize) -> (ModelConfig, Tiny) {
    tiny_with(&format!(
        r#"{{ "architectures": ["Qwen2ForCausalLM"], "hidden_size": 128, "intermediate_size": 320,
             "num_attention_heads": 4, "num_key_value_heads": 2, "num_hidden_layers": 3,
             "vocab_size": {vocab}, "rope_theta": 10000.0, "rms_norm_eps": 1e-6,
             "max_position_embeddings": 512, "tie_word_embeddings": true }}"#
    ))
}

fn tiny_with(config_json: &str) -> (ModelConfig, Tiny) {
    let cfg = ModelConfig::from_hf_json(config_json, "tiny.json").unwrap();
    let mut state = 0x2545_F491_4F6C_DD1Du64;
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
    let (h, d, nh, nkv, f) = (cfg.hidden, cfg.head_dim, cfg.n_heads, cfg.n_kv_heads, cfg.ffn);
    let mut t = HashMap::new();
    let mut put = |name: String, shape: Vec<usize>, data: Vec<f32>| {
        t.insert(name, F32Tensor { shape, data });
    };
    put("model.embed_tokens.weight".into(), vec![cfg.vocab, h], rnd(cfg.vocab * h, 1.0));
    put("model.norm.weight".into(), vec![h], rnd(h, 0.2).iter().map(|v| 1.0 + v).collect());
    for l in 0..cfg.n_layers {
        let p = format!("model.layers.{l}");
        let s = |k: usize| (3.0 / k as f32).sqrt();
        for (m, o, i) in [
            ("self_attn.q_proj", nh * d, h),
            ("self_attn.k_proj", nkv * d, h),
            ("self_attn.v_proj", nkv * d, h),
            ("self_attn.o_proj", h, nh * d),
            ("mlp.gate_proj", f, h),
            ("mlp.up_proj", f, h),
            ("mlp.down_proj", h, f),
        ] {
            put(format!("{p}.{m}.weight"), vec![o, i], rnd(o * i, s(i)));
        }
        for (m, o) in [("q_proj", nh * d), ("k_proj", nkv * d), ("v_proj", nkv * d)] {
            put(format!("{p}.self_attn.{m}.bias"), vec![o], rnd(o, 0.1));
        }
        for n in ["input_layernorm", "post_attention_layernorm"] {
            put(format!("{p}.{n}.weight"), vec![h], rnd(h, 0.2).iter().map(|v| 1.0 + v).collect());
        }
    }
    (cfg, Tiny { t })
}

struct Diff {
    max_abs: f32,
    top1_agree: f64,
}

fn compare(a: &[Vec<f32>], b: &ndarray::Array2<f32>) -> Diff {
    assert_eq!(a.len(), b.nrows());
    let mut max_abs = 0f32;
    let mut agree = 0;
    for (ra, rb) in a.iter().zip(b.rows()) {
        assert_eq!(ra.len(), rb.len());
        let mut am = (0, f32::NEG_INFINITY);
        let mut bm = (0, f32::NEG_INFINITY);
        for (i, (&x, &y)) in ra.iter().zip(rb.iter()).enumerate() {
            assert!(x.is_finite(), "non-finite GPU logit");
            max_abs = max_abs.max((x - y).abs());
            if x > am.1 {
                am = (i, x);
            }
            if y > bm.1 {
                bm = (i, y);
            }
        }
        agree += usize::from(am.0 == bm.0);
    }
    Diff { max_abs, top1_agree: agree as f64 / a.len() as f64 }
}

/// (scheme, max |Δlogit| bound, minimum top-1 agreement) against the CPU path of the same
/// scheme (FP32 for dynamic).
const BOUNDS: [(GpuScheme, f32, f64); 6] = [
    (GpuScheme::Fp32, 2e-3, 1.0),
    (GpuScheme::Fp16, 0.05, 0.95),
    (GpuScheme::Bf16, 0.3, 0.9),
    // W8A8: a per-token int8 code flips when its f32 input differs in the last bit (attention
    // sums in another order than the CPU's); one flip moved a logit by 0.39 on the H200 with the
    // session-3 scoring attention kernel (1.3e-5 with the earlier kernel: no flip).
    (GpuScheme::W8A8, 0.6, 0.9),
    (GpuScheme::W8A16, 0.05, 0.95),
    (GpuScheme::Dynamic, 1.5, 0.6),
];

#[test]
fn tiny_model_matches_cpu_for_every_scheme() {
    let Some(dev) = gpu("tiny_model_matches_cpu_for_every_scheme") else { return };
    let (cfg, src) = tiny();
    let ids: Vec<u32> = (0..77u32).map(|i| (i * 37 + 11) % 300).collect();
    for (scheme, bound, agree) in BOUNDS {
        let cpu_scheme = scheme.cpu_reference().unwrap_or(Scheme::Fp32);
        let cpu = Model::load(&src, cfg.clone(), LoadOptions::new(cpu_scheme)).unwrap();
        let want = cpu.logits_for(&ids).unwrap();
        // The CPU reference's f32 embedding table and head (the int8 schemes' GPU default is f16).
        let opts = eai_model::cuda::GpuOptions::new(scheme).half_head(false);
        let mut g = GpuModel::load_with(dev.clone(), &src, cfg.clone(), opts).unwrap();
        let got = g.logits_for(&ids).unwrap();
        let d = compare(&got, &want);
        eprintln!("{scheme}: max |Δlogit| {:.3e}, top-1 agreement {:.3}", d.max_abs, d.top1_agree);
        assert!(d.max_abs <= bound, "{scheme}: max |Δ| {} > {bound}", d.max_abs);
        assert!(d.top1_agree >= agree, "{scheme}: top-1 agreement {}", d.top1_agree);
    }
}

/// Decode-sized passes (1–4 rows, and 9 rows for W8A16's M-tiling) through the model's GEMV
/// kernels give the logits of the cuBLAS / eai-quant path, and of the CPU reference.
#[test]
fn decode_gemv_matches_the_gemm_path_and_the_cpu() {
    let Some(dev) = gpu("decode_gemv_matches_the_gemm_path_and_the_cpu") else { return };
    let (cfg, src) = tiny();
    let bounds = [
        (GpuScheme::Fp32, 1e-4f32, 2e-3f32),
        (GpuScheme::Fp16, 0.02, 0.05),
        (GpuScheme::Bf16, 0.15, 0.3),
        (GpuScheme::W8A16, 0.03, 0.05),
    ];
    for (scheme, vs_gemm, vs_cpu) in bounds {
        let opts = eai_model::cuda::GpuOptions::new(scheme).half_head(false);
        let mut on =
            GpuModel::load_with(dev.clone(), &src, cfg.clone(), opts.decode_gemv(true)).unwrap();
        let mut off =
            GpuModel::load_with(dev.clone(), &src, cfg.clone(), opts.decode_gemv(false)).unwrap();
        let cpu_scheme = scheme.cpu_reference().unwrap();
        let cpu = Model::load(&src, cfg.clone(), LoadOptions::new(cpu_scheme)).unwrap();
        for len in [1usize, 2, 3, 4, 9] {
            let ids: Vec<u32> = (0..len as u32).map(|i| (i * 53 + 5) % 300).collect();
            let a = on.logits_for(&ids).unwrap();
            let b = off.logits_for(&ids).unwrap();
            let b2 = ndarray::Array2::from_shape_vec(
                (b.len(), b[0].len()),
                b.iter().flatten().copied().collect(),
            )
            .unwrap();
            let d = compare(&a, &b2);
            let c = compare(&a, &cpu.logits_for(&ids).unwrap());
            eprintln!(
                "{scheme} rows {len}: gemv vs gemm max |Δ| {:.3e}, vs cpu {:.3e}",
                d.max_abs, c.max_abs
            );
            assert!(d.max_abs <= vs_gemm, "{scheme} rows {len}: vs gemm {}", d.max_abs);
            assert!(c.max_abs <= vs_cpu, "{scheme} rows {len}: vs cpu {}", c.max_abs);
            assert!(c.top1_agree >= 0.75, "{scheme} rows {len}: top-1 {}", c.top1_agree);
        }
    }
}

#[test]
fn half_head_keeps_int8_schemes_close_to_fp32() {
    let Some(dev) = gpu("half_head_keeps_int8_schemes_close_to_fp32") else { return };
    let (cfg, src) = tiny();
    let ids: Vec<u32> = (0..50u32).map(|i| (i * 31 + 7) % 300).collect();
    let cpu = Model::load(&src, cfg.clone(), LoadOptions::new(Scheme::W8A8)).unwrap();
    let want = cpu.logits_for(&ids).unwrap();
    let opts = eai_model::cuda::GpuOptions::new(GpuScheme::W8A8).half_head(true);
    let mut g = GpuModel::load_with(dev, &src, cfg, opts).unwrap();
    let d = compare(&g.logits_for(&ids).unwrap(), &want);
    eprintln!("w8a8 + f16 head: max |Δlogit| {:.3e}, top-1 {:.3}", d.max_abs, d.top1_agree);
    // The f16 embedding table perturbs the first layer's inputs, which moves int8 codes across
    // rounding boundaries: logits move by up to ~1 (0.77 measured on an H200), the ranking not.
    assert!(d.max_abs < 1.5 && d.top1_agree >= 0.95, "{} {}", d.max_abs, d.top1_agree);
    assert!(g.memory().unwrap().weights > 0);
}

#[test]
fn packed_batch_equals_one_by_one_and_generation_matches_cpu() {
    let Some(dev) = gpu("packed_batch_equals_one_by_one_and_generation_matches_cpu") else {
        return;
    };
    let (cfg, src) = tiny();
    let mut g = GpuModel::load(dev, &src, cfg.clone(), GpuScheme::Fp32).unwrap();
    let seqs: Vec<Vec<u32>> = vec![
        (0..40u32).map(|i| (i * 7 + 3) % 300).collect(),
        (0..5u32).map(|i| (i * 11 + 1) % 300).collect(),
        (0..19u32).map(|i| (i * 13 + 5) % 300).collect(),
    ];
    let refs: Vec<&[u32]> = seqs.iter().map(Vec::as_slice).collect();
    let pos: Vec<Vec<usize>> = seqs.iter().map(|s| (0..s.len()).collect()).collect();
    let tg: Vec<Vec<Vec<u32>>> =
        seqs.iter().map(|s| s.iter().map(|&t| vec![t, (t + 1) % 300]).collect()).collect();
    let packed = g.score_batch(&refs, &pos, &tg).unwrap();
    for (si, s) in seqs.iter().enumerate() {
        let alone = g.logits_for(s).unwrap();
        for (p, row) in alone.iter().enumerate() {
            let r = &packed[si][p];
            let mx = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let z = row.iter().map(|&v| f64::from(v - mx).exp()).sum::<f64>().ln() + f64::from(mx);
            assert!((r.log_z - z).abs() < 1e-4, "seq {si} pos {p}: {} vs {z}", r.log_z);
            for &(t, v) in &r.picks {
                assert!((v - row[t as usize]).abs() < 1e-4);
            }
        }
    }
    // Greedy generation: GPU batch of 3 with KV cache vs CPU one step at a time.
    let cpu = Model::load(&src, cfg.clone(), LoadOptions::new(Scheme::Fp32)).unwrap();
    let (gen_ids, passes, _) =
        g.generate_greedy(&refs, &[12, 12, 12], &[], 300, |_, _| false).unwrap();
    assert_eq!(passes, 12);
    for (si, s) in seqs.iter().enumerate() {
        assert_eq!(gen_ids[si].len(), 12);
        let mut ctx = s.clone();
        for (step, &got) in gen_ids[si].iter().enumerate() {
            let lg = cpu.logits_for(&ctx).unwrap();
            let last = lg.row(lg.nrows() - 1);
            let (mut bi, mut bv) = (0usize, f32::NEG_INFINITY);
            for (i, &v) in last.iter().enumerate() {
                if v > bv {
                    bv = v;
                    bi = i;
                }
            }
            assert_eq!(got, bi as u32, "seq {si} step {step}");
            ctx.push(bi as u32);
        }
    }
    let mem = g.memory().unwrap();
    assert!(mem.weights > 0 && mem.device_total >= mem.device_free);
}

#[test]
fn out_of_memory_names_what_did_not_fit() {
    let Some(dev) = gpu("out_of_memory_names_what_did_not_fit") else { return };
    // A 7B-shaped FP32 model with a 16M-entry vocabulary (262 GB of f32 embeddings) does not fit
    // any current GPU; the check happens before the host builds the table.
    let cfg = ModelConfig::from_hf_json(
        r#"{ "architectures": ["LlamaForCausalLM"], "hidden_size": 4096, "intermediate_size": 14336,
             "num_attention_heads": 32, "num_key_value_heads": 8, "num_hidden_layers": 32,
             "vocab_size": 16000000, "rope_theta": 10000.0, "rms_norm_eps": 1e-5 }"#,
        "huge.json",
    )
    .unwrap();
    let err = GpuModel::synthetic(dev, cfg, GpuScheme::Fp32, 1).unwrap_err();
    let msg = err.to_string();
    assert!(err.is_out_of_memory(), "{msg}");
    assert!(msg.contains("embed_tokens"), "{msg}");
}

fn smollm2() -> Option<PathBuf> {
    let cache =
        eai_model::cache_dir(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.cache"));
    match eai_model::find_smollm2(&cache) {
        Ok(Some(p)) => Some(p),
        _ => {
            eprintln!("skipped: SmolLM2 GGUF not under {}", cache.display());
            None
        }
    }
}

#[test]
fn smollm2_gpu_engine_scores_like_the_cpu_engine() {
    let Some(dev) = gpu("smollm2_gpu_engine_scores_like_the_cpu_engine") else { return };
    let Some(path) = smollm2() else { return };
    use eai_core::{LanguageModel, LoglikelihoodRequest};
    let mut reqs = vec![
        LoglikelihoodRequest::new("The capital of France is", " Paris"),
        LoglikelihoodRequest::new("The capital of France is", " London"),
        LoglikelihoodRequest::new("Water boils at a temperature of", " 100 degrees Celsius."),
        LoglikelihoodRequest::new("", "Hello world"),
    ];
    // An ARC-style and a HellaSwag-style document: one context, four choices each.
    let arc = "Question: Which of these is a renewable source of energy?\nAnswer:";
    for c in [" coal", " natural gas", " wind", " oil from deep wells"] {
        reqs.push(LoglikelihoodRequest::new(arc, c));
    }
    let hs = "Roof shingle removal: A man is sitting on a roof. He";
    for c in [
        " is using wrap to wrap a pair of skis.",
        " is ripping level tiles off.",
        " is holding a rubik's cube.",
        " starts pulling up roofing on a roof.",
    ] {
        reqs.push(LoglikelihoodRequest::new(hs, c));
    }
    // CPU with and without its shared prefixes (the reference), GPU with and without.
    let mut cpu = eai_model::Engine::from_gguf(&path, LoadOptions::new(Scheme::Fp32)).unwrap();
    let want = cpu.loglikelihood(&reqs).unwrap();
    let mut o = cpu.options().clone();
    o.share_prefixes = false;
    let mut cpu = cpu.with_options(o);
    let want_unshared = cpu.loglikelihood(&reqs).unwrap();
    let mut g = eai_model::cuda::GpuEngine::from_gguf(dev, &path, GpuScheme::Fp32).unwrap();
    assert!(g.options().share_prefixes, "shared contexts are on by default");
    let t0 = g.counters().tokens_processed;
    let got = g.loglikelihood(&reqs).unwrap();
    let t1 = g.counters().tokens_processed;
    g.set_share_prefixes(false);
    let got_unshared = g.loglikelihood(&reqs).unwrap();
    let t2 = g.counters().tokens_processed;
    g.set_share_prefixes(true);
    eprintln!("GPU tokens processed: shared {} unshared {}", t1 - t0, t2 - t1);
    assert!(t1 - t0 < t2 - t1);
    for (i, (((a, b), u), c)) in
        got.iter().zip(&want).zip(&got_unshared).zip(&want_unshared).enumerate()
    {
        eprintln!(
            "request {i}: gpu {:.5} (unshared {:.5}) cpu {:.5} (unshared {:.5})",
            a.logprob, u.logprob, b.logprob, c.logprob
        );
        assert!((a.logprob - b.logprob).abs() < 2e-3, "request {i}");
        assert!((u.logprob - b.logprob).abs() < 2e-3, "request {i} unshared");
        assert!((a.logprob - u.logprob).abs() < 1e-3, "request {i}: shared vs unshared");
        assert_eq!(a.is_greedy, b.is_greedy, "request {i}");
        assert_eq!(u.is_greedy, b.is_greedy, "request {i} unshared");
    }
    for (a, b) in [
        ("Question: 2+2=", " 4"),
        ("Roof shingle removal: A man is sitting on a roof. He ", "starts"),
    ] {
        assert_eq!(g.encode_pair(a, b).unwrap(), cpu.encode_pair(a, b).unwrap());
    }
    let gen_req = eai_core::GenerateRequest::new("The capital of France is", vec!["\n".into()])
        .max_gen_toks(8);
    let gg = g.generate_until(std::slice::from_ref(&gen_req)).unwrap();
    let cg = cpu.generate_until(std::slice::from_ref(&gen_req)).unwrap();
    assert_eq!(gg[0].text, cg[0].text);
    assert!(g.forward_passes().unwrap() > 0);
}

/// Greedy decoding with the decode step replayed from a CUDA graph gives exactly the tokens of
/// the eager path — on the same model (graph toggled off) and on a model built without graphs
/// (legacy default stream) — at batch 1 and 3, with the graph reused across calls and
/// re-captured when the row count changes; schemes that cannot capture fall back to eager.
#[test]
fn cuda_graph_decode_matches_eager_decode() {
    let Some(dev) = gpu("cuda_graph_decode_matches_eager_decode") else { return };
    let (cfg, src) = tiny();
    let prompts: Vec<Vec<u32>> = vec![
        (0..23u32).map(|i| (i * 17 + 2) % 300).collect(),
        (0..4u32).map(|i| (i * 29 + 9) % 300).collect(),
        (0..11u32).map(|i| (i * 41 + 3) % 300).collect(),
        (0..7u32).map(|i| (i * 5 + 101) % 300).collect(),
    ];
    let refs: Vec<&[u32]> = prompts.iter().map(Vec::as_slice).collect();
    for scheme in
        [GpuScheme::Fp32, GpuScheme::Fp16, GpuScheme::Bf16, GpuScheme::W8A16, GpuScheme::W8A8]
    {
        let opts = eai_model::cuda::GpuOptions::new(scheme);
        let mut g =
            GpuModel::load_with(dev.clone(), &src, cfg.clone(), opts.cuda_graph(true)).unwrap();
        let mut plain =
            GpuModel::load_with(dev.clone(), &src, cfg.clone(), opts.cuda_graph(false)).unwrap();
        assert!(g.cuda_graph());
        assert!(!plain.set_cuda_graph(true), "no graphs on the legacy default stream");
        for batch in [1usize, 3, 1] {
            for (round, group) in [&refs[..batch], &refs[1..=batch]].into_iter().enumerate() {
                let n = vec![20usize; batch];
                let (a, pa, _) = g.generate_greedy(group, &n, &[], 300, |_, _| false).unwrap();
                assert!(!g.set_cuda_graph(false));
                let (b, pb, _) = g.generate_greedy(group, &n, &[], 300, |_, _| false).unwrap();
                assert!(g.set_cuda_graph(true));
                let (c, _, _) = plain.generate_greedy(group, &n, &[], 300, |_, _| false).unwrap();
                eprintln!("{scheme} batch {batch} round {round}: {:?}", &a[0][..8]);
                assert_eq!(pa, pb);
                assert!(a.iter().all(|t| t.len() == 20));
                assert_eq!(a, b, "{scheme} batch {batch}: graph vs eager, same model");
                assert_eq!(a, c, "{scheme} batch {batch}: graph vs model without graphs");
            }
        }
        // Scoring between graph replays leaves both paths intact.
        let lg = g.logits_for(refs[0]).unwrap();
        let lp = plain.logits_for(refs[0]).unwrap();
        let d = lg
            .iter()
            .flatten()
            .zip(lp.iter().flatten())
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        eprintln!("{scheme}: logits, own stream vs default stream, max |Δ| {d:.3e}");
        assert!(d <= 1e-3, "{scheme}: logits on the graph model's stream differ by {d}");
    }
}

/// The fused decode path (norm in the GEMV load, rope + KV write and SwiGLU in GEMV epilogues,
/// decode attention, norm-fused LM head) against the unfused session-2 path on the same model
/// and against the CPU reference: generation passes of 1–4 rows (fused layers and head) with
/// every GEMV layout (warp-per-row layouts bit-identical, block-split-K and tensor-core ones
/// within the unfused bound); greedy generation whose prompt prefill and decode steps all take
/// the fused layers (≤ 4 rows), with every layout, gives the unfused path's tokens; FP32 generation with rows finishing at different steps (padding
/// rows) matches the CPU step by step.
#[test]
fn fused_decode_matches_the_unfused_path_and_the_cpu() {
    use eai_model::cuda::{GemvTile, GpuOptions};
    let Some(dev) = gpu("fused_decode_matches_the_unfused_path_and_the_cpu") else { return };
    let (cfg, src) = tiny();
    let bounds = [
        (GpuScheme::Fp32, 1e-4f32, 2e-3f32),
        (GpuScheme::Fp16, 0.02, 0.05),
        (GpuScheme::Bf16, 0.15, 0.3),
        (GpuScheme::W8A16, 0.03, 0.05),
    ];
    for (scheme, vs_unfused, vs_cpu) in bounds {
        let opts = GpuOptions::new(scheme).half_head(false);
        let mut g = GpuModel::load_with(dev.clone(), &src, cfg.clone(), opts).unwrap();
        let cpu = Model::load(&src, cfg.clone(), LoadOptions::new(scheme.cpu_reference().unwrap()))
            .unwrap();
        for len in [1usize, 2, 3, 4] {
            let ids: Vec<u32> = (0..len as u32).map(|i| (i * 61 + 17) % 300).collect();
            assert!(g.set_fused_decode(true));
            // Generation passes: ≤ 4 tokens take the fused layers (scoring passes never do).
            let mut per_tile = Vec::new();
            for t in GemvTile::ALL {
                g.set_gemv_tile(t);
                per_tile.push((t, g.generation_logits_for(&ids).unwrap()));
            }
            // The warp-per-row layouts give the same bits; the block-split-K and tensor-core
            // ones (and Auto, which picks one of them) sum in other orders.
            let fused = &per_tile[0].1;
            let reference = &per_tile.iter().find(|(t, _)| *t == GemvTile::R1U8).unwrap().1;
            for (t, l) in &per_tile {
                if t.block_k() || *t == GemvTile::Auto {
                    let d = l
                        .iter()
                        .flatten()
                        .zip(reference.iter().flatten())
                        .map(|(x, y)| (x - y).abs())
                        .fold(0f32, f32::max);
                    eprintln!("{scheme} rows {len}: {t:?} vs warp-per-row tiles max |Δ| {d:.3e}");
                    assert!(d <= vs_unfused, "{scheme} rows {len}: {t:?} differs by {d}");
                } else {
                    assert!(l == reference, "{scheme} rows {len}: {t:?} differs");
                }
            }
            g.set_fused_decode(false);
            let plain = g.generation_logits_for(&ids).unwrap();
            let plain2 = ndarray::Array2::from_shape_vec(
                (plain.len(), plain[0].len()),
                plain.iter().flatten().copied().collect(),
            )
            .unwrap();
            let d = compare(fused, &plain2);
            let c = compare(fused, &cpu.logits_for(&ids).unwrap());
            eprintln!(
                "{scheme} rows {len}: fused vs unfused max |Δ| {:.3e}, vs cpu {:.3e}",
                d.max_abs, c.max_abs
            );
            assert!(d.max_abs <= vs_unfused, "{scheme} rows {len}: vs unfused {}", d.max_abs);
            assert!(c.max_abs <= vs_cpu, "{scheme} rows {len}: vs cpu {}", c.max_abs);
            assert!(c.top1_agree >= 0.75, "{scheme} rows {len}: top-1 {}", c.top1_agree);
        }
        // Generation: prompts of ≤ 4 tokens in all, so the prefill pass is fused as well.
        for prompts in [vec![vec![5u32, 77]], vec![vec![9u32], vec![123], vec![250, 31]]] {
            let refs: Vec<&[u32]> = prompts.iter().map(Vec::as_slice).collect();
            let n = vec![16usize; refs.len()];
            g.set_fused_decode(false);
            let (want, _, _) = g.generate_greedy(&refs, &n, &[], 300, |_, _| false).unwrap();
            g.set_fused_decode(true);
            for t in GemvTile::ALL {
                g.set_gemv_tile(t);
                let (got, _, _) = g.generate_greedy(&refs, &n, &[], 300, |_, _| false).unwrap();
                assert_eq!(
                    got,
                    want,
                    "{scheme} {t:?} batch {}: fused vs unfused tokens",
                    refs.len()
                );
            }
        }
    }
    // FP32 greedy generation of 3 prompts stopping at different steps (finished rows become
    // padding), graph and fused on, against the CPU one token at a time.
    let mut g =
        GpuModel::load_with(dev.clone(), &src, cfg.clone(), GpuOptions::new(GpuScheme::Fp32))
            .unwrap();
    let cpu = Model::load(&src, cfg, LoadOptions::new(Scheme::Fp32)).unwrap();
    let prompts: Vec<Vec<u32>> = vec![
        (0..9u32).map(|i| (i * 7 + 3) % 300).collect(),
        (0..3u32).map(|i| (i * 11 + 1) % 300).collect(),
        (0..14u32).map(|i| (i * 13 + 5) % 300).collect(),
    ];
    let refs: Vec<&[u32]> = prompts.iter().map(Vec::as_slice).collect();
    let max_new = [4usize, 15, 9];
    let (out, _, _) = g.generate_greedy(&refs, &max_new, &[], 300, |_, _| false).unwrap();
    for (si, p) in prompts.iter().enumerate() {
        assert_eq!(out[si].len(), max_new[si]);
        let mut ctx = p.clone();
        for (step, &got) in out[si].iter().enumerate() {
            let lg = cpu.logits_for(&ctx).unwrap();
            let last = lg.row(lg.nrows() - 1);
            let best = last
                .iter()
                .enumerate()
                .fold((0usize, f32::NEG_INFINITY), |b, (i, &v)| if v > b.1 { (i, v) } else { b })
                .0;
            assert_eq!(got, best as u32, "prompt {si} step {step}");
            ctx.push(best as u32);
        }
    }
    // A vocabulary of 20000: the norm-fused LM head has more work units than resident warps
    // (each warp loops over several), and the graph step's argmax spreads over 10 blocks per
    // row (argmax_rows, self-resetting across replays). Fused logits match the unfused path;
    // with an argmax limit below the vocabulary, 24 greedy tokens at batch 1 and 2 equal the
    // eager path's (row_stats).
    let (cfg, src) = tiny_with_vocab(20_000);
    let mut g = GpuModel::load_with(dev, &src, cfg, GpuOptions::new(GpuScheme::Fp16)).unwrap();
    let p1: Vec<u32> = (0..6u32).map(|i| (i * 577 + 31) % 20_000).collect();
    let p2: Vec<u32> = (0..10u32).map(|i| (i * 1013 + 7) % 20_000).collect();
    let fused = g.logits_for(&p1[..3]).unwrap();
    g.set_fused_decode(false);
    let plain = g.logits_for(&p1[..3]).unwrap();
    g.set_fused_decode(true);
    let d = fused
        .iter()
        .flatten()
        .zip(plain.iter().flatten())
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max);
    eprintln!("vocab 20000 fp16: fused vs unfused head max |Δ| {d:.3e}");
    assert!(d <= 0.02, "fused LM head differs by {d}");
    for group in [vec![p1.as_slice()], vec![p1.as_slice(), p2.as_slice()]] {
        let n = vec![24usize; group.len()];
        assert!(g.set_cuda_graph(true));
        let (a, _, _) = g.generate_greedy(&group, &n, &[], 17_321, |_, _| false).unwrap();
        g.set_cuda_graph(false);
        let (b, _, _) = g.generate_greedy(&group, &n, &[], 17_321, |_, _| false).unwrap();
        assert_eq!(a, b, "graph (multi-block argmax) vs eager");
        assert!(a.iter().flatten().all(|&t| t < 17_321));
    }
}

/// A word-level tokenizer over the tiny model's 300 ids (`t0` … `t299`), for `GpuEngine` /
/// `Engine` on the tiny model (the scoring tests pass token ids directly).
fn tiny_tokenizer(dir: &std::path::Path) -> eai_model::Tokenizer {
    let vocab: serde_json::Map<String, serde_json::Value> =
        (0..300u32).map(|i| (format!("t{i}"), serde_json::json!(i))).collect();
    let json = serde_json::json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
        "normalizer": null, "pre_tokenizer": {"type": "Whitespace"}, "post_processor": null,
        "decoder": null, "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "t0"}
    });
    let path = dir.join("tokenizer.json");
    std::fs::write(&path, json.to_string()).unwrap();
    eai_model::Tokenizer::from_file(&path, None, &[]).unwrap()
}

/// Multiple-choice-like token requests: contexts of 1–70 tokens, 1–4 continuations of 1–7
/// tokens each (one duplicated request, one context whose continuations differ in length).
fn mc_requests() -> Vec<eai_model::TokenPair> {
    let mut reqs = Vec::new();
    for (c, &ctx_len) in [1usize, 2, 3, 9, 17, 33, 70, 5].iter().enumerate() {
        let ctx: Vec<u32> =
            (0..ctx_len as u32).map(|i| (i * 31 + 7 * c as u32 + 1) % 300).collect();
        for k in 0..(c % 4 + 1) {
            let n = (k * 2 + c) % 7 + 1;
            let cont: Vec<u32> =
                (0..n as u32).map(|i| (i * 17 + 13 * k as u32 + c as u32 + 5) % 300).collect();
            reqs.push((ctx.clone(), cont));
        }
    }
    reqs.push(reqs[5].clone());
    reqs
}

/// Shared-context scoring (`EngineOptions::share_prefixes`, a context run once per pass with
/// its continuations attending to its KV slots) gives the unshared path's log-likelihoods for
/// every scheme — in one pass and with passes so small that groups split and fall back — and
/// the CPU engine's on FP32; it processes fewer tokens.
#[test]
fn shared_contexts_score_like_the_unshared_path() {
    let Some(dev) = gpu("shared_contexts_score_like_the_unshared_path") else { return };
    let (cfg, src) = tiny();
    let dir = tempfile::tempdir().unwrap();
    let tok = tiny_tokenizer(dir.path());
    let reqs = mc_requests();
    let cpu_model = Model::load(&src, cfg.clone(), LoadOptions::new(Scheme::Fp32)).unwrap();
    let mut cpu = eai_model::Engine::new(cpu_model, tok.clone(), "tiny");
    let want = cpu.loglikelihood_tokens(&reqs).unwrap();
    // (scheme, bound on |Δ log-likelihood| per continuation token, shared vs unshared). For
    // the per-tensor dynamic scheme the bound holds only when everything runs in one pass (the
    // same distinct rows, hence the same absmax); split passes hold other rows (reported only).
    let bounds = [
        (GpuScheme::Fp32, 1e-4),
        (GpuScheme::Fp16, 1e-2),
        (GpuScheme::Bf16, 5e-2),
        // W8A16: passes of more rows than the W16 GEMV takes round the gate/up matrix to f16
        // (`GpuOptions::half_gate_up`), smaller ones keep it f32: 1.42e-2 per token at 12
        // tokens per pass against one pass on an H200 (9.4e-3 with f32 everywhere).
        (GpuScheme::W8A16, 2e-2),
        (GpuScheme::W8A8, 2e-2),
        (GpuScheme::Dynamic, 1e-3),
    ];
    for (scheme, bound) in bounds {
        let model = GpuModel::load(dev.clone(), &src, cfg.clone(), scheme).unwrap();
        let mut g = eai_model::cuda::GpuEngine::new(model, tok.clone(), "tiny");
        let mut runs = Vec::new();
        for (share, batch_tokens) in [(false, 8192), (true, 8192), (true, 40), (true, 12)] {
            let mut o = eai_model::cuda::GpuEngine::default_options();
            o.share_prefixes = share;
            o.batch_tokens = batch_tokens;
            g = g.with_options(o);
            let c0 = g.counters();
            let r = g.loglikelihood_tokens(&reqs).unwrap();
            let c1 = g.counters();
            runs.push((share, batch_tokens, r, c1.tokens_processed - c0.tokens_processed));
        }
        let (_, _, base, base_tokens) = &runs[0];
        for (share, bt, r, tokens) in &runs[1..] {
            let mut worst = 0f64;
            for (i, ((a, ga), (b, gb))) in r.iter().zip(base).enumerate() {
                assert!(a.is_finite(), "{scheme}: request {i} not finite");
                let d = (a - b).abs() / reqs[i].1.len() as f64;
                worst = worst.max(d);
                if scheme != GpuScheme::Dynamic || *bt == 8192 {
                    assert!(
                        d <= bound,
                        "{scheme} share={share} batch={bt}: request {i}: {a} vs {b}"
                    );
                }
                if scheme == GpuScheme::Fp32 {
                    assert_eq!(ga, gb, "{scheme}: request {i} greedy flag");
                }
            }
            eprintln!(
                "{scheme} share={share} batch_tokens={bt}: max |Δ|/token vs unshared {worst:.2e}, \
                 tokens {tokens} vs {base_tokens}"
            );
            if *bt == 8192 {
                assert!(tokens < base_tokens, "{scheme}: sharing processed {tokens} tokens");
            }
        }
        if scheme == GpuScheme::Fp32 {
            for (share, bt, r, _) in &runs {
                for (i, ((a, ga), (b, gb))) in r.iter().zip(&want).enumerate() {
                    assert!(
                        (a - b).abs() < 1e-3,
                        "share={share} batch={bt} request {i}: {a} vs CPU {b}"
                    );
                    assert_eq!(ga, gb, "share={share} batch={bt} request {i}: greedy vs CPU");
                }
            }
        }
    }
    // A prefix must name an earlier sequence without a prefix.
    let mut m = GpuModel::load(dev, &src, cfg, GpuScheme::Fp32).unwrap();
    let (a, b) = ([1u32, 2, 3], [4u32, 5]);
    let bad =
        [eai_model::cuda::PackedSeq::continuing(&b, 1, 2), eai_model::cuda::PackedSeq::new(&a)];
    assert!(m.score_packed(&bad, &[vec![0], vec![]], &[vec![vec![1]], vec![]]).is_err());
}

/// The scoring attention kernel with more than 8 query heads per KV head (blocks split over
/// head groups) and packed shared prefixes matches the CPU reference.
#[test]
fn scoring_attention_with_wide_head_groups_matches_cpu() {
    let Some(dev) = gpu("scoring_attention_with_wide_head_groups_matches_cpu") else { return };
    let (cfg, src) = tiny_with(
        r#"{ "architectures": ["Qwen2ForCausalLM"], "hidden_size": 640, "intermediate_size": 256,
             "num_attention_heads": 20, "num_key_value_heads": 2, "num_hidden_layers": 2,
             "vocab_size": 300, "rope_theta": 10000.0, "rms_norm_eps": 1e-6,
             "max_position_embeddings": 512, "tie_word_embeddings": true }"#,
    );
    let ids: Vec<u32> = (0..90u32).map(|i| (i * 53 + 7) % 300).collect();
    let cpu = Model::load(&src, cfg.clone(), LoadOptions::new(Scheme::Fp32)).unwrap();
    let want = cpu.logits_for(&ids).unwrap();
    let mut g = GpuModel::load(dev, &src, cfg, GpuScheme::Fp32).unwrap();
    let d = compare(&g.logits_for(&ids).unwrap(), &want);
    eprintln!("20:2 heads: max |Δlogit| {:.3e}, top-1 {:.3}", d.max_abs, d.top1_agree);
    assert!(d.max_abs < 2e-3 && d.top1_agree == 1.0);
    // Head of 50 tokens shared by two continuations of 40 and 25 tokens, in one pass.
    let (head, t1, t2) = (&ids[..50], &ids[50..90], &ids[50..75]);
    let seqs = [
        eai_model::cuda::PackedSeq::new(head),
        eai_model::cuda::PackedSeq::continuing(t1, 0, 50),
        eai_model::cuda::PackedSeq::continuing(t2, 0, 50),
    ];
    let pos = vec![vec![49], (0..40).collect(), (0..25).collect()];
    let tg: Vec<Vec<Vec<u32>>> =
        pos.iter().map(|p| p.iter().map(|_| vec![3u32]).collect()).collect();
    let got = g.score_packed(&seqs, &pos, &tg).unwrap();
    for (si, off) in [(0usize, 0usize), (1, 50), (2, 50)] {
        for (j, &p) in pos[si].iter().enumerate() {
            let row = want.row(off + p);
            let mx = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let z = row.iter().map(|&v| f64::from(v - mx).exp()).sum::<f64>().ln() + f64::from(mx);
            let r = &got[si][j];
            assert!((r.log_z - z).abs() < 2e-3, "seq {si} pos {p}: {} vs {z}", r.log_z);
            assert!((r.picks[0].1 - row[3]).abs() < 2e-3, "seq {si} pos {p}");
        }
    }
}

/// The int8 LM head (`GpuOptions::int8_head`): its accuracy cost against the CPU reference
/// (f32 head) next to the default head's, on the tiny model, tied (the embedding table
/// quantized) and untied; the fused (≤ 4 rows) and M-tiled head paths agree; greedy generation
/// with it gives the same tokens fused and unfused, graph and eager.
#[test]
fn int8_head_accuracy_cost_and_paths_agree() {
    use eai_model::cuda::{GemvTile, GpuOptions};
    let Some(dev) = gpu("int8_head_accuracy_cost_and_paths_agree") else { return };
    let (cfg_t, src_t) = tiny();
    let (cfg_u, mut src_u) = tiny_with(
        r#"{ "architectures": ["Qwen2ForCausalLM"], "hidden_size": 128, "intermediate_size": 320,
             "num_attention_heads": 4, "num_key_value_heads": 2, "num_hidden_layers": 3,
             "vocab_size": 300, "rope_theta": 10000.0, "rms_norm_eps": 1e-6,
             "max_position_embeddings": 512, "tie_word_embeddings": false }"#,
    );
    let mut st = 0x9E37_79B9_7F4A_7C15u64;
    let head: Vec<f32> = (0..300 * 128)
        .map(|_| {
            st ^= st << 13;
            st ^= st >> 7;
            st ^= st << 17;
            ((st >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * 0.5
        })
        .collect();
    src_u.t.insert("lm_head.weight".into(), F32Tensor { shape: vec![300, 128], data: head });
    let ids: Vec<u32> = (0..77u32).map(|i| (i * 37 + 11) % 300).collect();
    // Mean next-token NLL over the sequence (ids[i + 1] from the logits at i).
    let nll = |rows: &[Vec<f32>]| -> f64 {
        let mut t = 0f64;
        for (i, r) in rows.iter().enumerate().take(rows.len() - 1) {
            let m = r.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
            let z: f64 = r.iter().map(|&v| (v as f64 - m).exp()).sum::<f64>().ln() + m;
            t += z - r[ids[i + 1] as usize] as f64;
        }
        t / (rows.len() - 1) as f64
    };
    for (name, cfg, src) in [("tied", &cfg_t, &src_t), ("untied", &cfg_u, &src_u)] {
        for scheme in [GpuScheme::W8A16, GpuScheme::W8A8] {
            let cpu =
                Model::load(src, cfg.clone(), LoadOptions::new(scheme.cpu_reference().unwrap()))
                    .unwrap();
            let want = cpu.logits_for(&ids).unwrap();
            let want_rows: Vec<Vec<f32>> = want.rows().into_iter().map(|r| r.to_vec()).collect();
            let opts = GpuOptions::new(scheme).half_head(false);
            let mut base =
                GpuModel::load_with(dev.clone(), src, cfg.clone(), opts.int8_head(false)).unwrap();
            let mut q8 =
                GpuModel::load_with(dev.clone(), src, cfg.clone(), opts.int8_head(true)).unwrap();
            let b = base.logits_for(&ids).unwrap();
            let g = q8.logits_for(&ids).unwrap();
            let db = compare(&b, &want);
            let dq = compare(&g, &want);
            let (nb, nq, nc) = (nll(&b), nll(&g), nll(&want_rows));
            eprintln!(
                "{name} {scheme}: default head vs CPU max |Δlogit| {:.3e} top-1 {:.3} NLL {nb:.5}; \
                 int8 head vs CPU max |Δlogit| {:.3e} top-1 {:.3} NLL {nq:.5}; CPU NLL {nc:.5}",
                db.max_abs, db.top1_agree, dq.max_abs, dq.top1_agree
            );
            // W8A8's own int8 activation codes flip against the CPU (bound 0.6 above); the
            // head's quantization adds ~0.1 at most on this model.
            let bound = if scheme == GpuScheme::W8A8 { 1.0 } else { 0.5 };
            assert!(dq.max_abs <= bound, "{name} {scheme}: int8 head max |Δ| {}", dq.max_abs);
            assert!(dq.top1_agree >= 0.9, "{name} {scheme}: int8 head top-1 {}", dq.top1_agree);
            assert!((nq - nc).abs() <= 0.05, "{name} {scheme}: NLL {nq} vs CPU {nc}");
            // Untied: the int8 head replaces the f32 one. Tied: the lookup keeps its table and
            // the int8 head comes on top (fewer bytes per decoded token, more resident bytes).
            let (wq, wb) = (q8.memory().unwrap().weights, base.memory().unwrap().weights);
            if cfg.tie_embeddings {
                assert!(wq > wb, "{name}: {wq} vs {wb}");
            } else {
                assert!(wq < wb, "{name}: {wq} vs {wb}");
            }
            if scheme != GpuScheme::W8A16 {
                continue;
            }
            // Decode-sized passes: the fused int8 head (final norm in its load) against the
            // M-tiled int8 head GEMV behind a separate RMSNorm.
            for len in [1usize, 2, 3, 4] {
                let ids: Vec<u32> = (0..len as u32).map(|i| (i * 61 + 17) % 300).collect();
                assert!(q8.set_fused_decode(true));
                let f = q8.generation_logits_for(&ids).unwrap();
                q8.set_fused_decode(false);
                let u = q8.generation_logits_for(&ids).unwrap();
                let u2 = ndarray::Array2::from_shape_vec(
                    (u.len(), u[0].len()),
                    u.iter().flatten().copied().collect(),
                )
                .unwrap();
                let d = compare(&f, &u2);
                eprintln!(
                    "{name} int8 head rows {len}: fused vs unfused max |Δ| {:.3e}",
                    d.max_abs
                );
                assert!(d.max_abs <= 0.03, "{name} rows {len}: fused int8 head {}", d.max_abs);
            }
            for prompts in [vec![vec![5u32, 77]], vec![vec![9u32], vec![123], vec![250, 31]]] {
                let refs: Vec<&[u32]> = prompts.iter().map(Vec::as_slice).collect();
                let n = vec![16usize; refs.len()];
                q8.set_fused_decode(false);
                q8.set_cuda_graph(false);
                let (want, _, _) = q8.generate_greedy(&refs, &n, &[], 300, |_, _| false).unwrap();
                q8.set_fused_decode(true);
                for t in [GemvTile::Auto, GemvTile::K4U2, GemvTile::T8U4] {
                    q8.set_gemv_tile(t);
                    for graph in [false, true] {
                        q8.set_cuda_graph(graph);
                        let (got, _, _) =
                            q8.generate_greedy(&refs, &n, &[], 300, |_, _| false).unwrap();
                        assert_eq!(got, want, "{name} {t:?} graph {graph}: int8-head tokens");
                    }
                }
            }
        }
    }
}

/// Issue 14: continuous batching (finished sequences' cache slots refilled with waiting prompts,
/// prefills mixed with decode rows in one pass) gives the ids of one-at-a-time greedy decoding
/// with fewer passes; and a packed prefill of more than 65,535 rows (the generation attention's
/// old `gridDim.y` limit: `CUDA_ERROR_INVALID_VALUE` for 256 five-shot GSM8K prompts) runs.
#[test]
fn continuous_batching_equals_one_at_a_time_and_long_prefills_launch() {
    let Some(dev) = gpu("continuous_batching_equals_one_at_a_time_and_long_prefills_launch") else {
        return;
    };
    let (cfg, src) = tiny();
    for scheme in [GpuScheme::Fp32, GpuScheme::W8A8] {
        let mut g = GpuModel::load(dev.clone(), &src, cfg.clone(), scheme).unwrap();
        let prompts: Vec<Vec<u32>> = (0..9u32)
            .map(|i| (0..(3 + (i * 11) % 29)).map(|j| (i * 37 + j * 13 + 1) % 300).collect())
            .collect();
        let refs: Vec<&[u32]> = prompts.iter().map(Vec::as_slice).collect();
        let max_new: Vec<usize> = (0..9).map(|i| [3, 17, 1, 9, 30][i % 5]).collect();
        let mut alone = Vec::new();
        let mut alone_passes = 0;
        for (p, &n) in refs.iter().zip(&max_new) {
            let (o, passes, _) = g.generate_greedy(&[*p], &[n], &[], 300, |_, _| false).unwrap();
            alone.push(o[0].clone());
            alone_passes += passes;
        }
        for (slots, budget) in [(3, 40), (4, 1), (9, usize::MAX)] {
            let (o, passes, processed) = g
                .generate_continuous(&refs, &max_new, &[], 300, (slots, budget), |_, _| false)
                .unwrap();
            assert_eq!(o, alone, "{scheme}: {slots} slots, row budget {budget}");
            assert!(passes < alone_passes, "{scheme}: {passes} passes vs {alone_passes}");
            let want: usize =
                refs.iter().zip(&max_new).map(|(p, &n)| p.len() + n - 1).sum::<usize>();
            assert_eq!(processed as usize, want, "{scheme}: tokens run");
        }
    }
    // 140 prompts of 500 tokens: one packed prefill of 70,000 rows.
    let mut g = GpuModel::load(dev, &src, cfg, GpuScheme::Fp16).unwrap();
    let prompts: Vec<Vec<u32>> =
        (0..140u32).map(|i| (0..500u32).map(|j| (i * 7 + j * 3) % 300).collect()).collect();
    let refs: Vec<&[u32]> = prompts.iter().map(Vec::as_slice).collect();
    let (o, passes, processed) =
        g.generate_greedy(&refs, &vec![2; refs.len()], &[], 300, |_, _| false).unwrap();
    assert!(o.iter().all(|t| t.len() == 2));
    assert_eq!((passes, processed), (2, 140 * 501));
    let (one, _, _) = g.generate_greedy(&refs[..1], &[2], &[], 300, |_, _| false).unwrap();
    assert_eq!(one[0], o[0]);
}
