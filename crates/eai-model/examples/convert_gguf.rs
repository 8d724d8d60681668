#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Converts a GGUF file into a Hugging Face folder.
//!
//! `cargo run --release -p eai-model --example convert_gguf -- in.gguf out-dir [f32|f16]`

use eai_model::{ConvertDtype, gguf_to_hf};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dtype = match args.get(3).map_or("f32", String::as_str) {
        "f16" => ConvertDtype::F16,
        _ => ConvertDtype::F32,
    };
    gguf_to_hf(args.get(1).expect("in.gguf"), args.get(2).expect("out-dir"), dtype).unwrap();
}
