//! GPU benchmark of the CUDA backend, in one run on one GPU:
//!
//! 1. device-to-device copy bandwidth (the memory roof every element-wise kernel is compared to);
//! 2. GB/s of every quantize / dequantize / cast kernel and its ratio to that copy bandwidth;
//! 3. INT8 GEMM (cuBLASLt, and with the fused dequant epilogue) TOPS against cuBLAS FP16 GEMM
//!    TFLOPS at 4096³, 8192³ and at 7B-model LLM shapes (M ∈ {1, 16, 128, 2048});
//! 4. W8A16 GEMV against cuBLAS FP16 GEMV at batch 1;
//! 5. joules per GEMM for FP16, INT8 and W8A16 from NVML's total-energy counter, each over
//!    ≥ 5 s of back-to-back launches.
//!
//! Timing: device events around batches of launches after warm-up, median over many batches;
//! inputs are random (device-side counter-based RNG), and weight sets rotate so small problems
//! do not run from L2. Run: `cargo run --release --features cuda --example cuda_bench -- [--out
//! FILE.md] [--quick]`. Other flags: `--quant-only`, `--sweep`, `--no-energy`, `--no-sizes`,
//! `--vary-placement` (see `quant_rows`), and `--profile [--profile-log2 N]` (one launch of
//! each kernel under study and exit, for `ncu -k regex:...`). `--gemm-only` runs only the GEMM
//! sections (3 and 3b: the separate dequantize pass against the fused `gemm_i8_dequant`).
//! `--only-16bit` runs only the copy, the row-wise quantize cases from bf16/f16 (the default
//! kernel beside its variants, `QUANT_VARIANTS`) and the 2:1 traffic probes (< 1 minute).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "cuda_bench_parts/gemm_fused.rs"]
mod gemm_fused;
#[path = "cuda_bench_parts/sweeps.rs"]
mod sweeps;

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use eai_quant::cuda::{CudaDevice, DeviceBuffer, GemmShape};
use half::f16;

type BoxResult<T> = Result<T, Box<dyn std::error::Error>>;

/// Collects the report: printed as it goes, written as markdown at the end.
struct Report {
    md: String,
}

impl Report {
    fn line(&mut self, s: impl AsRef<str>) {
        println!("{}", s.as_ref());
        let _ = writeln!(self.md, "{}", s.as_ref());
    }
}

/// Median seconds per call of `f`: warm-up, then `samples` event-timed batches of `reps` calls.
fn time_op(
    dev: &CudaDevice,
    samples: usize,
    mut f: impl FnMut(usize) -> BoxResult<()>,
) -> BoxResult<f64> {
    for i in 0..3 {
        f(i)?;
    }
    dev.synchronize()?;
    // Pick the batch size so one sample takes ≥ ~2 ms of device time.
    let t = dev.start_timer()?;
    f(0)?;
    let one = t.stop()?.as_secs_f64().max(1e-7);
    let reps = ((2e-3 / one).ceil() as usize).clamp(1, 2000);
    let mut times = Vec::with_capacity(samples);
    let mut idx = 0usize;
    for _ in 0..samples {
        let t = dev.start_timer()?;
        for _ in 0..reps {
            f(idx)?;
            idx += 1;
        }
        times.push(t.stop()?.as_secs_f64() / reps as f64);
    }
    times.sort_by(|a, b| a.total_cmp(b));
    Ok(times[times.len() / 2])
}

/// Energy over ≥ `min` seconds of back-to-back calls: (joules per call, average watts, calls,
/// seconds).
fn energy_op(
    dev: &CudaDevice,
    nvml: &nvml_wrapper::Device<'_>,
    min: Duration,
    mut f: impl FnMut(usize) -> BoxResult<()>,
) -> BoxResult<(f64, f64, usize, f64)> {
    for i in 0..5 {
        f(i)?;
    }
    dev.synchronize()?;
    // chunk of launches between synchronizations ≈ 50 ms
    let t = dev.start_timer()?;
    f(0)?;
    let one = t.stop()?.as_secs_f64().max(1e-7);
    let chunk = ((0.05 / one).ceil() as usize).clamp(1, 100_000);
    let e0 = nvml.total_energy_consumption()?;
    let t0 = Instant::now();
    let mut calls = 0usize;
    while t0.elapsed() < min {
        for _ in 0..chunk {
            f(calls)?;
            calls += 1;
        }
        dev.synchronize()?;
    }
    let secs = t0.elapsed().as_secs_f64();
    let e1 = nvml.total_energy_consumption()?;
    let joules = (e1.saturating_sub(e0)) as f64 / 1e3;
    Ok((joules / calls as f64, joules / secs, calls, secs))
}

fn gbs(bytes: f64, secs: f64) -> f64 {
    bytes / secs / 1e9
}

/// Number of weight copies to rotate through so the set is ≥ 4× the L2 cache (max 16).
fn rotation(bytes_each: usize, l2: u64) -> usize {
    (((4 * l2) as usize).div_ceil(bytes_each.max(1))).clamp(1, 16)
}

fn random_f16(dev: &CudaDevice, n: usize, seed: u64, amp: f32) -> BoxResult<DeviceBuffer<f16>> {
    let mut tmp = dev.zeros::<f32>(n)?;
    dev.fill_uniform(&mut tmp, seed, -amp, amp)?;
    let mut out = dev.zeros::<f16>(n)?;
    dev.cast(&tmp, &mut out)?;
    Ok(out)
}

fn random_i8(dev: &CudaDevice, n: usize, seed: u64) -> BoxResult<DeviceBuffer<i8>> {
    let mut out = dev.zeros::<i8>(n)?;
    dev.fill_random_i8(&mut out, seed)?;
    Ok(out)
}

fn random_scales(dev: &CudaDevice, n: usize, seed: u64) -> BoxResult<DeviceBuffer<f32>> {
    let mut out = dev.zeros::<f32>(n)?;
    dev.fill_uniform(&mut out, seed, 1e-4, 2e-2)?;
    Ok(out)
}

fn main() -> BoxResult<()> {
    let args: Vec<String> = std::env::args().collect();
    let out_path = args.iter().position(|a| a == "--out").and_then(|i| args.get(i + 1).cloned());
    let quick = args.iter().any(|a| a == "--quick");
    let no_energy = args.iter().any(|a| a == "--no-energy");
    let sweep = args.iter().any(|a| a == "--sweep");
    let samples = if quick { 5 } else { 30 };
    let energy_secs = Duration::from_secs_f64(if quick { 1.0 } else { 5.0 });

    let dev = CudaDevice::open(0)?;
    let t_compile = Instant::now();
    dev.load_kernels()?;
    let compile_s = t_compile.elapsed().as_secs_f64();
    let info = dev.info().clone();
    if args.iter().any(|a| a == "--profile") {
        let log2 = args
            .iter()
            .position(|a| a == "--profile-log2")
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(28)
            .clamp(16, 30);
        return profile(&dev, log2);
    }
    let mut r = Report { md: String::new() };
    r.line(format!(
        "device: {} (sm_{}{}, {} SMs, {:.1} GiB, L2 {} MiB); NVRTC compile + load {:.2} s",
        info.name,
        info.compute_capability.0,
        info.compute_capability.1,
        info.multiprocessors,
        info.total_memory_bytes as f64 / (1u64 << 30) as f64,
        info.l2_cache_bytes >> 20,
        compile_s
    ));

    if args.iter().any(|a| a == "--gemm-only") {
        return gemm_only(&dev, r, samples, out_path);
    }

    // ---------------------------------------------------------------- 1. copy roof
    let copy_bytes = 1usize << 30;
    let src = random_i8(&dev, copy_bytes, 1)?;
    let mut dst = dev.zeros::<i8>(copy_bytes)?;
    let t = time_op(&dev, samples, |_| Ok(dev.copy(&src, &mut dst)?))?;
    let roof = gbs(2.0 * copy_bytes as f64, t);
    drop((src, dst));
    r.line(String::new());
    r.line("## Memory-bound kernels (ratio = GB/s ÷ D2D copy GB/s)");
    r.line(String::new());
    r.line("Bytes counted (\"useful bytes\"): casts: input + output; quantize: input read once (4 B/elem f32, 2 B bf16/f16) + codes written (1 B/elem) + scale and zero point (8 B/group); dequantize: codes (1 B/elem) + output (4 or 2 B/elem) + 8 B/group. Two-pass kernels (per-tensor, per-channel on an inner axis) must read the input twice when it is larger than L2: their rows show both the bytes actually moved and the useful bytes; the most a two-pass kernel can reach in useful bytes is (e + 1)/(2e + 1) of copy (0.556 for f32, 0.600 for 16-bit inputs).");
    r.line(String::new());
    r.line("| kernel | elements | time (µs) | GB/s | ratio to copy |");
    r.line("|---|---|---|---|---|");
    r.line(format!(
        "| device-to-device copy (1 GiB) | {} B | {:.1} | {:.0} | 1.000 |",
        copy_bytes,
        t * 1e6,
        roof
    ));
    let row = |r: &mut Report, name: &str, n: usize, bytes: f64, t: f64| {
        let g = gbs(bytes, t);
        r.line(format!("| {name} | {n} | {:.1} | {:.0} | {:.3} |", t * 1e6, g, g / roof));
    };

    // ---------------------------------------------------------------- 2. casts
    let n = 1usize << 28;
    let only16 = args.iter().any(|a| a == "--only-16bit");
    if !only16 {
        let mut x32 = dev.zeros::<f32>(n)?;
        dev.fill_uniform(&mut x32, 2, -100.0, 100.0)?;
        let mut x16 = dev.zeros::<f16>(n)?;
        let mut xb = dev.zeros::<half::bf16>(n)?;
        let t = time_op(&dev, samples, |_| Ok(dev.cast(&x32, &mut x16)?))?;
        row(&mut r, "cast f32→f16", n, 6.0 * n as f64, t);
        let t = time_op(&dev, samples, |_| Ok(dev.cast(&x32, &mut xb)?))?;
        row(&mut r, "cast f32→bf16", n, 6.0 * n as f64, t);
        let t = time_op(&dev, samples, |_| Ok(dev.cast(&x16, &mut x32)?))?;
        row(&mut r, "cast f16→f32", n, 6.0 * n as f64, t);
        let t = time_op(&dev, samples, |_| Ok(dev.cast(&xb, &mut x32)?))?;
        row(&mut r, "cast bf16→f32", n, 6.0 * n as f64, t);
        let t = time_op(&dev, samples, |_| Ok(dev.cast(&x16, &mut xb)?))?;
        row(&mut r, "cast f16→bf16", n, 4.0 * n as f64, t);
    }
    if args.iter().any(|a| a == "--write-roof") || sweep {
        sweeps::write_roof(&dev, &mut r, samples, roof)?;
    }
    if sweep {
        if args.iter().any(|a| a == "--sweep-tiles") {
            sweeps::sweep_quant(&dev, &mut r, samples.div_ceil(2), roof)?;
        }
        sweeps::sweep_reg(&dev, &mut r, samples.div_ceil(2), roof)?;
        sweeps::sweep_dequant(&dev, &mut r, samples.div_ceil(2), roof)?;
    }
    if only16 {
        quant_rows(&dev, &mut r, samples, roof, false, true)?;
        r.line(String::new());
        r.line(format!("Tuning used: `{}`", dev.tuning().to_overrides()));
        if let Some(p) = out_path {
            std::fs::write(&p, &r.md)?;
            println!("wrote {p}");
        }
        return Ok(());
    }
    quant_rows(&dev, &mut r, samples, roof, args.iter().any(|a| a == "--vary-placement"), false)?;
    if !args.iter().any(|a| a == "--no-sizes") {
        sweeps::two_pass_sizes(&dev, &mut r, samples, roof)?;
    }
    // the tuning the tables above ran with, in the format EAI_QUANT_TUNING reads
    r.line(String::new());
    r.line(format!("Tuning used: `{}`", dev.tuning().to_overrides()));
    if let Some(p) = args.iter().position(|a| a == "--tuning-out").and_then(|i| args.get(i + 1)) {
        std::fs::write(p, format!("{}\n", dev.tuning().to_overrides()))?;
    }
    if args.iter().any(|a| a == "--quant-only") {
        if let Some(p) = out_path {
            std::fs::write(&p, &r.md)?;
            println!("wrote {p}");
        }
        return Ok(());
    }

    // ---------------------------------------------------------------- 3. GEMM
    let big_ratio = gemm_table(&dev, &mut r, samples)?;
    let fused_bars = gemm_fused::fused_gemm(&dev, &mut r, samples)?;

    // ---------------------------------------------------------------- 4a. W8A16 variants
    w8a16_tables(
        &dev,
        r,
        samples,
        sweep,
        roof,
        no_energy,
        energy_secs,
        big_ratio,
        fused_bars,
        out_path,
    )
}

/// `--gemm-only`: sections 3 and 3b and their bars.
fn gemm_only(
    dev: &CudaDevice,
    mut r: Report,
    samples: usize,
    out_path: Option<String>,
) -> BoxResult<()> {
    let big_ratio = gemm_table(dev, &mut r, samples)?;
    let fused_bars = gemm_fused::fused_gemm(dev, &mut r, samples)?;
    r.line(String::new());
    r.line("## Bars");
    gemm_bars(&mut r, &big_ratio, &fused_bars);
    if let Some(p) = out_path {
        std::fs::write(&p, &r.md)?;
        println!("wrote {p}");
    }
    Ok(())
}

fn gemm_bars(r: &mut Report, big_ratio: &[(usize, f64, f64)], fused_bars: &[String]) {
    for (m, raw, epi) in big_ratio {
        r.line(format!(
            "- INT8 vs FP16 at {m}³: {raw:.2}× (GEMM alone), {epi:.2}× (with dequant epilogue); bar ≥ 1.6×: {}",
            if *raw >= 1.6 { "met" } else { "NOT met" }
        ));
    }
    for b in fused_bars {
        r.line(b);
    }
}

/// Section 3: INT8 GEMM and INT8 + separate dequantize against FP16 over the shape list;
/// returns `(M, GEMM ×FP16, with dequant ×FP16)` for the square shapes.
fn gemm_table(
    dev: &CudaDevice,
    r: &mut Report,
    samples: usize,
) -> BoxResult<Vec<(usize, f64, f64)>> {
    let info = dev.info().clone();
    r.line(String::new());
    r.line(
        "## INT8 GEMM (cuBLASLt int8×int8→int32) vs cuBLAS FP16 GEMM (f16 in/out, f32 accumulate)",
    );
    r.line(String::new());
    r.line("| M | N | K | FP16 (µs) | FP16 TFLOPS | INT8 (µs) | INT8 TOPS | ×FP16 | INT8+dequant→f16 (µs) | TOPS | ×FP16 |");
    r.line("|---|---|---|---|---|---|---|---|---|---|---|");
    let mut shapes = vec![GemmShape::new(4096, 4096, 4096), GemmShape::new(8192, 8192, 8192)];
    for m in [1, 16, 128, 2048] {
        for (n, k) in [(4096, 4096), (11008, 4096), (4096, 11008)] {
            shapes.push(GemmShape::new(m, n, k));
        }
    }
    let mut big_ratio = Vec::new();
    for s in &shapes {
        let sets = rotation(s.n * s.k * 2, info.l2_cache_bytes);
        let res = (|| -> BoxResult<(f64, f64, f64)> {
            let t16 = {
                let x = random_f16(dev, s.m * s.k, 10, 1.0)?;
                let ws: Vec<_> = (0..sets)
                    .map(|i| random_f16(dev, s.n * s.k, 20 + i as u64, 0.05))
                    .collect::<BoxResult<_>>()?;
                let mut y = dev.zeros::<f16>(s.m * s.n)?;
                time_op(dev, samples, |i| Ok(dev.gemm_f16(&x, &ws[i % sets], &mut y, *s)?))?
            };
            let (t8, t8e) = {
                let x = random_i8(dev, s.m * s.k, 30)?;
                let ws: Vec<_> = (0..sets)
                    .map(|i| random_i8(dev, s.n * s.k, 40 + i as u64))
                    .collect::<BoxResult<_>>()?;
                let sx = random_scales(dev, s.m, 50)?;
                let sw = random_scales(dev, s.n, 51)?;
                let mut acc = dev.zeros::<i32>(s.m * s.n)?;
                let mut y = dev.zeros::<f16>(s.m * s.n)?;
                let t8 =
                    time_op(dev, samples, |i| Ok(dev.gemm_i8(&x, &ws[i % sets], &mut acc, *s)?))?;
                let t8e = time_op(dev, samples, |i| {
                    dev.gemm_i8(&x, &ws[i % sets], &mut acc, *s)?;
                    Ok(dev.gemm_dequant(&acc, &sx, &sw, None, &mut y, s.m, s.n)?)
                })?;
                (t8, t8e)
            };
            Ok((t16, t8, t8e))
        })();
        let (t16, t8, t8e) = match res {
            Ok(v) => v,
            Err(e) => {
                r.line(format!("| {} | {} | {} | error: {e} |", s.m, s.n, s.k));
                continue;
            }
        };
        let ops = s.ops();
        if s.m == s.n && s.n == s.k {
            big_ratio.push((s.m, t16 / t8, t16 / t8e));
        }
        r.line(format!(
            "| {} | {} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.2} | {:.1} | {:.1} | {:.2} |",
            s.m,
            s.n,
            s.k,
            t16 * 1e6,
            ops / t16 / 1e12,
            t8 * 1e6,
            ops / t8 / 1e12,
            t16 / t8,
            t8e * 1e6,
            ops / t8e / 1e12,
            t16 / t8e
        ));
    }

    Ok(big_ratio)
}

/// Sections 4a–5 (W8A16 variants and GEMV, energy) and the bars.
#[allow(clippy::too_many_arguments)]
fn w8a16_tables(
    dev: &CudaDevice,
    mut r: Report,
    samples: usize,
    sweep: bool,
    roof: f64,
    no_energy: bool,
    energy_secs: Duration,
    big_ratio: Vec<(usize, f64, f64)>,
    fused_bars: Vec<String>,
    out_path: Option<String>,
) -> BoxResult<()> {
    let info = dev.info().clone();
    // ---------------------------------------------------------------- 4a. W8A16 variants
    if sweep {
        r.line(String::new());
        r.line("## W8A16 decode variants (M = 1, f16): speed-up over cuBLAS FP16 GEMV");
        r.line(String::new());
        r.line("| rows/warp | loads in flight/row | warps/block | 4096×4096 | 11008×4096 | 4096×11008 | worst |");
        r.line("|---|---|---|---|---|---|---|");
        let shapes = [(4096usize, 4096usize), (11008, 4096), (4096, 11008)];
        let mut base16 = Vec::new();
        let mut sets_w = Vec::new();
        let x = random_f16(dev, 11008, 60, 1.0)?;
        for (i, &(n, k)) in shapes.iter().enumerate() {
            let s = GemmShape::new(1, n, k);
            let sets = rotation(n * k * 2, info.l2_cache_bytes);
            let xk = random_f16(dev, k, 61 + i as u64, 1.0)?;
            let mut y = dev.zeros::<f16>(n)?;
            let ws: Vec<_> = (0..sets)
                .map(|j| random_f16(dev, n * k, 70 + j as u64, 0.05))
                .collect::<BoxResult<_>>()?;
            base16.push(time_op(dev, samples, |j| {
                Ok(dev.gemm_f16(&xk, &ws[j % sets], &mut y, s)?)
            })?);
            drop(ws);
            let w8: Vec<_> = (0..sets)
                .map(|j| random_i8(dev, n * k, 80 + j as u64))
                .collect::<BoxResult<_>>()?;
            sets_w.push((w8, random_scales(dev, n, 90)?, xk));
        }
        drop(x);
        let default = dev.tuning();
        let mut best = (0.0f64, default);
        for (rows, unroll) in [(1, 2), (1, 4), (2, 1), (2, 2), (2, 4), (4, 1), (4, 2)] {
            for warps in [4u32, 8] {
                let mut t = default;
                t.w8a16_rows = rows;
                t.w8a16_unroll = unroll;
                t.w8a16_warps = warps;
                dev.set_tuning(t);
                let mut cells = Vec::new();
                for (i, &(n, k)) in shapes.iter().enumerate() {
                    let s = GemmShape::new(1, n, k);
                    let (w8, sw, xk) = &sets_w[i];
                    let sets = w8.len();
                    let mut y = dev.zeros::<f16>(n)?;
                    let t8 = time_op(dev, samples, |j| {
                        Ok(dev.w8a16(&w8[j % sets], sw, xk, None, &mut y, s)?)
                    })?;
                    cells.push(base16[i] / t8);
                }
                let worst = cells.iter().cloned().fold(f64::INFINITY, f64::min);
                if worst > best.0 {
                    best = (worst, t);
                }
                r.line(format!(
                    "| {rows} | {unroll} | {warps} | {:.2} | {:.2} | {:.2} | {worst:.2} |",
                    cells[0], cells[1], cells[2]
                ));
            }
        }
        let b = best.1;
        r.line(String::new());
        r.line(format!(
            "Best (largest worst-case speed-up): {} rows/warp, {} loads/row, {} warps/block (library default {}, {}, {}); the table below uses the best.",
            b.w8a16_rows, b.w8a16_unroll, b.w8a16_warps,
            default.w8a16_rows, default.w8a16_unroll, default.w8a16_warps
        ));
        dev.set_tuning(b);
    }

    // ---------------------------------------------------------------- 4. W8A16 GEMV
    r.line(String::new());
    r.line("## Decode: W8A16 GEMV/GEMM (int8 weights, f16 activations) vs cuBLAS FP16 GEMV/GEMM");
    r.line(String::new());
    r.line("| M | N | K | FP16 (µs) | FP16 weight GB/s | W8A16 (µs) | W8A16 weight GB/s | W8A16 ratio to copy | W8A16 speed-up | W8A8 incl. act. quant (µs) | W8A8 speed-up |");
    r.line("|---|---|---|---|---|---|---|---|---|---|---|");
    let mut gemv_speedups = Vec::new();
    for m in [1usize, 16] {
        for (n, k) in [(4096usize, 4096usize), (11008, 4096), (4096, 11008)] {
            let s = GemmShape::new(m, n, k);
            let sets = rotation(n * k * 2, info.l2_cache_bytes);
            let res = (|| -> BoxResult<(f64, f64, f64)> {
                let x = random_f16(dev, m * k, 60, 1.0)?;
                let mut y = dev.zeros::<f16>(m * n)?;
                let t16 = {
                    let ws: Vec<_> = (0..sets)
                        .map(|i| random_f16(dev, n * k, 70 + i as u64, 0.05))
                        .collect::<BoxResult<_>>()?;
                    time_op(dev, samples, |i| Ok(dev.gemm_f16(&x, &ws[i % sets], &mut y, s)?))?
                };
                let (t8, ta) = {
                    let ws: Vec<_> = (0..sets)
                        .map(|i| random_i8(dev, n * k, 80 + i as u64))
                        .collect::<BoxResult<_>>()?;
                    let sw = random_scales(dev, n, 90)?;
                    let t8 = time_op(dev, samples, |i| {
                        Ok(dev.w8a16(&ws[i % sets], &sw, &x, None, &mut y, s)?)
                    })?;
                    let spec = eai_quant::QuantSpec::int8_activation_per_token();
                    let mut qx = dev.quant_output("x", &spec, &[m, k])?;
                    let mut acc = dev.zeros::<i32>(m * n)?;
                    let ta = time_op(dev, samples, |i| {
                        dev.quantize_into(&x, &mut qx)?;
                        dev.gemm_i8(qx.codes(), &ws[i % sets], &mut acc, s)?;
                        Ok(dev.gemm_dequant(&acc, qx.scales(), &sw, None, &mut y, m, n)?)
                    })?;
                    (t8, ta)
                };
                Ok((t16, t8, ta))
            })();
            let (t16, t8, ta) = match res {
                Ok(v) => v,
                Err(e) => {
                    r.line(format!("| {m} | {n} | {k} | error: {e} |"));
                    continue;
                }
            };
            let wb16 = (2 * n * k) as f64;
            let wb8 = (n * k + 4 * n) as f64;
            if m == 1 {
                gemv_speedups.push(t16 / t8);
            }
            r.line(format!(
                "| {m} | {n} | {k} | {:.2} | {:.0} | {:.2} | {:.0} | {:.3} | {:.2} | {:.2} | {:.2} |",
                t16 * 1e6,
                gbs(wb16, t16),
                t8 * 1e6,
                gbs(wb8, t8),
                gbs(wb8 + (2 * m * (k + n)) as f64, t8) / roof,
                t16 / t8,
                ta * 1e6,
                t16 / ta
            ));
        }
    }

    // ---------------------------------------------------------------- 5. energy
    r.line(String::new());
    r.line(format!(
        "## Energy per GEMM (NVML total-energy counter, ≥ {:.0} s of back-to-back launches each)",
        energy_secs.as_secs_f64()
    ));
    r.line(String::new());
    match nvml_wrapper::Nvml::init() {
        _ if no_energy => r.line("skipped (--no-energy)"),
        Err(e) => r.line(format!("NVML unavailable: {e}")),
        Ok(nvml) => {
            let nd = nvml.device_by_index(0)?;
            r.line(format!("NVML device 0: {}", nd.name()?));
            r.line(String::new());
            // idle baseline
            dev.synchronize()?;
            let e0 = nd.total_energy_consumption()?;
            let t0 = Instant::now();
            std::thread::sleep(Duration::from_secs(2));
            let idle_w =
                (nd.total_energy_consumption()? - e0) as f64 / 1e3 / t0.elapsed().as_secs_f64();
            r.line(format!("idle power before the runs: {idle_w:.1} W"));
            r.line(String::new());
            r.line("| workload | shape | calls | s | avg W | J per call | mJ per call above idle | vs FP16 |");
            r.line("|---|---|---|---|---|---|---|---|");
            for s in [GemmShape::new(8192, 8192, 8192), GemmShape::new(1, 11008, 4096)] {
                let sets = rotation(s.n * s.k * 2, info.l2_cache_bytes);
                let x16 = random_f16(dev, s.m * s.k, 100, 1.0)?;
                let w16: Vec<_> = (0..sets)
                    .map(|i| random_f16(dev, s.n * s.k, 110 + i as u64, 0.05))
                    .collect::<BoxResult<_>>()?;
                let mut y16 = dev.zeros::<f16>(s.m * s.n)?;
                let x8 = random_i8(dev, s.m * s.k, 120)?;
                let w8: Vec<_> = (0..sets)
                    .map(|i| random_i8(dev, s.n * s.k, 130 + i as u64))
                    .collect::<BoxResult<_>>()?;
                let sx = random_scales(dev, s.m, 140)?;
                let sw = random_scales(dev, s.n, 141)?;
                let mut acc = dev.zeros::<i32>(s.m * s.n)?;
                let label = format!("{}×{}×{}", s.m, s.n, s.k);
                let row = |r: &mut Report,
                           name: &str,
                           (j, w, calls, secs): (f64, f64, usize, f64),
                           base: f64| {
                    r.line(format!(
                        "| {name} | {label} | {calls} | {secs:.1} | {w:.0} | {j:.3e} | {:.4} | {:.2}× |",
                        (j - idle_w * secs / calls as f64) * 1e3,
                        if base > 0.0 { j / base } else { 1.0 }
                    ));
                };
                let e16 = energy_op(dev, &nd, energy_secs, |i| {
                    Ok(dev.gemm_f16(&x16, &w16[i % sets], &mut y16, s)?)
                })
                .unwrap_or((0.0, 0.0, 1, 0.0));
                row(&mut r, "FP16 cuBLAS", e16, e16.0);
                let e8 = energy_op(dev, &nd, energy_secs, |i| {
                    dev.gemm_i8(&x8, &w8[i % sets], &mut acc, s)?;
                    Ok(dev.gemm_dequant(&acc, &sx, &sw, None, &mut y16, s.m, s.n)?)
                });
                match e8 {
                    Ok(e8) => row(&mut r, "INT8 cuBLASLt + dequant", e8, e16.0),
                    Err(e) => r.line(format!("| INT8 cuBLASLt + dequant | {label} | error: {e} |")),
                }
                let spec = eai_quant::QuantSpec::int8_activation_per_token();
                let mut qx = dev.quant_output("x", &spec, &[s.m, s.k])?;
                let ea = energy_op(dev, &nd, energy_secs, |i| {
                    dev.quantize_into(&x16, &mut qx)?;
                    dev.gemm_i8(qx.codes(), &w8[i % sets], &mut acc, s)?;
                    Ok(dev.gemm_dequant(&acc, qx.scales(), &sw, None, &mut y16, s.m, s.n)?)
                });
                match ea {
                    Ok(ea) => row(&mut r, "W8A8: act. quant + INT8 + dequant", ea, e16.0),
                    Err(e) => r.line(format!("| W8A8 | {label} | error: {e} |")),
                }
                let ew = energy_op(dev, &nd, energy_secs, |i| {
                    Ok(dev.w8a16(&w8[i % sets], &sw, &x16, None, &mut y16, s)?)
                });
                match ew {
                    Ok(ew) => row(&mut r, "W8A16 GEMV/GEMM", ew, e16.0),
                    Err(e) => r.line(format!("| W8A16 | {label} | error: {e} |")),
                }
            }
        }
    }

    // ---------------------------------------------------------------- summary
    r.line(String::new());
    r.line("## Bars");
    gemm_bars(&mut r, &big_ratio, &fused_bars);
    let worst = gemv_speedups.iter().cloned().fold(f64::INFINITY, f64::min);
    r.line(format!(
        "- W8A16 vs FP16 GEMV at batch 1: worst {worst:.2}× over the 7B shapes; bar ≥ 1.6×: {}",
        if worst >= 1.6 { "met" } else { "NOT met" }
    ));
    if let Some(p) = out_path {
        std::fs::write(&p, &r.md)?;
        println!("wrote {p}");
    }
    Ok(())
}

/// Quantize / dequantize kernels: GB/s and ratio to the copy roof.
/// What one row of the memory-bound table runs.
#[derive(Clone, Copy)]
enum Op {
    /// The 1 GiB device-to-device copy (the roof), re-timed in every round.
    Copy,
    /// Quantize case `.0` from input `.1` (0 f32, 1 bf16, 2 f16).
    Quant(usize, u8),
    /// Dequantize case `.0`'s codes to output `.1` (0 f32, 1 bf16, 2 f16).
    Deq(usize, u8),
    /// `Quant` into an output allocated once for the whole table (round 2's context).
    QuantKeep(usize, u8),
    /// `Quant` under the tuning overrides `QUANT_VARIANTS[.2]` (A/B beside the defaults).
    QuantVar(usize, u8, usize),
    /// `Deq` under the tuning overrides `DEQ_VARIANTS[.2]`.
    DeqVar(usize, u8, usize),
    /// The copy into a destination allocated once for the whole table.
    CopyKeep,
    /// Traffic probe reading `.0` and writing `.1` bytes per item.
    Probe(usize, usize),
    /// The same with the blocked pattern (`traffic_probe_blocked`).
    ProbeBlocked(usize, usize),
}

/// Kernel variants measured beside the defaults in the quantize table, for A/B of what the
/// measured choice (`plan::row_kernel`) picks between: (label, the `EAI_QUANT_TUNING` overrides
/// that select it, the case indices of `quant_rows` it applies to). The split kernel's load hint
/// forced either way (the default streams from f16/bf16, not from f32, so one of the two rows
/// repeats the default per input type), and each small-group kernel for Q8_0.
const QUANT_VARIANTS: &[(&str, &str, &[usize])] = &[
    ("ld.cs", "quant_load_streaming=true", &[0, 1, 2, 5]),
    ("no ld.cs", "quant_load_streaming=false", &[0, 1, 2, 5]),
    ("in-warp", "quant_small_contig=0", &[4]),
    ("contig 2/lane + ld.cs", "quant_small_contig=2", &[4]),
    ("contig 4/lane", "quant_small_contig=4", &[4]),
    // session 14: the in-warp register kernel for group-128 with its next step prefetched
    // (quant_reg_prefetch), with the streaming hint, with 2 vectors per lane, smaller blocks;
    // the split kernel's rows (asymmetric u8, per-token) with one warp per row
    ("prefetch", "quant_reg_prefetch=true", &[3]),
    ("prefetch + ld.cs", "quant_reg_prefetch=true,quant_load_streaming=true", &[3]),
    ("2/lane", "quant_reg_vectors_half=2,quant_reg_vectors_f32=2", &[3]),
    (
        "prefetch 2/lane",
        "quant_reg_prefetch=true,quant_reg_vectors_half=2,quant_reg_vectors_f32=2",
        &[3],
    ),
    ("prefetch, 128 threads", "quant_reg_prefetch=true,quant_reg_threads=128", &[3]),
    ("one warp/row", "quant_split_warps=0", &[0, 2]),
];

/// `--only-16bit`: the cases measured (per-token, per-channel, asymmetric u8, group-128, vLLM),
/// from bf16 and f16 only, with every variant that applies, beside the copy and the 2:1 probes.
const ONLY_16BIT_CASES: &[usize] = &[0, 1, 2, 3, 5];

/// Dequantize variants measured beside the defaults: (label, overrides).
const DEQ_VARIANTS: &[(&str, &str)] = &[("8 blocks/SM", "dequant_blocks_per_sm=8")];

/// The quantize/dequantize table, measured robustly: every row is timed in each of `ROUNDS`
/// rounds (all rows once per round, so slow drifts of the machine hit every kernel alike), each
/// round a median of `samples` event-timed batches; the table gives the median of the round
/// medians and their min–max, and the ratio uses the copy re-timed in the same rounds.
///
/// `vary`: before each measurement a spacer of 48 MiB × (1 + (7·round + row) mod 16) is taken
/// from the memory pool and held until the measurement ends, so that each round places the
/// row's destination elsewhere and the median and spread cover placements (round 3 found
/// several kernels' ratios depend on where their buffers lie; the copy's does not). Added
/// after round 3's run; not yet run on a GPU.
fn quant_rows(
    dev: &CudaDevice,
    r: &mut Report,
    samples: usize,
    roof: f64,
    vary: bool,
    only16: bool,
) -> BoxResult<()> {
    use eai_quant::{Granularity, QuantSpec};
    const ROUNDS: usize = 5;
    let n = 1usize << 28;
    let cols = 4096usize;
    let rows = n / cols;
    let mut x32 = dev.zeros::<f32>(n)?;
    dev.fill_uniform(&mut x32, 3, -4.0, 4.0)?;
    let mut x16 = dev.zeros::<f16>(n)?;
    dev.cast(&x32, &mut x16)?;
    let mut xb = dev.zeros::<half::bf16>(n)?;
    dev.cast(&x32, &mut xb)?;
    let copy_bytes = 1usize << 30;
    let src = random_i8(dev, copy_bytes, 1)?;
    let mut dst_keep = dev.zeros::<i8>(copy_bytes)?;
    let probe_src = dev.zeros::<u8>(copy_bytes)?;
    let cases: Vec<(&str, QuantSpec)> = vec![
        ("quantize per-token (dynamic act.) i8", QuantSpec::int8_activation_per_token()),
        ("quantize per-channel (axis 0) i8", QuantSpec::int8_weight()),
        ("quantize per-channel asym u8", QuantSpec::uint8_asymmetric()),
        (
            "quantize per-group 128 i8",
            QuantSpec {
                granularity: Granularity::PerGroup { size: 128 },
                ..QuantSpec::int8_weight()
            },
        ),
        ("quantize GGML Q8_0 (group 32, f16 scale)", QuantSpec::ggml_q8_0()),
        ("quantize vLLM per-token (127/amax)", QuantSpec::vllm_int8_activation_per_token()),
        (
            "quantize per-tensor i8 (2 passes)",
            QuantSpec { granularity: Granularity::PerTensor, ..QuantSpec::int8_weight() },
        ),
        (
            "quantize per-channel axis 1 (2 passes)",
            QuantSpec {
                granularity: Granularity::PerChannel { axis: 1 },
                ..QuantSpec::int8_weight()
            },
        ),
    ];
    // Sources (inputs, the codes dequantized, the copy's source) live for the whole table;
    // every destination (codes written by a quantize row, the output of a dequantize row, the
    // copy's destination) is allocated right before its measurement and freed after it, for
    // the kernels and the copy alike. `QuantKeep`/`CopyKeep` rows repeat round 2's context
    // (destination allocated once, with the table's other buffers live) for comparison.
    let mut outs = Vec::new();
    for (_, spec) in &cases {
        let mut out = dev.quant_output("bench", spec, &[rows, cols])?;
        dev.quantize_into(&x32, &mut out)?;
        out.check(dev, &x32)?;
        outs.push(out);
    }
    let mut keep = dev.quant_output("keep", &cases[3].1, &[rows, cols])?;
    let mut ops = vec![Op::Copy, Op::CopyKeep];
    for c in 0..cases.len() {
        if only16 {
            if ONLY_16BIT_CASES.contains(&c) {
                ops.extend([Op::Quant(c, 1), Op::Quant(c, 2)]);
                for (v, (_, _, applies)) in QUANT_VARIANTS.iter().enumerate() {
                    if applies.contains(&c) {
                        ops.extend([Op::QuantVar(c, 1, v), Op::QuantVar(c, 2, v)]);
                    }
                }
            }
            continue;
        }
        ops.extend([Op::Quant(c, 0), Op::Quant(c, 1), Op::Quant(c, 2)]);
        if c == 3 {
            ops.extend([Op::QuantKeep(c, 1), Op::QuantKeep(c, 2), Op::QuantKeep(c, 0)]);
        }
        for (v, (_, _, applies)) in QUANT_VARIANTS.iter().enumerate() {
            if applies.contains(&c) {
                ops.extend([Op::QuantVar(c, 0, v), Op::QuantVar(c, 1, v), Op::QuantVar(c, 2, v)]);
            }
        }
        if c == 1 || c == 3 || c == 4 {
            ops.extend([Op::Deq(c, 0), Op::Deq(c, 1), Op::Deq(c, 2)]);
            for v in 0..DEQ_VARIANTS.len() {
                ops.extend([Op::DeqVar(c, 0, v), Op::DeqVar(c, 1, v), Op::DeqVar(c, 2, v)]);
            }
        }
    }
    if only16 {
        ops.extend([Op::Probe(16, 8), Op::ProbeBlocked(16, 8)]);
    } else {
        ops.extend([
            Op::Probe(16, 16),
            Op::Probe(16, 4),
            Op::Probe(16, 8),
            Op::Probe(8, 16),
            Op::Probe(4, 16),
            Op::ProbeBlocked(16, 16),
            Op::ProbeBlocked(16, 4),
            Op::ProbeBlocked(16, 8),
            Op::ProbeBlocked(8, 16),
            Op::ProbeBlocked(4, 16),
        ]);
    }
    let mut times = vec![Vec::with_capacity(ROUNDS); ops.len()];
    for round in 0..ROUNDS {
        for (i, op) in ops.iter().enumerate() {
            let _spacer = if vary {
                Some(dev.zeros::<u8>((1 + (7 * round + i) % 16) * (48usize << 20))?)
            } else {
                None
            };
            let t = match *op {
                Op::Copy => {
                    let mut dst = dev.zeros::<i8>(copy_bytes)?;
                    time_op(dev, samples, |_| Ok(dev.copy(&src, &mut dst)?))?
                }
                Op::CopyKeep => time_op(dev, samples, |_| Ok(dev.copy(&src, &mut dst_keep)?))?,
                Op::QuantVar(c, input, v) => {
                    let base = dev.tuning();
                    dev.set_tuning(base.with_overrides(QUANT_VARIANTS[v].1));
                    let mut out = dev.quant_output("bench", &cases[c].1, &[rows, cols])?;
                    let t = match input {
                        0 => time_op(dev, samples, |_| Ok(dev.quantize_into(&x32, &mut out)?)),
                        1 => time_op(dev, samples, |_| Ok(dev.quantize_into(&xb, &mut out)?)),
                        _ => time_op(dev, samples, |_| Ok(dev.quantize_into(&x16, &mut out)?)),
                    };
                    dev.set_tuning(base);
                    let t = t?;
                    out.check(dev, &x32)?;
                    t
                }
                Op::Quant(c, input) | Op::QuantKeep(c, input) => {
                    let mut fresh;
                    let out = if matches!(op, Op::QuantKeep(..)) {
                        &mut keep
                    } else {
                        fresh = dev.quant_output("bench", &cases[c].1, &[rows, cols])?;
                        &mut fresh
                    };
                    let t = match input {
                        0 => time_op(dev, samples, |_| Ok(dev.quantize_into(&x32, out)?))?,
                        1 => time_op(dev, samples, |_| Ok(dev.quantize_into(&xb, out)?))?,
                        _ => time_op(dev, samples, |_| Ok(dev.quantize_into(&x16, out)?))?,
                    };
                    out.check(dev, &x32)?;
                    t
                }
                Op::Deq(c, o) | Op::DeqVar(c, o, _) => {
                    let out = &outs[c];
                    let base = dev.tuning();
                    if let Op::DeqVar(_, _, v) = *op {
                        dev.set_tuning(base.with_overrides(DEQ_VARIANTS[v].1));
                    }
                    let t = match o {
                        0 => {
                            let mut y = dev.zeros::<f32>(n)?;
                            time_op(dev, samples, |_| Ok(dev.dequantize_into(out, &mut y)?))
                        }
                        1 => {
                            let mut y = dev.zeros::<half::bf16>(n)?;
                            time_op(dev, samples, |_| Ok(dev.dequantize_into(out, &mut y)?))
                        }
                        _ => {
                            let mut y = dev.zeros::<f16>(n)?;
                            time_op(dev, samples, |_| Ok(dev.dequantize_into(out, &mut y)?))
                        }
                    };
                    dev.set_tuning(base);
                    t?
                }
                Op::Probe(rd, wr) | Op::ProbeBlocked(rd, wr) => {
                    let blocked = matches!(op, Op::ProbeBlocked(..));
                    // bytes as for the kernels: 2^28 elements' worth of the smaller side
                    let items = n * 4 / rd.max(wr);
                    let mut dst = dev.zeros::<u8>(items * wr)?;
                    assert!(items * rd <= probe_src.len());
                    let src_view = &probe_src;
                    time_op(dev, samples, |_| {
                        let _ = if blocked {
                            dev.traffic_probe_blocked(src_view, &mut dst, rd, wr)?
                        } else {
                            dev.traffic_probe(src_view, &mut dst, rd, wr)?
                        };
                        Ok(())
                    })?
                }
            };
            times[i].push(t);
        }
    }
    let median = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    let copy_t = median(&times[0]);
    let copy_gbs = gbs(2.0 * copy_bytes as f64, copy_t);
    r.line(String::new());
    r.line(format!(
        "### Quantize / dequantize, {ROUNDS} interleaved rounds (median of {samples} batches each; destinations fresh for every row and the copy{})",
        if vary { "; placement varied by a pool spacer per round" } else { "" }
    ));
    r.line(String::new());
    r.line(format!(
        "Ratio = useful GB/s ÷ the copy timed in the same rounds ({copy_gbs:.0} GB/s median, rounds {:.0}–{:.0}; {:.0} at the start). Spread: the ratio of the slowest and the fastest round.",
        gbs(2.0 * copy_bytes as f64, times[0].iter().copied().fold(0.0, f64::max)),
        gbs(2.0 * copy_bytes as f64, times[0].iter().copied().fold(f64::INFINITY, f64::min)),
        roof
    ));
    r.line(String::new());
    r.line("| kernel | elements (probes: items; copy: bytes) | time (µs, median) | GB/s | ratio to copy | spread of rounds |");
    r.line("|---|---|---|---|---|---|");
    let names = ["f32", "bf16", "f16"];
    for (i, op) in ops.iter().enumerate().skip(1) {
        let (label, bytes) = match *op {
            Op::CopyKeep => (
                "device-to-device copy 1 GiB, destination allocated once".to_string(),
                2.0 * copy_bytes as f64,
            ),
            Op::Probe(rd, wr) | Op::ProbeBlocked(rd, wr) => {
                let items = (n * 4 / rd.max(wr)) as f64;
                let pattern = if matches!(op, Op::ProbeBlocked(..)) { " [blocked]" } else { "" };
                (
                    format!(
                        "traffic probe{pattern}: read {rd} B, write {wr} B per item, no arithmetic"
                    ),
                    items * (rd + wr) as f64,
                )
            }
            Op::Quant(c, input) | Op::QuantKeep(c, input) | Op::QuantVar(c, input, _) => {
                let esz = if input == 0 { 4.0 } else { 2.0 };
                let groups = outs[c].scales().len() as f64;
                let useful = (esz + 1.0) * n as f64 + 8.0 * groups;
                let tag = match *op {
                    Op::QuantKeep(..) => " [output allocated once]".to_string(),
                    Op::QuantVar(_, _, v) => format!(" [{}]", QUANT_VARIANTS[v].0),
                    _ => String::new(),
                };
                let label = format!("{}{tag} from {}", cases[c].0, names[input as usize]);
                if cases[c].0.contains("2 passes") {
                    (format!("{label}: useful bytes (input once)"), useful)
                } else {
                    (label, useful)
                }
            }
            Op::Deq(c, o) | Op::DeqVar(c, o, _) => {
                let what = match c {
                    1 => "per-channel i8",
                    3 => "per-group 128 i8",
                    _ => "Q8_0",
                };
                let groups = outs[c].scales().len() as f64;
                let esz = if o == 0 { 4.0 } else { 2.0 };
                let tag = match *op {
                    Op::DeqVar(_, _, v) => format!(" [{}]", DEQ_VARIANTS[v].0),
                    _ => String::new(),
                };
                (
                    format!("dequantize {what}{tag} → {}", names[o as usize]),
                    (esz + 1.0) * n as f64 + 8.0 * groups,
                )
            }
            Op::Copy => continue,
        };
        let t = median(&times[i]);
        let g = gbs(bytes, t);
        let lo = times[i].iter().copied().fold(0.0, f64::max);
        let hi = times[i].iter().copied().fold(f64::INFINITY, f64::min);
        r.line(format!(
            "| {label} | {} | {:.1} | {g:.0} | {:.3} | {:.3}–{:.3} |",
            match *op {
                Op::Probe(rd, wr) | Op::ProbeBlocked(rd, wr) => n * 4 / rd.max(wr),
                Op::CopyKeep => copy_bytes,
                _ => n,
            },
            t * 1e6,
            g / copy_gbs,
            gbs(bytes, lo) / copy_gbs,
            gbs(bytes, hi) / copy_gbs
        ));
    }
    Ok(())
}

/// `--profile [--profile-log2 N]`: one launch of each kernel under study, for `ncu -k
/// regex:...` (no warm-up, no timing: the profiler replays each launch); 2^N elements (default
/// 28, the table's size; 16..=30), 4096-element rows. Order: per-token i8 from f32 (a kernel at the bar, for
/// reference) and from bf16; Q8_0 from f32 and bf16; group-128 from bf16 (fresh output, then an
/// output allocated after an 8 GiB ballast, as in round 2's table); dequantize per-channel to
/// f32 and to bf16; the traffic probes 16→8 and 4→16 bytes. Round 3's run of it under
/// `ncu --set full` failed on the first kernel (docs/results/quant-gpu.md).
fn profile(dev: &CudaDevice, log2: u32) -> BoxResult<()> {
    use eai_quant::{Granularity, QuantSpec};
    let n = 1usize << log2;
    let (rows, cols) = (n / 4096, 4096usize);
    let mut x32 = dev.zeros::<f32>(n)?;
    dev.fill_uniform(&mut x32, 3, -4.0, 4.0)?;
    let mut xb = dev.zeros::<half::bf16>(n)?;
    dev.cast(&x32, &mut xb)?;
    let g128 =
        QuantSpec { granularity: Granularity::PerGroup { size: 128 }, ..QuantSpec::int8_weight() };
    let pt = QuantSpec::int8_activation_per_token();
    let q8 = QuantSpec::ggml_q8_0();
    let run = |spec: &QuantSpec, input: u8| -> BoxResult<()> {
        let mut out = dev.quant_output("prof", spec, &[rows, cols])?;
        if input == 0 {
            dev.quantize_into(&x32, &mut out)?;
        } else {
            dev.quantize_into(&xb, &mut out)?;
        }
        dev.synchronize()?;
        Ok(())
    };
    run(&pt, 0)?;
    run(&pt, 1)?;
    run(&q8, 0)?;
    run(&q8, 1)?;
    run(&g128, 1)?;
    {
        let ballast = dev.zeros::<u8>(8usize << 30)?;
        run(&g128, 1)?;
        drop(ballast);
    }
    let pc = dev.quantize("pc", &QuantSpec::int8_weight(), &x32, &[rows, cols])?;
    dev.dequantize_into(&pc, &mut x32)?;
    dev.dequantize_into(&pc, &mut xb)?;
    let src = dev.zeros::<u8>(4 * n)?;
    let mut dst = dev.zeros::<u8>(4 * n)?;
    dev.traffic_probe(&src, &mut dst, 16, 8)?;
    dev.traffic_probe(&src, &mut dst, 4, 16)?;
    dev.synchronize()?;
    println!("profile: done");
    Ok(())
}
