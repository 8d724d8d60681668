//! CPU quantization throughput per granularity next to a plain copy of the same buffer.
//!
//! `cargo bench -p eai-quant --bench quant_cpu`. Criterion measures each variant; afterwards a
//! table prints each variant's throughput as a ratio to the copy's (both in f32 elements per
//! second on the same 64 MiB buffer, medians of repeated runs). The bar is ≥ 0.5.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use eai_quant::{CpuQuantizer, Granularity, IntRange, Mapping, QuantSpec};

const ROWS: usize = 4096;
const COLS: usize = 4096;

fn data() -> Vec<f32> {
    let mut s = 0x9e3779b97f4a7c15u64;
    (0..ROWS * COLS)
        .map(|i| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * (1.0 + (i / COLS % 5) as f32)
        })
        .collect()
}

fn variants() -> Vec<(&'static str, QuantSpec)> {
    let w = QuantSpec::int8_weight();
    vec![
        ("per-tensor", QuantSpec { granularity: Granularity::PerTensor, ..w }),
        ("per-channel (axis 0)", w),
        ("per-token", QuantSpec::int8_activation_per_token()),
        ("per-group 128", QuantSpec { granularity: Granularity::PerGroup { size: 128 }, ..w }),
        ("ggml q8_0 (group 32, ties away, f16 scale)", QuantSpec::ggml_q8_0()),
        ("asymmetric u8 per-channel", QuantSpec::uint8_asymmetric()),
        ("torch qint8 per-tensor", QuantSpec::torch_per_tensor(IntRange::I8, Mapping::Symmetric)),
        (
            "per-channel (axis 1)",
            QuantSpec { granularity: Granularity::PerChannel { axis: 1 }, ..w },
        ),
    ]
}

fn median_secs(mut f: impl FnMut(), reps: usize) -> f64 {
    f();
    let mut t: Vec<f64> = (0..reps)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64()
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[reps / 2]
}

fn bench(c: &mut Criterion) {
    let x = data();
    let shape = [ROWS, COLS];
    let mut g = c.benchmark_group("quant_cpu");
    g.throughput(Throughput::Elements((ROWS * COLS) as u64));
    g.sample_size(10).measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    g.bench_function("copy f32", |b| b.iter(|| black_box(black_box(&x).to_vec())));
    for (name, spec) in variants() {
        let q = CpuQuantizer::new(spec).unwrap();
        g.bench_function(name, |b| {
            b.iter(|| black_box(q.quantize_slice("x", black_box(&x), &shape).unwrap()))
        });
    }
    g.finish();

    // The ratio table (same buffer, same allocation pattern: both produce a fresh output).
    let reps = 15;
    let copy = median_secs(|| drop(black_box(black_box(&x).to_vec())), reps);
    let n = (ROWS * COLS) as f64;
    println!();
    println!("buffer: {ROWS}×{COLS} f32 ({} MiB); medians of {reps} runs", (ROWS * COLS * 4) >> 20);
    println!("| variant | ms | Melem/s | input GB/s | ratio to copy |");
    println!("|---|---:|---:|---:|---:|");
    println!(
        "| copy f32 (to_vec) | {:.2} | {:.0} | {:.2} | 1.00 |",
        copy * 1e3,
        n / copy / 1e6,
        n * 4.0 / copy / 1e9
    );
    for (name, spec) in variants() {
        let q = CpuQuantizer::new(spec).unwrap();
        let t = median_secs(
            || drop(black_box(q.quantize_slice("x", black_box(&x), &shape).unwrap())),
            reps,
        );
        println!(
            "| {name} | {:.2} | {:.0} | {:.2} | {:.2} |",
            t * 1e3,
            n / t / 1e6,
            n * 4.0 / t / 1e9,
            copy / t
        );
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
