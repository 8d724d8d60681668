//! eai-model: A small Llama-family runtime (GGUF and safetensors, tokenizer, CPU reference forward) implementing LanguageModel.
//!
//! (Under construction: see the open issue for this layer.)
//!
//! ```
//! assert_eq!(2 + 2, 4);
//! ```
#![forbid(unsafe_code)]
