//! Quantize a tensor to INT8 (symmetric, per output channel) and measure the round trip's error.
//!
//! Your `Cargo.toml`: `eai-quant = "0.1"` and `ndarray = "0.17"`. Run here with
//! `cargo run -p eai-quant --example quantize_tensor`.
use eai_quant::{CpuQuantizer, ErrorStats, QuantSpec, Quantizer, dequantize_to_vec};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let w = ndarray::Array2::from_shape_fn((16, 256), |(i, j)| ((i * 7 + j) as f32 * 0.1).cos());
    let q = CpuQuantizer::new(QuantSpec::int8_weight())?;
    let qt = q.quantize_named("layer.weight", w.view().into_dyn())?;
    let back = dequantize_to_vec(&qt)?;
    let original: Vec<f32> = w.iter().copied().collect();
    let err = ErrorStats::between(&original, &back)?;
    println!("{} f32 values: {} bytes -> {} bytes", qt.numel(), 4 * qt.numel(), qt.storage_bytes());
    println!(
        "SQNR {:.1} dB, max |error| {:.2e}, cosine {:.6}",
        err.sqnr_db, err.max_abs, err.cosine
    );
    Ok(())
}
