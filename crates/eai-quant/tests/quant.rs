//! Integration tests of the CPU quantization path (the CUDA tests live in `cuda.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "quant/bad_input.rs"]
mod bad_input;
#[path = "quant/checkpoint.rs"]
mod checkpoint;
#[path = "quant/golden.rs"]
mod golden;
#[path = "quant/hostile_checkpoint.rs"]
mod hostile_checkpoint;
#[path = "quant/properties.rs"]
mod properties;
#[path = "quant/worked_example.rs"]
mod worked_example;
