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
//! each kernel under study and exit, for `ncu -k regex:...`), `--profile-gemm` (the same for the
//! wgmma kernels at 4096³). `--gemm-only` runs only the GEMM
//! sections (3 and 3b: the separate dequantize pass against the fused `gemm_i8_dequant`).
//! `--only-16bit` runs only the copy, the row-wise quantize cases from bf16/f16 (the default
//! kernel beside its variants, `QUANT_VARIANTS`) and the 2:1 traffic probes (< 1 minute);
//! `--only-two-pass` the copy, the two-pass cases (per-tensor, per-channel on the last axis)
//! from f32, bf16 and f16 with their variants, and the two-pass probes that bound them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "cuda_bench_parts/gemm_fused.rs"]
mod gemm_fused;
#[path = "cuda_bench_parts/quant_table.rs"]
mod quant_table;
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

/// Time to run a workload back to back before timing it in the GEMM tables (see
/// [`time_op_settled`]).
const SETTLE: Duration = Duration::from_millis(200);

/// A row timed after settling: median seconds per call ([`time_op`]) and, where NVML answers,
/// the settle window's joules per call, average watts and the SM clock at its end.
#[derive(Clone, Copy, Debug, Default)]
struct Settled {
    secs: f64,
    joules: Option<f64>,
    watts: Option<f64>,
    sm_mhz: Option<u32>,
}

/// [`time_op`] after ≥ `settle` of back-to-back calls of `f`. A GEMM at 4096³ holds an H100 at
/// its 700 W power limit with the SM clock between 1.16 and 1.98 GHz (session 15), so a row
/// timed straight after a heavier one runs at the clock that one left: settling first times
/// every row in its own steady state, as a user's sustained load runs. With `nvml`, the
/// settle window also gives the row's energy per call (NVML's total-energy counter, mJ).
fn time_op_settled(
    dev: &CudaDevice,
    samples: usize,
    settle: Duration,
    nvml: Option<&nvml_wrapper::Device<'_>>,
    mut f: impl FnMut(usize) -> BoxResult<()>,
) -> BoxResult<Settled> {
    f(0)?;
    dev.synchronize()?;
    let e0 = nvml.and_then(|d| d.total_energy_consumption().ok());
    let t0 = Instant::now();
    let mut calls = 0usize;
    while t0.elapsed() < settle {
        for _ in 0..8 {
            f(calls)?;
            calls += 1;
        }
        dev.synchronize()?;
    }
    let secs = t0.elapsed().as_secs_f64();
    let e1 = nvml.and_then(|d| d.total_energy_consumption().ok());
    let sm_mhz =
        nvml.and_then(|d| d.clock_info(nvml_wrapper::enum_wrappers::device::Clock::SM).ok());
    let joules = match (e0, e1) {
        (Some(a), Some(b)) if b > a && calls > 0 => Some((b - a) as f64 / 1e3),
        _ => None,
    };
    Ok(Settled {
        secs: time_op(dev, samples, f)?,
        joules: joules.map(|j| j / calls as f64),
        watts: joules.map(|j| j / secs),
        sm_mhz,
    })
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

/// The operands of one GEMM shape for the FP16 and INT8 rows: activations, `sets` rotating
/// weight copies (so the weights do not run from L2), per-row and per-column scales, a bias,
/// the f16 output and the int32 accumulator. Seeds start at `seed`.
struct GemmOperands {
    sets: usize,
    x16: DeviceBuffer<f16>,
    w16: Vec<DeviceBuffer<f16>>,
    x8: DeviceBuffer<i8>,
    w8: Vec<DeviceBuffer<i8>>,
    sx: DeviceBuffer<f32>,
    sw: DeviceBuffer<f32>,
    bias: DeviceBuffer<f32>,
    y16: DeviceBuffer<f16>,
    acc: DeviceBuffer<i32>,
}

impl GemmOperands {
    fn new(dev: &CudaDevice, s: GemmShape, seed: u64) -> BoxResult<Self> {
        let sets = rotation(s.n * s.k * 2, dev.info().l2_cache_bytes);
        Ok(GemmOperands {
            sets,
            x16: random_f16(dev, s.m * s.k, seed, 1.0)?,
            w16: (0..sets)
                .map(|i| random_f16(dev, s.n * s.k, seed + 10 + i as u64, 0.05))
                .collect::<BoxResult<_>>()?,
            x8: random_i8(dev, s.m * s.k, seed + 30)?,
            w8: (0..sets)
                .map(|i| random_i8(dev, s.n * s.k, seed + 40 + i as u64))
                .collect::<BoxResult<_>>()?,
            sx: random_scales(dev, s.m, seed + 60)?,
            sw: random_scales(dev, s.n, seed + 61)?,
            bias: random_scales(dev, s.n, seed + 62)?,
            y16: dev.zeros::<f16>(s.m * s.n)?,
            acc: dev.zeros::<i32>(s.m * s.n)?,
        })
    }
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
    if args.iter().any(|a| a == "--profile-gemm") {
        return profile_gemm(&dev);
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
    let only2 = args.iter().any(|a| a == "--only-two-pass");
    if !only16 && !only2 {
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
    if only16 || only2 {
        let subset =
            if only16 { quant_table::Subset::Only16 } else { quant_table::Subset::TwoPass };
        quant_table::quant_rows(&dev, &mut r, samples, roof, false, subset)?;
        r.line(String::new());
        r.line(format!("Tuning used: `{}`", dev.tuning().to_overrides()));
        if let Some(p) = out_path {
            std::fs::write(&p, &r.md)?;
            println!("wrote {p}");
        }
        return Ok(());
    }
    quant_table::quant_rows(
        &dev,
        &mut r,
        samples,
        roof,
        args.iter().any(|a| a == "--vary-placement"),
        quant_table::Subset::All,
    )?;
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
            "- INT8 vs FP16 at {m}³: {raw:.2}× (GEMM alone, int32 out), {epi:.2}× (`gemm_i8_dequant` → f16, the default path); bar ≥ 1.6× (with the dequantize): {}",
            if *epi >= 1.6 { "met" } else { "NOT met" }
        ));
    }
    for b in fused_bars {
        r.line(b);
    }
}

/// Section 3: INT8 GEMM, INT8 + separate dequantize and the default `gemm_i8_dequant` (what a
/// user calls) against FP16 over the shape list, each row settled first ([`time_op_settled`]);
/// returns `(M, GEMM ×FP16, gemm_i8_dequant ×FP16)` for the square shapes.
fn gemm_table(
    dev: &CudaDevice,
    r: &mut Report,
    samples: usize,
) -> BoxResult<Vec<(usize, f64, f64)>> {
    let info = dev.info().clone();
    r.line(String::new());
    r.line(
        "## INT8 GEMM (cuBLASLt int8×int8→int32) and INT8 GEMM + dequantize → f16 vs cuBLAS FP16 GEMM (f16 in/out, f32 accumulate)",
    );
    r.line(String::new());
    r.line(format!(
        "Each row after {} ms of back-to-back calls (its own clock and power state), then the median of {samples} event-timed batches. `separate` = `gemm_i8` + `gemm_dequant`; `cuBLASLt` = `gemm_i8_dequant` with `gemm_wgmma=false` (row panels, measured plan); `wgmma` = `gemm_i8_dequant_wgmma` (v{}; — where it does not apply); `default` = `gemm_i8_dequant` as a user calls it, which picks one of the two (`use_wgmma`: shown as L or W).",
        SETTLE.as_millis(),
        eai_quant::cuda::WgmmaKernel::default().name().trim_start_matches('v'),
    ));
    r.line(String::new());
    r.line("| M | N | K | FP16 (µs) | FP16 TFLOPS | INT8 (µs) | INT8 TOPS | ×FP16 | separate (µs) | ×FP16 | cuBLASLt (µs) | wgmma (µs) | default (µs) | TOPS | ×FP16 |");
    r.line("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    let mut shapes = vec![GemmShape::new(4096, 4096, 4096), GemmShape::new(8192, 8192, 8192)];
    for m in [1, 16, 128, 256, 512, 1024, 2048] {
        for (n, k) in [(4096, 4096), (11008, 4096), (4096, 11008)] {
            shapes.push(GemmShape::new(m, n, k));
        }
    }
    let timed = |f: &mut dyn FnMut(usize) -> BoxResult<()>| -> BoxResult<f64> {
        Ok(time_op_settled(dev, samples, SETTLE, None, f)?.secs)
    };
    let mut big_ratio = Vec::new();
    for s in &shapes {
        let res = (|| -> BoxResult<[f64; 6]> {
            let GemmOperands { sets, x16, w16, x8: x, w8: ws, sx, sw, mut y16, mut acc, .. } =
                GemmOperands::new(dev, *s, 10)?;
            let t16 = timed(&mut |i| Ok(dev.gemm_f16(&x16, &w16[i % sets], &mut y16, *s)?))?;
            let mut y = y16;
            let t8 = timed(&mut |i| Ok(dev.gemm_i8(&x, &ws[i % sets], &mut acc, *s)?))?;
            let t8e = timed(&mut |i| {
                dev.gemm_i8(&x, &ws[i % sets], &mut acc, *s)?;
                Ok(dev.gemm_dequant(&acc, &sx, &sw, None, &mut y, s.m, s.n)?)
            })?;
            let base = dev.tuning();
            let mut lt = base;
            lt.gemm_wgmma = Some(false);
            dev.set_tuning(lt);
            let t8l = timed(&mut |i| {
                Ok(dev.gemm_i8_dequant(&x, &ws[i % sets], &sx, &sw, None, &mut y, *s)?)
            });
            dev.set_tuning(base);
            let t8l = t8l?;
            let t8w = if dev.wgmma_applies(s) {
                timed(&mut |i| {
                    Ok(dev.gemm_i8_dequant_wgmma(&x, &ws[i % sets], &sx, &sw, None, &mut y, *s)?)
                })?
            } else {
                f64::NAN
            };
            let t8d = timed(&mut |i| {
                Ok(dev.gemm_i8_dequant(&x, &ws[i % sets], &sx, &sw, None, &mut y, *s)?)
            })?;
            Ok([t16, t8, t8e, t8l, t8w, t8d])
        })();
        let [t16, t8, t8e, t8l, t8w, t8d] = match res {
            Ok(v) => v,
            Err(e) => {
                r.line(format!("| {} | {} | {} | error: {e} |", s.m, s.n, s.k));
                continue;
            }
        };
        let ops = s.ops();
        if s.m == s.n && s.n == s.k {
            big_ratio.push((s.m, t16 / t8, t16 / t8d));
        }
        let picked = if eai_quant::cuda::use_wgmma(&dev.tuning(), s, info.multiprocessors)
            && dev.wgmma_applies(s)
        {
            "W"
        } else {
            "L"
        };
        let wg = if t8w.is_nan() { "—".to_string() } else { format!("{:.1}", t8w * 1e6) };
        r.line(format!(
            "| {} | {} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.2} | {:.1} | {:.2} | {:.1} | {wg} | {:.1} ({picked}) | {:.1} | {:.2} |",
            s.m,
            s.n,
            s.k,
            t16 * 1e6,
            ops / t16 / 1e12,
            t8 * 1e6,
            ops / t8 / 1e12,
            t16 / t8,
            t8e * 1e6,
            t16 / t8e,
            t8l * 1e6,
            t8d * 1e6,
            ops / t8d / 1e12,
            t16 / t8d
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
                let GemmOperands { sets, x16, w16, x8, w8, sx, sw, mut y16, mut acc, .. } =
                    GemmOperands::new(dev, s, 100)?;
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
                // what a user calls: the default path (the wgmma kernel where `use_wgmma` takes it)
                let ed = energy_op(dev, &nd, energy_secs, |i| {
                    Ok(dev.gemm_i8_dequant(&x8, &w8[i % sets], &sx, &sw, None, &mut y16, s)?)
                });
                match ed {
                    Ok(ed) => row(&mut r, "INT8 `gemm_i8_dequant` (default)", ed, e16.0),
                    Err(e) => r.line(format!("| INT8 `gemm_i8_dequant` | {label} | error: {e} |")),
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

/// `--profile [--profile-log2 N]`: one launch of each kernel under study, for `ncu -k
/// regex:...` (no warm-up, no timing: the profiler replays each launch); 2^N elements (default
/// 28, the table's size; 16..=30), 4096-element rows. Order: per-token i8 from f32 (a kernel at the bar, for
/// reference) and from bf16; Q8_0 from f32 and bf16; group-128 from bf16 (fresh output, then an
/// output allocated after an 8 GiB ballast, as in round 2's table); dequantize per-channel to
/// f32 and to bf16; the traffic probes 16→8 and 4→16 bytes. Round 3's run of it under
/// `ncu --set full` failed on the first kernel (docs/results/quant-gpu.md).
/// `--profile-gemm`: three launches of each wgmma kernel at 4096³ (f16 out, no bias), for
/// `ncu -k regex:gemm_wgmma4 --launch-skip 2` and the like.
fn profile_gemm(dev: &CudaDevice) -> BoxResult<()> {
    use eai_quant::cuda::WgmmaKernel;
    let s = GemmShape::new(4096, 4096, 4096);
    let x = random_i8(dev, s.m * s.k, 1)?;
    let w = random_i8(dev, s.n * s.k, 2)?;
    let sx = random_scales(dev, s.m, 3)?;
    let sw = random_scales(dev, s.n, 4)?;
    let mut y = dev.zeros::<f16>(s.m * s.n)?;
    if !dev.wgmma_applies(&s) {
        return Err("--profile-gemm: the wgmma kernels need compute capability 9.0".into());
    }
    for k in WgmmaKernel::ALL {
        for _ in 0..3 {
            dev.gemm_i8_dequant_wgmma_kernel(&x, &w, &sx, &sw, None, &mut y, s, k)?;
        }
        dev.synchronize()?;
    }
    println!("profile-gemm: done");
    Ok(())
}

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
    // per-channel on the last axis (two passes: the column kernels) from f32 and bf16
    let pc1 =
        QuantSpec { granularity: Granularity::PerChannel { axis: 1 }, ..QuantSpec::int8_weight() };
    run(&pc1, 0)?;
    run(&pc1, 1)?;
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
