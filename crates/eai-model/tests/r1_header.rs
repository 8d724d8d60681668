//! The real DeepSeek-R1-Distill-Qwen-7B header: the first 95 MB of its Q4_K_M GGUF (all metadata,
//! the first tensors), read as a metadata-only file; its config and its tokenizer against
//! llama.cpp's (`tests/fixtures/r1_tokens.jsonl`, written by `scripts/make_r1_tokens.py`).

use std::path::Path;

use eai_model::{Architecture, Error, GgufContents, GgufFile, ModelConfig, RopeScaling, Tokenizer};

macro_rules! need_r1 {
    () => {
        match $crate::common::r1_header() {
            Some(p) => p,
            None => {
                eprintln!("skipping {}: the R1-Distill header GGUF is unavailable", module_path!());
                return;
            }
        }
    };
}

#[test]
fn r1_header_is_metadata_only_and_its_config_is_exact() {
    let p = need_r1!();
    // The strict reader refuses a file whose tensors end past its end, naming the way out.
    match GgufFile::open(&p) {
        Err(Error::BadTensor { reason, .. }) => {
            assert!(reason.contains("open_metadata_only"), "{reason}")
        }
        other => panic!("expected BadTensor, got {:?}", other.map(|_| ())),
    }
    let f = GgufFile::open_metadata_only(&p).unwrap();
    let GgufContents::MetadataOnly { tensors_with_data, full_len } = f.contents() else {
        panic!("the 95 MB part must be metadata only");
    };
    assert_eq!(f.tensors().len(), 339);
    assert!(tensors_with_data < f.tensors().len());
    assert!(full_len > 4_000_000_000, "{full_len}");
    eprintln!(
        "R1 header: {} tensors listed, {tensors_with_data} with data, full file {full_len} B",
        f.tensors().len()
    );
    let absent = f.tensors().iter().find(|t| !f.has_data(&t.name)).unwrap().name.clone();
    assert!(matches!(f.dequantize(&absent), Err(Error::TensorDataAbsent { .. })));

    let c = ModelConfig::from_gguf(&f).unwrap();
    assert_eq!(
        (c.arch, c.n_layers, c.hidden, c.n_heads, c.n_kv_heads, c.head_dim, c.ffn, c.vocab),
        (Architecture::Qwen2, 28, 3584, 28, 4, 128, 18944, 152064)
    );
    assert_eq!((c.rope_theta, c.rms_eps, c.rope_scaling), (10000.0, 1e-6, RopeScaling::None));
    assert_eq!((c.bos_token_id, c.qkv_bias, c.tie_embeddings), (Some(151646), true, false));
    assert_eq!(c.max_position, 131072);
    assert_eq!(f.get_str("tokenizer.ggml.pre").unwrap(), "deepseek-r1-qwen");
    assert_eq!(f.get("tokenizer.ggml.tokens").unwrap().as_array().unwrap().len(), 152064);
    assert_eq!(f.get("tokenizer.ggml.merges").unwrap().as_array().unwrap().len(), 151387);
    assert!(f.get_str("tokenizer.chat_template").unwrap().contains("<｜Assistant｜>"));
    // Shapes equal the Hugging Face config.json of the same model.
    let hf = ModelConfig::from_hf_json(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/configs/DeepSeek-R1-Distill-Qwen-7B.json"),
        )
        .unwrap(),
        "r1",
    )
    .unwrap();
    assert_eq!(
        (
            hf.n_layers,
            hf.hidden,
            hf.n_heads,
            hf.n_kv_heads,
            hf.ffn,
            hf.vocab,
            hf.rope_theta,
            hf.rms_eps
        ),
        (c.n_layers, c.hidden, c.n_heads, c.n_kv_heads, c.ffn, c.vocab, c.rope_theta, c.rms_eps)
    );
}

#[test]
fn r1_tokenizer_matches_llama_cpp_on_every_string() {
    let p = need_r1!();
    let f = GgufFile::open_metadata_only(&p).unwrap();
    let tok = Tokenizer::from_gguf(&f).unwrap();
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/r1_tokens.jsonl"),
    )
    .unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let (mut n, mut plain, mut bad) = (0, 0, Vec::new());
    for line in lines {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let s = v["text"].as_str().unwrap();
        let ids = |k: &str| -> Vec<u32> {
            v[k].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()
        };
        // eai (like Hugging Face) maps special-token strings to their ids: llama.cpp's
        // `special=True`; without any special token in the text both llama.cpp modes agree.
        let (want, want_plain) = (ids("ids_special"), ids("ids"));
        plain += usize::from(want == want_plain);
        let got = tok.encode_raw(s).unwrap();
        if got != want {
            bad.push(format!("{s:?}: eai {got:?} vs llama.cpp {want:?}"));
        }
        n += 1;
    }
    eprintln!(
        "R1 tokenizer: {n} strings ({plain} without special tokens), {} differ ({header})",
        bad.len()
    );
    assert!(n >= 300, "{n}");
    assert!(bad.is_empty(), "{} of {n} differ:\n{}", bad.len(), bad.join("\n"));
    // BOS: the GGUF says add_bos_token = true, so plain encoding starts with 151646.
    assert_eq!(tok.encode("Hi").unwrap().first(), Some(&151646));
}
