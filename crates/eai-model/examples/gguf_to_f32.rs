#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Rewrites a GGUF with every tensor dequantized to F32 (same names, layout, metadata), so
//! llama.cpp can run exactly the weights eai-model's FP32 path uses.
//!
//! `cargo run --release -p eai-model --example gguf_to_f32 -- in.gguf out.gguf`

use eai_model::{GgmlType, GgufFile, GgufWriter};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (inp, out) = (args.get(1).expect("in.gguf"), args.get(2).expect("out.gguf"));
    let f = GgufFile::open(inp).unwrap();
    let mut w = GgufWriter::new();
    for k in f.metadata_keys() {
        w.metadata(k.clone(), f.get(k).unwrap().clone());
    }
    // general.file_type 0 = ALL_F32.
    w.metadata("general.file_type", eai_model::GgufValue::U32(0));
    for t in f.tensors() {
        let v = f.dequantize(&t.name).unwrap();
        let bytes = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        w.tensor(t.name.clone(), &t.dims, GgmlType::F32, bytes).unwrap();
    }
    w.write(out).unwrap();
}
