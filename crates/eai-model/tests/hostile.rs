//! Hostile model files (issue 15): non-finite weights, a zero rope factor, mistyped metadata,
//! a layer count that disagrees with the tensors, metadata out of proportion to the file, and
//! questions far longer than the context. Every bad file is built here.

use std::time::{Duration, Instant};

use eai_model::{
    Error, GgmlType, GgufFile, GgufSource, GgufValue, GgufWriter, LoadOptions, Model, ModelConfig,
    Scheme, permute_rows,
};

use crate::synthetic::{Weights, tiny_llama, weights};

/// A GGUF of `cfg`/`w` stored as `ty`, with `edit` applied to each tensor's bytes and `meta`
/// to the metadata writer (after the standard keys, so it can override them).
fn gguf(
    cfg: &ModelConfig,
    w: &Weights,
    ty: GgmlType,
    edit: impl Fn(&str, &mut Vec<u8>),
    meta: impl FnOnce(&mut GgufWriter),
) -> Vec<u8> {
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
    meta(&mut g);
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
        let mut bytes = eai_model::quantize(t, &data).unwrap();
        edit(&gname, &mut bytes);
        g.tensor(gname, &dims, t, bytes).unwrap();
    }
    g.to_bytes()
}

fn load(bytes: Vec<u8>, opts: LoadOptions) -> eai_model::Result<Model> {
    let f = GgufFile::from_bytes("hostile.gguf", bytes)?;
    let cfg = ModelConfig::from_gguf(&f)?;
    Model::load(&GgufSource::new(&f, &cfg), cfg, opts)
}

fn fp32() -> LoadOptions {
    LoadOptions::new(Scheme::Fp32)
}

fn no_edit(_: &str, _: &mut Vec<u8>) {}

#[test]
fn non_finite_weights_are_refused_at_load_naming_the_tensor() {
    let cfg = tiny_llama();
    let w = weights(&cfg, 3);
    // (GGUF tensor patched, storage type, what is written where, HF name in the error)
    let nan32 = f32::NAN.to_le_bytes();
    let inf32 = f32::INFINITY.to_le_bytes();
    let nan16 = half::f16::NAN.to_le_bytes();
    let inf16 = half::f16::INFINITY.to_le_bytes();
    let cases: Vec<(&str, GgmlType, usize, Vec<u8>, &str)> = vec![
        ("output_norm.weight", GgmlType::F32, 4 * 7, nan32.to_vec(), "model.norm.weight"),
        ("token_embd.weight", GgmlType::F32, 4 * 100, inf32.to_vec(), "model.embed_tokens.weight"),
        // Q4_1 block: d (f16), m (f16), 16 bytes of codes. A NaN scale of block 3, an
        // infinite minimum of block 0.
        (
            "blk.1.ffn_up.weight",
            GgmlType::Q4_1,
            20 * 3,
            nan16.to_vec(),
            "model.layers.1.mlp.up_proj.weight",
        ),
        (
            "blk.0.attn_v.weight",
            GgmlType::Q4_1,
            2,
            inf16.to_vec(),
            "model.layers.0.self_attn.v_proj.weight",
        ),
        // Q8_0 block: d (f16) then 32 codes.
        (
            "blk.0.ffn_down.weight",
            GgmlType::Q8_0,
            34,
            nan16.to_vec(),
            "model.layers.0.mlp.down_proj.weight",
        ),
    ];
    for (target, ty, at, bad, hf) in cases {
        let edit = |name: &str, b: &mut Vec<u8>| {
            if name == target {
                b[at..at + bad.len()].copy_from_slice(&bad);
            }
        };
        let bytes = gguf(&cfg, &w, ty, edit, |_| {});
        for scheme in [Scheme::Fp32, Scheme::Fp16] {
            match load(bytes.clone(), LoadOptions::new(scheme)) {
                Err(Error::NonFinite { tensor, .. }) => assert_eq!(tensor, hf, "{target}"),
                Err(e) => panic!("{target}: {e}"),
                Ok(_) => panic!("{target}: loaded with a non-finite weight under {scheme:?}"),
            }
        }
        // The check can be turned off (then the caller owns the NaN).
        assert!(load(bytes, fp32().check_finite(false)).is_ok(), "{target}");
    }
    // A clean file loads.
    assert!(load(gguf(&cfg, &w, GgmlType::Q4_1, no_edit, |_| {}), fp32()).is_ok());
}

#[test]
fn a_zero_rope_factor_is_a_config_error() {
    let cfg = tiny_llama();
    let w = weights(&cfg, 4);
    for factor in [0.0f32, -1.0, f32::NAN] {
        let bytes = gguf(&cfg, &w, GgmlType::F32, no_edit, |g| {
            g.metadata("llama.rope.scaling.type", GgufValue::String("linear".into()));
            g.metadata("llama.rope.scaling.factor", GgufValue::F32(factor));
        });
        match load(bytes, fp32()) {
            Err(Error::Config { field, .. }) => assert_eq!(field, "rope_scaling.factor"),
            other => panic!("factor {factor}: {other:?}"),
        }
    }
    let json = r#"{"architectures":["LlamaForCausalLM"],"hidden_size":64,"intermediate_size":96,
        "num_attention_heads":4,"num_key_value_heads":2,"num_hidden_layers":2,"vocab_size":300,
        "rope_theta":10000.0,"rms_norm_eps":1e-5,"tie_word_embeddings":false,
        "max_position_embeddings":256,"rope_scaling":{"rope_type":"linear","factor":0.0}}"#;
    match ModelConfig::from_hf_json(json, "c") {
        Err(Error::Config { field, .. }) => assert_eq!(field, "rope_scaling.factor"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn mistyped_optional_metadata_is_an_error_not_a_default() {
    let cfg = tiny_llama();
    let w = weights(&cfg, 6);
    for (key, v) in [
        ("llama.rope.freq_base", GgufValue::String("1000000".into())),
        ("llama.context_length", GgufValue::String("8192".into())),
        ("llama.context_length", GgufValue::F32(-1.0)),
    ] {
        let bytes = gguf(&cfg, &w, GgmlType::F32, no_edit, |g| {
            g.metadata(key, v.clone());
        });
        match load(bytes, fp32()) {
            Err(Error::Config { field, .. }) => assert_eq!(field, key),
            other => panic!("{key} = {v:?}: {other:?}"),
        }
    }
}

#[test]
fn the_layer_count_must_match_the_tensors_present() {
    let cfg = tiny_llama(); // 2 layers of tensors
    let w = weights(&cfg, 7);
    // One layer declared, two present: the extra tensors are named.
    let bytes = gguf(&cfg, &w, GgmlType::F32, no_edit, |g| {
        g.metadata("llama.block_count", GgufValue::U32(1));
    });
    let e = load(bytes, fp32()).unwrap_err();
    match &e {
        Error::Config { field, reason, .. } => {
            assert_eq!(field, "llama.block_count");
            assert!(reason.contains("blk.1."), "{e}");
        }
        other => panic!("{other:?}"),
    }
    // 2^24 layers declared: refused at once, before any per-layer allocation.
    for n in [3u32, 1 << 24, u32::MAX] {
        let bytes = gguf(&cfg, &w, GgmlType::F32, no_edit, |g| {
            g.metadata("llama.block_count", GgufValue::U32(n));
        });
        let t = Instant::now();
        match load(bytes, fp32()) {
            Err(Error::Config { field, reason, .. }) => {
                assert_eq!(field, "llama.block_count");
                assert!(reason.contains("layer 2"), "{reason}");
            }
            other => panic!("{n}: {other:?}"),
        }
        assert!(t.elapsed() < Duration::from_secs(5), "{n} layers took {:?}", t.elapsed());
    }
}

/// A GGUF header with one metadata array of `count` elements of type `elem` followed by `body`.
fn array_file(elem: u32, count: u64, body: &[u8]) -> Vec<u8> {
    let mut b = b"GGUF".to_vec();
    b.extend(3u32.to_le_bytes());
    b.extend(0u64.to_le_bytes()); // tensors
    b.extend(1u64.to_le_bytes()); // metadata entries
    let key = b"hostile.array";
    b.extend((key.len() as u64).to_le_bytes());
    b.extend(key);
    b.extend(9u32.to_le_bytes()); // ARRAY
    b.extend(elem.to_le_bytes());
    b.extend(count.to_le_bytes());
    b.extend(body);
    b
}

#[test]
fn metadata_out_of_proportion_to_the_file_is_refused_before_allocating() {
    // 8 MiB of u8 elements would take 256 MiB as parsed values: refused (the budget is 4× the
    // file plus 64 MiB), naming the key.
    let n = 8 << 20;
    let bytes = array_file(0, n as u64, &vec![0u8; n]);
    let e = GgufFile::from_bytes("big.gguf", bytes).unwrap_err();
    assert!(matches!(e, Error::Malformed { .. }), "{e}");
    assert!(e.to_string().contains("hostile.array"), "{e}");
    // A count beyond the bytes left is refused too.
    let e = GgufFile::from_bytes("lie.gguf", array_file(0, u64::MAX / 2, &[0; 16])).unwrap_err();
    assert!(matches!(e, Error::Malformed { .. }), "{e}");
    // Nested arrays of empty arrays: 12 bytes on disk each, 32 in memory: fine at this size.
    let mut body = Vec::new();
    for _ in 0..1000 {
        body.extend(0u32.to_le_bytes());
        body.extend(0u64.to_le_bytes());
    }
    let f = GgufFile::from_bytes("nested.gguf", array_file(9, 1000, &body)).unwrap();
    assert_eq!(f.get("hostile.array").and_then(|v| v.as_array()).map(<[_]>::len), Some(1000));
    // A legitimate array of the same kind, small: parsed.
    let f = GgufFile::from_bytes("ok.gguf", array_file(0, 1000, &[7u8; 1000])).unwrap();
    assert_eq!(f.get("hostile.array").and_then(|v| v.as_array()).map(<[_]>::len), Some(1000));
}

#[test]
fn a_question_far_longer_than_the_context_costs_what_a_context_sized_one_does() {
    use eai_core::{LanguageModel, LoglikelihoodRequest};
    let path = need_model!();
    let mut opts = eai_model::EngineOptions::default();
    opts.max_length = Some(64);
    let mut lm = eai_model::Engine::from_gguf(&path, fp32()).unwrap().with_options(opts);
    // 1 MB of text, then the question; a 20 kB tail of the same text scores identically (both
    // are left-truncated to the last 64 tokens, as lm-eval does).
    let words = ["energy ", "aware ", "models ", "measure ", "joules, ", "tokens. "];
    let mut long = String::new();
    let mut i = 0;
    while long.len() < 1 << 20 {
        long.push_str(words[i % words.len()]);
        i += 7;
    }
    long.push_str("Question: what do the models measure?\nAnswer:");
    let short = &long[long.len() - 20_000..];
    let short = &short[short.find(' ').unwrap()..];
    let t = Instant::now();
    let r = lm
        .loglikelihood(&[
            LoglikelihoodRequest::new(long.clone(), " joules"),
            LoglikelihoodRequest::new(short.to_string(), " joules"),
        ])
        .unwrap();
    let took = t.elapsed();
    assert!(took < Duration::from_secs(60), "a 1 MB question took {took:?}");
    assert!(r[0].logprob.is_finite());
    assert!((r[0].logprob - r[1].logprob).abs() < 1e-9, "{} vs {}", r[0].logprob, r[1].logprob);
    assert_eq!(lm.truncated_requests(), Some(2));
    // Against the whole text tokenized (200 kB, small enough to encode here): the same score.
    let mid = long[long.len() - 200_000..].to_string();
    let mid = mid[mid.find(' ').unwrap()..].to_string();
    let pair = lm.encode_pair(&mid, " joules").unwrap();
    assert!(pair.0.len() > 10_000);
    let full = lm.loglikelihood_tokens(&[pair]).unwrap()[0].0;
    let bounded = lm.loglikelihood(&[LoglikelihoodRequest::new(mid, " joules")]).unwrap();
    assert!((full - bounded[0].logprob).abs() < 1e-9, "{full} vs {}", bounded[0].logprob);
    assert_eq!(lm.truncated_requests(), Some(3));
}
