//! A BLOOM checkpoint written as llama.cpp's converter writes a `bloom` GGUF (shared by the CPU
//! and GPU BLOOM tests).

use std::path::Path;

use eai_model::{
    GgmlType, GgufValue, GgufWriter, ModelConfig, WeightSource, bloom_qkv_to_blocks,
    hf_tensor_names, hf_to_gguf_name,
};

/// Writes `src`'s tensors as a `bloom` GGUF the way llama.cpp's converter does (names, fused QKV
/// regrouped to `[3, heads, d]`, output.weight duplicated from the embeddings).
pub(crate) fn write_bloom_gguf(
    path: &Path,
    cfg: &ModelConfig,
    src: &dyn WeightSource,
    ty: GgmlType,
) {
    let mut g = GgufWriter::new();
    g.metadata("general.architecture", GgufValue::String("bloom".into()));
    g.metadata("bloom.context_length", GgufValue::U32(cfg.max_position as u32));
    g.metadata("bloom.embedding_length", GgufValue::U32(cfg.hidden as u32));
    g.metadata("bloom.feed_forward_length", GgufValue::U32(cfg.ffn as u32));
    g.metadata("bloom.block_count", GgufValue::U32(cfg.n_layers as u32));
    g.metadata("bloom.attention.head_count", GgufValue::U32(cfg.n_heads as u32));
    g.metadata("bloom.attention.head_count_kv", GgufValue::U32(cfg.n_heads as u32));
    g.metadata("bloom.attention.layer_norm_epsilon", GgufValue::F32(cfg.rms_eps));
    g.metadata("bloom.vocab_size", GgufValue::U32(cfg.vocab as u32));
    let mut names = hf_tensor_names(cfg);
    names.push("lm_head.weight".into());
    for name in names {
        let src_name =
            if name == "lm_head.weight" { "transformer.word_embeddings.weight" } else { &name };
        let t = src.tensor(src_name).unwrap().unwrap();
        let gname = hf_to_gguf_name(&name).unwrap();
        let row = if t.shape.len() == 2 { t.shape[1] } else { 1 };
        let data = if gname.contains("attn_qkv") {
            bloom_qkv_to_blocks(&t.data, cfg.n_heads, row)
        } else {
            t.data
        };
        let dims: Vec<u64> = t.shape.iter().rev().map(|&x| x as u64).collect();
        let ty = if t.shape.len() == 2 { ty } else { GgmlType::F32 };
        g.tensor(gname, &dims, ty, eai_model::quantize(ty, &data).unwrap()).unwrap();
    }
    g.write(path).unwrap();
}
