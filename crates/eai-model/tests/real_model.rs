//! Tests on the real SmolLM2-135M-Instruct GGUF.

use eai_core::{GenerateRequest, LanguageModel, LoglikelihoodRequest};
use eai_model::{Engine, GgmlType, GgufFile, LoadOptions, ModelConfig, Scheme};

const CAPITALS: &str = "The capital of France is Paris. The capital of Germany is Berlin. The capital of Italy is Rome. The capital of Spain is Madrid.";

#[test]
fn gguf_header_and_tensors() {
    let p = need_model!();
    let f = GgufFile::open(&p).unwrap();
    assert_eq!(f.version(), 3);
    assert_eq!(f.data_start(), 1_785_664);
    assert_eq!(f.tensors().len(), 272);
    let e = f.tensor("token_embd.weight").unwrap();
    assert_eq!((e.ty, e.dims.clone(), e.n_bytes), (GgmlType::Q8_0, vec![576, 49152], 30_081_024));
    let k = f.tensor("blk.0.attn_k.weight").unwrap();
    assert_eq!((k.ty, k.n_bytes), (GgmlType::Q4_1, 69_120));
    let cfg = ModelConfig::from_gguf(&f).unwrap();
    assert_eq!(
        (cfg.n_layers, cfg.hidden, cfg.n_heads, cfg.n_kv_heads, cfg.ffn, cfg.vocab),
        (30, 576, 9, 3, 1536, 49152)
    );
    assert_eq!(cfg.rope_theta, 100_000.0);
    assert!(cfg.tie_embeddings);
}

#[test]
fn capitals_nll_and_greedy_chat() {
    let p = need_model!();
    let mut lm = Engine::from_gguf(&p, LoadOptions::new(Scheme::Fp32)).unwrap();
    let ids = lm.tokenizer().encode(CAPITALS).unwrap();
    assert_eq!(ids.len(), 28);
    assert_eq!(&ids[..12], &[504, 3575, 282, 4649, 314, 7042, 30, 378, 3575, 282, 4521, 314]);
    let nll = lm.token_nlls(&ids).unwrap();
    let mean = nll.iter().sum::<f64>() / nll.len() as f64;
    eprintln!("capitals mean NLL {mean:.4}");
    // Our numpy fp32 reference over the same dequantized weights: 1.0822.
    assert!((mean - 1.0822).abs() < 0.005, "mean NLL {mean}");
    let out = lm
        .generate_until(&[GenerateRequest::new(
            "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n",
            vec!["<|im_end|>".into()],
        )
        .max_gen_toks(20)])
        .unwrap();
    assert_eq!(out[0].text, "The capital of France is Paris.");
    let r = lm
        .loglikelihood(&[
            LoglikelihoodRequest::new("The capital of France is", " Paris"),
            LoglikelihoodRequest::new("The capital of France is", " Berlin"),
        ])
        .unwrap();
    assert!(r[0].logprob > r[1].logprob);
    assert!(r[0].is_greedy);
}
