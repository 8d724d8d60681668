//! Synthetic-weight tests: the paper's configs, GGUF vs safetensors, batching and caching
//! invariants, a naive f64 reference forward, malformed inputs.

use std::collections::BTreeMap;
use std::path::Path;

use eai_model::{
    Architecture, Error, GgmlType, GgufFile, GgufSource, GgufValue, GgufWriter, KvCache,
    LoadOptions, Model, ModelConfig, RopeScaling, SafetensorsSource, Scheme, Scratch, WeightSource,
    hf_tensor_names, permute_rows,
};
use safetensors::{Dtype, tensor::TensorView};

pub(crate) type Weights = BTreeMap<String, (Vec<usize>, Vec<f32>)>;

fn fixture(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/configs").join(name),
    )
    .unwrap()
}

/// Deterministic pseudo-random weights (xorshift), scaled like an initialised model.
pub(crate) fn weights(cfg: &ModelConfig, seed: u64) -> Weights {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut rnd = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        ((s >> 11) as f64 / (1u64 << 53) as f64) as f32 * 2.0 - 1.0
    };
    let (h, d, nh, nkv, f) = (cfg.hidden, cfg.head_dim, cfg.n_heads, cfg.n_kv_heads, cfg.ffn);
    let mut w = Weights::new();
    for name in hf_tensor_names(cfg) {
        let shape: Vec<usize> = if name.ends_with("embed_tokens.weight") || name == "lm_head.weight"
        {
            vec![cfg.vocab, h]
        } else if name.ends_with("norm.weight") {
            vec![h]
        } else if name.contains("q_proj") {
            if name.ends_with("bias") { vec![nh * d] } else { vec![nh * d, h] }
        } else if name.contains("k_proj") || name.contains("v_proj") {
            if name.ends_with("bias") { vec![nkv * d] } else { vec![nkv * d, h] }
        } else if name.contains("o_proj") {
            vec![h, nh * d]
        } else if name.contains("down_proj") {
            vec![h, f]
        } else {
            vec![f, h]
        };
        let n: usize = shape.iter().product();
        let fan_in = *shape.last().unwrap_or(&1) as f32;
        let data: Vec<f32> = if name.ends_with("norm.weight") {
            (0..n).map(|_| 1.0 + 0.2 * rnd()).collect()
        } else if name.ends_with("bias") {
            (0..n).map(|_| 0.5 * rnd()).collect()
        } else {
            (0..n).map(|_| rnd() * 1.7 / fan_in.sqrt()).collect()
        };
        w.insert(name, (shape, data));
    }
    w
}

pub(crate) fn write_safetensors(dir: &Path, w: &Weights, shards: usize) {
    std::fs::create_dir_all(dir).unwrap();
    let names: Vec<&String> = w.keys().collect();
    let per = names.len().div_ceil(shards);
    let mut index = serde_json::Map::new();
    for (si, chunk) in names.chunks(per).enumerate() {
        let file = if shards == 1 {
            "model.safetensors".to_string()
        } else {
            format!("model-{:05}-of-{shards:05}.safetensors", si + 1)
        };
        let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = chunk
            .iter()
            .map(|n| {
                let (shape, data) = &w[*n];
                // Alternate dtypes so every decoder is exercised.
                let b: Vec<u8> = if si % 2 == 0 {
                    data.iter().flat_map(|x| x.to_le_bytes()).collect()
                } else {
                    data.iter().flat_map(|x| half::bf16::from_f32(*x).to_le_bytes()).collect()
                };
                ((*n).clone(), shape.clone(), b)
            })
            .collect();
        let dt = if si % 2 == 0 { Dtype::F32 } else { Dtype::BF16 };
        let views: Vec<(String, TensorView<'_>)> = bytes
            .iter()
            .map(|(n, s, b)| (n.clone(), TensorView::new(dt, s.clone(), b).unwrap()))
            .collect();
        safetensors::serialize_to_file(views, None, &dir.join(&file)).unwrap();
        for n in chunk {
            index.insert((*n).clone(), serde_json::Value::String(file.clone()));
        }
    }
    if shards > 1 {
        let idx = serde_json::json!({"metadata": {}, "weight_map": index});
        std::fs::write(dir.join("model.safetensors.index.json"), idx.to_string()).unwrap();
    }
}

/// Rounds weights as bf16 where `write_safetensors` stored them as bf16, so both sources agree.
fn as_stored(w: &Weights, shards: usize) -> Weights {
    let names: Vec<&String> = w.keys().collect();
    let per = names.len().div_ceil(shards);
    let mut out = Weights::new();
    for (si, chunk) in names.chunks(per).enumerate() {
        for n in chunk {
            let (s, d) = &w[*n];
            let d = if si % 2 == 0 {
                d.clone()
            } else {
                d.iter().map(|x| half::bf16::from_f32(*x).to_f32()).collect()
            };
            out.insert((*n).clone(), (s.clone(), d));
        }
    }
    out
}

fn write_gguf(path: &Path, cfg: &ModelConfig, w: &Weights, ty: GgmlType) {
    let mut g = GgufWriter::new();
    let a = "llama";
    g.metadata("general.architecture", GgufValue::String(a.into()));
    g.metadata(format!("{a}.block_count"), GgufValue::U32(cfg.n_layers as u32));
    g.metadata(format!("{a}.embedding_length"), GgufValue::U32(cfg.hidden as u32));
    g.metadata(format!("{a}.feed_forward_length"), GgufValue::U32(cfg.ffn as u32));
    g.metadata(format!("{a}.attention.head_count"), GgufValue::U32(cfg.n_heads as u32));
    g.metadata(format!("{a}.attention.head_count_kv"), GgufValue::U32(cfg.n_kv_heads as u32));
    g.metadata(format!("{a}.attention.layer_norm_rms_epsilon"), GgufValue::F32(cfg.rms_eps));
    g.metadata(format!("{a}.rope.freq_base"), GgufValue::F32(cfg.rope_theta));
    g.metadata(format!("{a}.context_length"), GgufValue::U64(cfg.max_position as u64));
    g.metadata(format!("{a}.vocab_size"), GgufValue::U32(cfg.vocab as u32));
    for (name, (shape, data)) in w {
        let gname = eai_model::hf_to_gguf_name(name).unwrap();
        let data = if gname.contains("attn_q.") || gname.contains("attn_k.") {
            let heads = if gname.contains("attn_q.") { cfg.n_heads } else { cfg.n_kv_heads };
            permute_rows(data, heads, if shape.len() == 2 { shape[1] } else { 1 })
        } else {
            data.clone()
        };
        let dims: Vec<u64> = shape.iter().rev().map(|&x| x as u64).collect();
        let t = if shape.len() == 2 { ty } else { GgmlType::F32 };
        g.tensor(gname, &dims, t, eai_model::quantize(t, &data).unwrap()).unwrap();
    }
    g.write(path).unwrap();
}

struct MapSource(Weights);
impl WeightSource for MapSource {
    fn source_name(&self) -> String {
        "map".into()
    }
    fn tensor(&self, n: &str) -> eai_model::Result<Option<eai_model::F32Tensor>> {
        Ok(self.0.get(n).map(|(s, d)| eai_model::F32Tensor { shape: s.clone(), data: d.clone() }))
    }
}

pub(crate) fn small(json: &str, edit: impl FnOnce(&mut serde_json::Value)) -> ModelConfig {
    let mut v: serde_json::Value = serde_json::from_str(json).unwrap();
    edit(&mut v);
    ModelConfig::from_hf_json(&v.to_string(), "test").unwrap()
}

pub(crate) fn tiny_llama() -> ModelConfig {
    small(
        r#"{"architectures":["LlamaForCausalLM"],"hidden_size":64,"intermediate_size":96,"num_attention_heads":4,
            "num_key_value_heads":2,"num_hidden_layers":2,"vocab_size":300,"rope_theta":10000.0,"rms_norm_eps":1e-5,
            "tie_word_embeddings":false,"max_position_embeddings":256}"#,
        |_| {},
    )
}

fn max_abs(a: &ndarray::Array2<f32>, b: &ndarray::Array2<f32>) -> f32 {
    assert_eq!(a.dim(), b.dim());
    a.iter().zip(b.iter()).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// Independent, deliberately naive f64 forward pass (HF Llama/Qwen2 semantics).
fn naive_logits(cfg: &ModelConfig, w: &Weights, toks: &[u32]) -> Vec<Vec<f64>> {
    let g = |n: &str| &w[n].1;
    let (h, d, nh, nkv, f) = (cfg.hidden, cfg.head_dim, cfg.n_heads, cfg.n_kv_heads, cfg.ffn);
    let mv = |m: &[f32], x: &[f64], rows: usize, cols: usize| -> Vec<f64> {
        (0..rows).map(|r| (0..cols).map(|c| f64::from(m[r * cols + c]) * x[c]).sum()).collect()
    };
    let norm = |x: &[f64], wt: &[f32]| -> Vec<f64> {
        let ms = x.iter().map(|v| v * v).sum::<f64>() / x.len() as f64;
        let inv = 1.0 / (ms + f64::from(cfg.rms_eps)).sqrt();
        x.iter().zip(wt).map(|(v, ww)| v * inv * f64::from(*ww)).collect()
    };
    let inv_freq: Vec<f64> = cfg.rope_inv_freq().iter().map(|&x| f64::from(x)).collect();
    let rope = |x: &mut [f64], pos: usize| {
        for head in x.chunks_mut(d) {
            for i in 0..d / 2 {
                let a = pos as f64 * inv_freq[i];
                let (x0, x1) = (head[i], head[i + d / 2]);
                head[i] = x0 * a.cos() - x1 * a.sin();
                head[i + d / 2] = x0 * a.sin() + x1 * a.cos();
            }
        }
    };
    let mut xs: Vec<Vec<f64>> = toks
        .iter()
        .map(|&t| {
            g("model.embed_tokens.weight")[t as usize * h..(t as usize + 1) * h]
                .iter()
                .map(|&v| f64::from(v))
                .collect()
        })
        .collect();
    for l in 0..cfg.n_layers {
        let p = format!("model.layers.{l}");
        let mut qs = Vec::new();
        let mut ks = Vec::new();
        let mut vs = Vec::new();
        for (pos, x) in xs.iter().enumerate() {
            let n = norm(x, g(&format!("{p}.input_layernorm.weight")));
            let mut q = mv(g(&format!("{p}.self_attn.q_proj.weight")), &n, nh * d, h);
            let mut k = mv(g(&format!("{p}.self_attn.k_proj.weight")), &n, nkv * d, h);
            let mut v = mv(g(&format!("{p}.self_attn.v_proj.weight")), &n, nkv * d, h);
            if cfg.qkv_bias {
                for (vec, m) in [(&mut q, "q"), (&mut k, "k"), (&mut v, "v")] {
                    for (a, b) in vec.iter_mut().zip(g(&format!("{p}.self_attn.{m}_proj.bias"))) {
                        *a += f64::from(*b);
                    }
                }
            }
            rope(&mut q, pos);
            rope(&mut k, pos);
            qs.push(q);
            ks.push(k);
            vs.push(v);
        }
        for (i, x) in xs.iter_mut().enumerate() {
            let mut att = vec![0f64; nh * d];
            for hh in 0..nh {
                let kv = hh / (nh / nkv);
                let sc: Vec<f64> = (0..=i)
                    .map(|j| {
                        (0..d).map(|c| qs[i][hh * d + c] * ks[j][kv * d + c]).sum::<f64>()
                            / (d as f64).sqrt()
                    })
                    .collect();
                let m = sc.iter().copied().fold(f64::MIN, f64::max);
                let z: f64 = sc.iter().map(|s| (s - m).exp()).sum();
                for j in 0..=i {
                    let pj = (sc[j] - m).exp() / z;
                    for c in 0..d {
                        att[hh * d + c] += pj * vs[j][kv * d + c];
                    }
                }
            }
            let o = mv(g(&format!("{p}.self_attn.o_proj.weight")), &att, h, nh * d);
            for (a, b) in x.iter_mut().zip(o) {
                *a += b;
            }
            let n = norm(x, g(&format!("{p}.post_attention_layernorm.weight")));
            let ga = mv(g(&format!("{p}.mlp.gate_proj.weight")), &n, f, h);
            let up = mv(g(&format!("{p}.mlp.up_proj.weight")), &n, f, h);
            let act: Vec<f64> =
                ga.iter().zip(&up).map(|(a, b)| a / (1.0 + (-a).exp()) * b).collect();
            let dn = mv(g(&format!("{p}.mlp.down_proj.weight")), &act, h, f);
            for (a, b) in x.iter_mut().zip(dn) {
                *a += b;
            }
        }
    }
    let head = if cfg.tie_embeddings { "model.embed_tokens.weight" } else { "lm_head.weight" };
    xs.iter().map(|x| mv(g(head), &norm(x, g("model.norm.weight")), cfg.vocab, h)).collect()
}

fn check_against_naive(cfg: &ModelConfig, seed: u64) {
    let w = weights(cfg, seed);
    let model =
        Model::load(&MapSource(w.clone()), cfg.clone(), LoadOptions::new(Scheme::Fp32)).unwrap();
    let toks: Vec<u32> = (0..11).map(|i| (i * 37 + 5) as u32 % cfg.vocab as u32).collect();
    let ours = model.logits_for(&toks).unwrap();
    let reference = naive_logits(cfg, &w, &toks);
    let mut worst = 0f64;
    for (i, row) in reference.iter().enumerate() {
        for (j, v) in row.iter().enumerate() {
            worst = worst.max((f64::from(ours[[i, j]]) - v).abs());
        }
    }
    assert!(worst < 2e-4, "{:?}: max |Δ| vs naive f64 reference = {worst}", cfg.arch);
}

fn shrink(
    v: &mut serde_json::Value,
    layers: u64,
    hidden: u64,
    heads: u64,
    kv: u64,
    ffn: u64,
    vocab: u64,
) {
    v["num_hidden_layers"] = layers.into();
    v["hidden_size"] = hidden.into();
    v["num_attention_heads"] = heads.into();
    v["num_key_value_heads"] = kv.into();
    v["intermediate_size"] = ffn.into();
    v["vocab_size"] = vocab.into();
    if v.get("head_dim").is_some() {
        v["head_dim"] = (hidden / heads).into();
    }
}

#[test]
fn paper_configs_parse_exactly() {
    let q = ModelConfig::from_hf_json(&fixture("Qwen2.5-7B-Instruct.json"), "qwen").unwrap();
    assert_eq!(
        (q.arch, q.n_layers, q.hidden, q.n_heads, q.n_kv_heads, q.head_dim, q.ffn, q.vocab),
        (Architecture::Qwen2, 28, 3584, 28, 4, 128, 18944, 152064)
    );
    assert!(q.qkv_bias && !q.tie_embeddings && q.sliding_window.is_none());
    assert_eq!((q.rope_theta, q.rms_eps, q.eos_token_ids.clone()), (1e6, 1e-6, vec![151645]));
    assert!((q.n_params() as f64 - 7.615e9).abs() < 0.01e9, "{}", q.n_params());
    let r1 = ModelConfig::from_hf_json(&fixture("DeepSeek-R1-Distill-Qwen-7B.json"), "r1").unwrap();
    assert_eq!(
        (r1.arch, r1.rope_theta, r1.max_position, r1.sliding_window),
        (Architecture::Qwen2, 10000.0, 131072, None)
    );
    let m =
        ModelConfig::from_hf_json(&fixture("Mistral-7B-Instruct-v0.2.json"), "mistral").unwrap();
    assert_eq!(
        (m.arch, m.n_kv_heads, m.rope_theta, m.sliding_window, m.qkv_bias),
        (Architecture::Mistral, 8, 1e6, None, false)
    );
    assert!((m.n_params() as f64 - 7.24e9).abs() < 0.01e9, "{}", m.n_params());
    let nc = ModelConfig::from_hf_json(&fixture("neural-chat-7b-v3-3.json"), "nc").unwrap();
    assert_eq!(
        (nc.arch, nc.rope_theta, nc.sliding_window),
        (Architecture::Mistral, 10000.0, Some(4096))
    );
    let yi = ModelConfig::from_hf_json(&fixture("Yi-6B.json"), "yi").unwrap();
    assert_eq!(
        (yi.arch, yi.n_kv_heads, yi.vocab, yi.rope_theta, yi.ffn),
        (Architecture::Llama, 4, 64000, 5e6, 11008)
    );
    assert!((yi.n_params() as f64 - 6.06e9).abs() < 0.01e9, "{}", yi.n_params());
    let l3 = ModelConfig::from_hf_json(&fixture("Llama-3.2-1B.json"), "l3").unwrap();
    assert!(l3.tie_embeddings);
    assert!(matches!(l3.rope_scaling, RopeScaling::Llama3 { factor, .. } if factor == 32.0));
    let b = ModelConfig::from_hf_json(&fixture("bloomz-7b1.json"), "bloom").unwrap();
    assert_eq!((b.arch, b.n_layers, b.hidden, b.n_heads), (Architecture::Bloom, 30, 4096, 32));
}

#[test]
fn llama3_rope_scaling_matches_the_hf_formula() {
    let l3 = ModelConfig::from_hf_json(&fixture("Llama-3.2-1B.json"), "l3").unwrap();
    let f = l3.rope_inv_freq();
    let base = |i: usize| 500_000f64.powf(-(2.0 * i as f64) / 64.0);
    // i = 0: wavelength 2π < 8192/4 → unchanged.
    assert!((f64::from(f[0]) - 1.0).abs() < 1e-7);
    // i = 31: wavelength ≈ 2π·500000^(62/64) ≫ 8192 → divided by 32.
    assert!((f64::from(f[31]) - base(31) / 32.0).abs() < 1e-12);
    // A medium frequency is smoothed between the two.
    let i = (0..32).find(|&i| {
        let wl = 2.0 * std::f64::consts::PI / base(i);
        (2048.0..=8192.0).contains(&wl)
    });
    if let Some(i) = i {
        let wl = 2.0 * std::f64::consts::PI / base(i);
        let s = (8192.0 / wl - 1.0) / 3.0;
        let want = (1.0 - s) * base(i) / 32.0 + s * base(i);
        assert!(((f64::from(f[i]) - want) / want).abs() < 1e-5);
    }
}

#[test]
fn paper_architectures_run_with_cut_down_synthetic_weights() {
    // Each exact config, with layers and widths cut down but every structural flag kept (GQA ratio,
    // q/k/v bias, rope θ and scaling, tied embeddings), against the naive f64 reference.
    let cases = [
        ("Qwen2.5-7B-Instruct.json", (2, 56, 7, 1, 64, 97)),
        ("DeepSeek-R1-Distill-Qwen-7B.json", (1, 56, 7, 1, 48, 80)),
        ("Mistral-7B-Instruct-v0.2.json", (2, 64, 8, 2, 96, 120)),
        ("neural-chat-7b-v3-3.json", (1, 64, 8, 2, 80, 64)),
        ("Yi-6B.json", (2, 64, 8, 1, 96, 100)),
        ("Llama-3.2-1B.json", (2, 64, 8, 2, 128, 90)),
    ];
    for (file, (l, h, nh, kv, f, v)) in cases {
        let cfg = small(&fixture(file), |j| shrink(j, l, h, nh, kv, f, v));
        check_against_naive(&cfg, l * 31 + h);
    }
}

#[test]
fn gguf_and_safetensors_give_the_same_logits() {
    let cfg = tiny_llama();
    let w = weights(&cfg, 7);
    let dir = tempfile::tempdir().unwrap();
    // Sharded safetensors (F32 and BF16 shards) with an index.
    write_safetensors(&dir.path().join("hf"), &w, 3);
    let stored = as_stored(&w, 3);
    write_gguf(&dir.path().join("m.gguf"), &cfg, &stored, GgmlType::F32);
    let st = SafetensorsSource::open(dir.path().join("hf")).unwrap();
    let f = GgufFile::open(dir.path().join("m.gguf")).unwrap();
    let gcfg = ModelConfig::from_gguf(&f).unwrap();
    assert_eq!((gcfg.n_heads, gcfg.n_kv_heads, gcfg.tie_embeddings), (4, 2, false));
    let a = Model::load(&st, cfg.clone(), LoadOptions::default()).unwrap();
    let b = Model::load(&GgufSource::new(&f, &gcfg), gcfg, LoadOptions::default()).unwrap();
    let toks = [1u32, 17, 250, 3, 99, 42, 7, 7, 7, 280];
    let la = a.logits_for(&toks).unwrap();
    let lb = b.logits_for(&toks).unwrap();
    assert!(max_abs(&la, &lb) < 1e-5, "{}", max_abs(&la, &lb));
    // And a Q8_0 GGUF (block type through the same un-permute) stays close.
    write_gguf(&dir.path().join("q8.gguf"), &cfg, &stored, GgmlType::Q8_0);
    let f8 = GgufFile::open(dir.path().join("q8.gguf")).unwrap();
    let c8 = ModelConfig::from_gguf(&f8).unwrap();
    let m8 = Model::load(&GgufSource::new(&f8, &c8), c8, LoadOptions::default()).unwrap();
    let l8 = m8.logits_for(&toks).unwrap();
    assert!(max_abs(&la, &l8) < 0.1, "{}", max_abs(&la, &l8));
}

#[test]
fn batched_prefill_and_kv_cache_match_single_sequence_runs() {
    let cfg = tiny_llama();
    let model =
        Model::load(&MapSource(weights(&cfg, 3)), cfg.clone(), LoadOptions::default()).unwrap();
    let seqs: Vec<Vec<u32>> = vec![
        (0..13).map(|i| i * 7 % 300).collect(),
        vec![5, 6],
        (0..30).map(|i| (i * i) % 300).collect(),
    ];
    let singles: Vec<_> = seqs.iter().map(|s| model.logits_for(s).unwrap()).collect();
    let mut caches: Vec<KvCache> = seqs.iter().map(|_| KvCache::new(&cfg)).collect();
    let mut refs: Vec<&mut KvCache> = caches.iter_mut().collect();
    let mut scratch = Scratch::default();
    let slices: Vec<&[u32]> = seqs.iter().map(Vec::as_slice).collect();
    let packed = model.forward(&slices, &mut refs, &mut scratch).unwrap().to_owned();
    let logits = model.logits(packed.view()).unwrap();
    let mut r = 0;
    for (s, single) in seqs.iter().zip(&singles) {
        let part = logits.slice(ndarray::s![r..r + s.len(), ..]).to_owned();
        assert!(max_abs(&part, single) < 1e-4);
        r += s.len();
    }
    // Incremental decoding through the cache reproduces the full-sequence logits.
    let s = &seqs[2];
    let mut cache = KvCache::new(&cfg);
    model.forward(&[&s[..10]], &mut [&mut cache], &mut scratch).unwrap();
    for i in 10..s.len() {
        let h = model.forward(&[&s[i..i + 1]], &mut [&mut cache], &mut scratch).unwrap().to_owned();
        let l = model.logits(h.view()).unwrap();
        let want = singles[2].slice(ndarray::s![i..i + 1, ..]).to_owned();
        assert!(max_abs(&l, &want) < 1e-4, "position {i}");
    }
    assert_eq!(cache.len(), s.len());
}

#[test]
fn schemes_report_per_layer_and_stay_close_to_fp32() {
    let cfg = tiny_llama();
    let w = weights(&cfg, 11);
    let toks = [3u32, 1, 4, 1, 5, 9, 2, 6];
    let fp32 = Model::load(&MapSource(w.clone()), cfg.clone(), LoadOptions::default())
        .unwrap()
        .logits_for(&toks)
        .unwrap();
    for (s, tol) in
        [(Scheme::Fp16, 0.02), (Scheme::Bf16, 0.15), (Scheme::W8A16, 0.1), (Scheme::W8A8, 0.2)]
    {
        let m = Model::load(&MapSource(w.clone()), cfg.clone(), LoadOptions::new(s)).unwrap();
        let schemes = m.layer_schemes();
        assert_eq!(schemes.len(), 2 * 7 + 1);
        assert!(schemes[..14].iter().all(|(_, x)| *x == s));
        let head = schemes[14].1;
        assert_eq!(head, if matches!(s, Scheme::W8A8 | Scheme::W8A16) { Scheme::Fp32 } else { s });
        let l = m.logits_for(&toks).unwrap();
        let d = max_abs(&fp32, &l);
        assert!(d > 0.0 && d < tol, "{s:?}: max |Δ| {d}");
    }
}

#[test]
fn malformed_weights_and_mismatched_configs_are_typed_errors() {
    let cfg = tiny_llama();
    let w = weights(&cfg, 5);
    let dir = tempfile::tempdir().unwrap();
    let hf = dir.path().join("hf");
    write_safetensors(&hf, &w, 1);
    // Config says a wider model than the weights.
    let mut wide = cfg.clone();
    wide.ffn = 128;
    let st = SafetensorsSource::open(&hf).unwrap();
    assert!(matches!(
        Model::load(&st, wide, LoadOptions::default()),
        Err(Error::ShapeMismatch { .. })
    ));
    // A missing tensor.
    let mut partial = w.clone();
    partial.remove("model.layers.1.mlp.up_proj.weight");
    assert!(matches!(
        Model::load(&MapSource(partial), cfg.clone(), LoadOptions::default()),
        Err(Error::MissingTensor { .. })
    ));
    // Truncated safetensors.
    let bytes = std::fs::read(hf.join("model.safetensors")).unwrap();
    let bad = dir.path().join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::write(bad.join("model.safetensors"), &bytes[..bytes.len() - 100]).unwrap();
    assert!(matches!(SafetensorsSource::open(&bad), Err(Error::Safetensors { .. })));
    // Header length past the end.
    let mut evil = bytes.clone();
    evil[..8].copy_from_slice(&(u64::MAX / 2).to_le_bytes());
    std::fs::write(bad.join("model.safetensors"), &evil).unwrap();
    assert!(matches!(SafetensorsSource::open(&bad), Err(Error::Safetensors { .. })));
    // Shard names may not leave the folder.
    std::fs::write(
        bad.join("model.safetensors.index.json"),
        r#"{"weight_map":{"a":"../x.safetensors"}}"#,
    )
    .unwrap();
    assert!(matches!(SafetensorsSource::open(&bad), Err(Error::Config { .. })));
    // Non-float safetensors dtypes are rejected per tensor.
    let ints = dir.path().join("ints");
    std::fs::create_dir_all(&ints).unwrap();
    let data = vec![0u8; 8];
    let view = TensorView::new(Dtype::I32, vec![2], &data).unwrap();
    safetensors::serialize_to_file(
        vec![("model.norm.weight".to_string(), view)],
        None,
        &ints.join("model.safetensors"),
    )
    .unwrap();
    let src = SafetensorsSource::open(&ints).unwrap();
    assert!(matches!(src.tensor("model.norm.weight"), Err(Error::UnsupportedTensorType { .. })));
    // Config errors.
    assert!(matches!(
        ModelConfig::from_hf_json(r#"{"architectures":["GPT2LMHeadModel"]}"#, "c"),
        Err(Error::UnsupportedArchitecture { .. })
    ));
    assert!(matches!(
        ModelConfig::from_hf_json(
            r#"{"architectures":["LlamaForCausalLM"],"hidden_size":64}"#,
            "c"
        ),
        Err(Error::Config { .. })
    ));
    assert!(matches!(
        ModelConfig::from_hf_json(
            r#"{"architectures":["LlamaForCausalLM"],"hidden_size":64,"intermediate_size":8,"num_attention_heads":3,"num_hidden_layers":1,"vocab_size":9}"#,
            "c"
        ),
        Err(Error::Config { .. })
    ));
    // Unknown GGUF architecture.
    let mut g = GgufWriter::new();
    g.metadata("general.architecture", GgufValue::String("gpt2".into()));
    let f = GgufFile::from_bytes("x.gguf", g.to_bytes()).unwrap();
    assert!(matches!(ModelConfig::from_gguf(&f), Err(Error::UnsupportedArchitecture { .. })));
    // Out-of-vocabulary token ids.
    let m = Model::load(&MapSource(w), cfg, LoadOptions::default()).unwrap();
    assert!(matches!(m.logits_for(&[300]), Err(Error::InvalidInput { .. })));
}

/// A word-level tokenizer over the tiny model's 300 ids (`t0` … `t299`), no BOS or EOS.
fn word_tokenizer(dir: &Path) -> eai_model::Tokenizer {
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

pub(crate) fn tiny_engine(scheme: Scheme, dir: &Path) -> eai_model::Engine {
    let cfg = tiny_llama();
    let model = Model::load(&MapSource(weights(&cfg, 3)), cfg, LoadOptions::new(scheme)).unwrap();
    eai_model::Engine::new(model, word_tokenizer(dir), "tiny")
}

pub(crate) fn words(ids: impl IntoIterator<Item = u32>) -> String {
    ids.into_iter().map(|i| format!("t{i}")).collect::<Vec<_>>().join(" ")
}

/// Generation with several sequences at once (finished ones leaving, queued ones taking their
/// slots in the same pass) gives exactly what one-at-a-time greedy decoding gives: the same
/// token ids and the same text cut at each request's own stop strings.
#[test]
fn batched_generation_equals_one_at_a_time() {
    use eai_core::{GenerateRequest, LanguageModel};
    let dir = tempfile::tempdir().unwrap();
    let mut solo = tiny_engine(Scheme::Fp32, dir.path());
    let lens = [1usize, 9, 3, 40, 17, 2, 25, 6, 11];
    let mut reqs: Vec<GenerateRequest> = lens
        .iter()
        .enumerate()
        .map(|(k, &n)| {
            let ids = (0..n as u32).map(|i| (i * 37 + 11 * k as u32 + 3) % 300);
            GenerateRequest::new(words(ids), vec![]).max_gen_toks(4 + 13 * (k % 8))
        })
        .collect();
    // Stop strings taken from the unstopped outputs, so that they do fire mid-generation
    // (one request gets two, one a string that never appears).
    let free: Vec<_> =
        reqs.iter().map(|r| solo.generate_until(std::slice::from_ref(r)).unwrap()).collect();
    for (k, (r, g)) in reqs.iter_mut().zip(&free).enumerate() {
        let toks: Vec<&str> = g[0].text.split(' ').collect();
        if k % 3 == 1 && toks.len() > 4 {
            r.until = vec![format!(" {}", toks[toks.len() / 2])];
        } else if k % 3 == 2 && toks.len() > 4 {
            r.until = vec!["never".into(), format!("{} {}", toks[2], toks[3])];
        } else if k == 0 {
            // Never found, but checked after each of 100 tokens (the tail check's long path).
            r.until = vec!["t999".into()];
            r.max_gen_toks = 100;
        }
    }
    let want: Vec<_> = reqs
        .iter()
        .map(|r| solo.generate_until(std::slice::from_ref(r)).unwrap().remove(0))
        .collect();
    assert!(
        want.iter().zip(&free).filter(|(w, f)| w.text.len() < f[0].text.len()).count() >= 4,
        "stop strings should cut several generations"
    );
    assert!(want.iter().any(|w| w.tokens.unwrap() > 70), "long enough for the tail stop check");
    for gen_batch in [1usize, 2, 3, 16] {
        let mut o = solo.options().clone();
        o.gen_batch = gen_batch;
        let mut batched = tiny_engine(Scheme::Fp32, dir.path()).with_options(o);
        let passes = batched.counters().forward_passes;
        let got = batched.generate_until(&reqs).unwrap();
        assert_eq!(got, want, "gen_batch {gen_batch}");
        let passes = batched.counters().forward_passes - passes;
        let tokens: u64 = want.iter().map(|g| u64::from(g.tokens.unwrap())).sum();
        if gen_batch > 1 {
            assert!(passes < tokens, "gen_batch {gen_batch}: {passes} passes for {tokens} tokens");
        }
    }
}

/// The token cache: a second pass encodes nothing; engines given the same cache share it; a
/// different BOS policy is a different key; the ids are `encode_pair`'s.
#[test]
fn token_cache_is_hit_on_the_second_pass_and_shared() {
    use std::sync::Arc;

    use eai_core::{LanguageModel, LoglikelihoodRequest};
    use eai_model::{BosPolicy, TokenCache};
    let dir = tempfile::tempdir().unwrap();
    let cache = Arc::new(TokenCache::new());
    let mut a = tiny_engine(Scheme::Fp32, dir.path()).token_cache(cache.clone());
    let reqs: Vec<LoglikelihoodRequest> = [
        ("t1 t2 t3", " t4"),
        ("t1 t2 t3", " t5 t6"),
        ("t1 t2 t3 ", "t7"),
        ("t9", " t10"),
        ("t9", " t10"),
    ]
    .iter()
    .map(|(c, x)| LoglikelihoodRequest::new(*c, *x))
    .collect();
    let first = a.loglikelihood(&reqs).unwrap();
    let s = cache.stats();
    assert_eq!((s.hits, s.misses), (0, 5));
    assert_eq!((s.contexts, s.pairs), (3, 4), "{s:?}");
    let second = a.loglikelihood(&reqs).unwrap();
    assert_eq!(first, second);
    let s = cache.stats();
    assert_eq!((s.hits, s.misses), (5, 5));
    // The ids are lm-eval's `_encode_pair`.
    let pairs: Vec<_> =
        reqs.iter().map(|r| a.encode_pair(&r.context, &r.continuation).unwrap()).collect();
    let direct = a.loglikelihood_tokens(&pairs).unwrap();
    assert_eq!(direct, first.iter().map(|l| (l.logprob, l.is_greedy)).collect::<Vec<_>>());
    // Another scheme's engine with the same cache encodes nothing.
    let mut b = tiny_engine(Scheme::Bf16, dir.path()).token_cache(cache.clone());
    assert!(Arc::ptr_eq(b.tokens(), &cache));
    b.loglikelihood(&reqs).unwrap();
    assert_eq!((cache.stats().hits, cache.stats().misses), (10, 5));
    // A different BOS policy (same tokenizer) is a different key.
    b.set_bos_policy(BosPolicy::Always);
    b.loglikelihood(&reqs).unwrap();
    assert_eq!(cache.stats().misses, 10);
    // Generation prompts are cached too; clearing forgets everything.
    let g = [eai_core::GenerateRequest::new("t3 t4", vec![]).max_gen_toks(2)];
    b.generate_until(&g).unwrap();
    b.generate_until(&g).unwrap();
    assert_eq!(cache.stats().prompts, 1);
    assert_eq!(cache.stats().misses, 11);
    cache.clear();
    assert_eq!((cache.stats().contexts, cache.stats().prompts), (0, 0));
    // Invalid requests are still typed errors naming the request.
    let bad = [LoglikelihoodRequest::new("t1", " t2"), LoglikelihoodRequest::new("t1", "")];
    match a.loglikelihood(&bad) {
        Err(eai_core::ModelError::InvalidRequest { index, .. }) => assert_eq!(index, 1),
        other => panic!("{other:?}"),
    }
}

/// The engines' capability answers: a batch hint, and engine time that grows with work and
/// splits into tokenize + compute.
#[test]
fn engine_reports_batch_hint_and_engine_time() {
    use eai_core::{LanguageModel, LoglikelihoodRequest};
    let dir = tempfile::tempdir().unwrap();
    let mut e = tiny_engine(Scheme::Fp32, dir.path());
    let hint = e.batch_hint().unwrap();
    assert_eq!(hint.loglikelihood_requests, Some(e.options().batch_tokens / 2));
    assert_eq!(hint.generate_requests, Some(4 * e.options().gen_batch));
    let t0 = e.engine_time().unwrap();
    assert_eq!(t0.total().0, 0.0);
    e.loglikelihood(&[LoglikelihoodRequest::new("t1 t2", " t3")]).unwrap();
    let t1 = e.engine_time().unwrap();
    assert!(t1.tokenize.0 > 0.0 && t1.compute.0 > 0.0, "{t1:?}");
    assert_eq!(t1.total(), t1.tokenize + t1.compute);
    let d = t1.since(t0);
    assert_eq!(d, t1);
    // Through a box and a reference.
    let boxed: Box<dyn LanguageModel> = Box::new(e);
    assert_eq!(boxed.batch_hint(), Some(hint));
    assert_eq!(boxed.engine_time(), Some(t1));
}
