//! `cuda_bench --sweep`: the launch-parameter sweeps of the quantize, dequantize and two-pass
//! kernels and the write-only roof, each row a ratio to the copy bandwidth of the same run.

use super::*;

/// Launch-parameter sweep of the pipelined row quantizer (stages × tile bytes × threads) on the
/// cases that use it; every setting computes the same bits.
pub(super) fn sweep_quant(
    dev: &CudaDevice,
    r: &mut Report,
    samples: usize,
    roof: f64,
) -> BoxResult<()> {
    use eai_quant::{Granularity, QuantSpec};
    let n = 1usize << 28;
    let (rows, cols) = (n / 4096, 4096usize);
    let mut x32 = dev.zeros::<f32>(n)?;
    dev.fill_uniform(&mut x32, 3, -4.0, 4.0)?;
    let mut xb = dev.zeros::<half::bf16>(n)?;
    dev.cast(&x32, &mut xb)?;
    r.line(String::new());
    r.line("## Row quantizer launch sweep (ratio of useful bytes to copy bandwidth)");
    r.line(String::new());
    let cases: Vec<(&str, QuantSpec)> = vec![
        ("per-token", QuantSpec::int8_activation_per_token()),
        (
            "group-128",
            QuantSpec {
                granularity: Granularity::PerGroup { size: 128 },
                ..QuantSpec::int8_weight()
            },
        ),
        ("Q8_0", QuantSpec::ggml_q8_0()),
    ];
    let mut header = "| stages | tile bytes | threads | vectors/lane |".to_string();
    for (c, _) in &cases {
        header.push_str(&format!(" {c} f32 | {c} bf16 |"));
    }
    header.push_str(" geo. mean |");
    r.line(header);
    r.line(format!("|---|---|---|---|{}", "---|".repeat(2 * cases.len() + 1)));
    let default = dev.tuning();
    let mut best = (0.0f64, default);
    for (stages, tile, threads, vpl) in [
        (2, 16384, 128, 4),
        (2, 16384, 128, 8),
        (2, 8192, 128, 4),
        (2, 8192, 128, 8),
        (2, 16384, 64, 4),
        (2, 16384, 64, 8),
        (2, 8192, 64, 8),
        (3, 8192, 64, 8),
        (2, 16384, 256, 8),
        (2, 32768, 128, 8),
        (2, 16384, 128, 16),
        (3, 16384, 128, 8),
        (2, 8192, 64, 4),
        (3, 16384, 64, 8),
    ] {
        let mut t = default;
        t.quant_stages = stages;
        t.quant_tile_bytes = tile;
        t.quant_threads = threads;
        t.quant_vectors_per_lane = vpl;
        dev.set_tuning(t);
        let mut line = format!("| {stages} | {tile} | {threads} | {vpl} |");
        let mut log_sum = 0.0;
        for (_, spec) in &cases {
            let mut out = dev.quant_output("sweep", spec, &[rows, cols])?;
            let groups = out.scales().len() as f64;
            let t32 = time_op(dev, samples, |_| Ok(dev.quantize_into(&x32, &mut out)?))?;
            let tb = time_op(dev, samples, |_| Ok(dev.quantize_into(&xb, &mut out)?))?;
            let g32 = gbs(5.0 * n as f64 + 8.0 * groups, t32) / roof;
            let gb = gbs(3.0 * n as f64 + 8.0 * groups, tb) / roof;
            log_sum += g32.ln() + gb.ln();
            line.push_str(&format!(" {g32:.3} | {gb:.3} |"));
        }
        let geo = (log_sum / (2 * cases.len()) as f64).exp();
        line.push_str(&format!(" {geo:.3} |"));
        r.line(line);
        if geo > best.0 {
            best = (geo, dev.tuning());
        }
    }
    let b = best.1;
    r.line(String::new());
    r.line(format!(
        "Best by geometric mean: stages {}, tile {} B, {} threads, {} vectors/lane (library default: stages {}, tile {} B, {} threads, {} vectors/lane); the tables below use the best.",
        b.quant_stages, b.quant_tile_bytes, b.quant_threads, b.quant_vectors_per_lane,
        default.quant_stages, default.quant_tile_bytes, default.quant_threads, default.quant_vectors_per_lane
    ));
    dev.set_tuning(b);
    Ok(())
}

/// Write-only and read-heavy reference points: `cuMemsetD8` of 1 GiB (bytes written) next to
/// the copy, to tell how much of a write-heavy kernel's gap is the memory's and not the
/// kernel's.
pub(super) fn write_roof(
    dev: &CudaDevice,
    r: &mut Report,
    samples: usize,
    roof: f64,
) -> BoxResult<()> {
    use eai_quant::cuda::cudarc::driver::DevicePtr;
    let bytes = 1usize << 30;
    let buf = dev.zeros::<u8>(bytes)?;
    let stream = dev.stream().clone();
    let t = time_op(dev, samples, |i| {
        let (ptr, _sync) = buf.as_cudarc().device_ptr(&stream);
        // SAFETY: `ptr` addresses the `bytes` bytes of `buf`, alive for the call; the memset is
        // enqueued on the stream that owns the buffer.
        unsafe {
            eai_quant::cuda::cudarc::driver::result::memset_d8_async(
                ptr,
                (i & 0x7f) as u8 | 1,
                bytes,
                stream.cu_stream(),
            )
        }?;
        Ok(())
    })?;
    let g = gbs(bytes as f64, t);
    r.line(String::new());
    r.line(format!(
        "Write-only reference: cuMemsetD8 of 1 GiB: {:.1} µs, {g:.0} GB/s written = {:.3} of copy",
        t * 1e6,
        g / roof
    ));
    Ok(())
}

/// Sweep of the register-resident row quantizer: for each block size, the
/// best vectors/lane of the group-128 cases (per input width) and of the small groups (Q8_0);
/// the combination with the best geometric mean over the cases is kept for the tables.
pub(super) fn sweep_reg(
    dev: &CudaDevice,
    r: &mut Report,
    samples: usize,
    roof: f64,
) -> BoxResult<()> {
    use eai_quant::{Granularity, QuantSpec};
    let n = 1usize << 28;
    let (rows, cols) = (n / 4096, 4096usize);
    let mut x32 = dev.zeros::<f32>(n)?;
    dev.fill_uniform(&mut x32, 3, -4.0, 4.0)?;
    let mut xb = dev.zeros::<half::bf16>(n)?;
    dev.cast(&x32, &mut xb)?;
    let mut xh = dev.zeros::<f16>(n)?;
    dev.cast(&x32, &mut xh)?;
    let g128 =
        QuantSpec { granularity: Granularity::PerGroup { size: 128 }, ..QuantSpec::int8_weight() };
    let ratio = |spec: &QuantSpec, input: u8| -> BoxResult<f64> {
        let mut out = dev.quant_output("sweep", spec, &[rows, cols])?;
        let groups = out.scales().len() as f64;
        let (tt, esz) = match input {
            0 => (time_op(dev, samples, |_| Ok(dev.quantize_into(&x32, &mut out)?))?, 4.0),
            1 => (time_op(dev, samples, |_| Ok(dev.quantize_into(&xb, &mut out)?))?, 2.0),
            _ => (time_op(dev, samples, |_| Ok(dev.quantize_into(&xh, &mut out)?))?, 2.0),
        };
        out.check(dev, &x32)?;
        Ok(gbs((esz + 1.0) * n as f64 + 8.0 * groups, tt) / roof)
    };
    r.line(String::new());
    r.line("## Register row quantizer sweep (ratio of useful bytes to copy bandwidth)");
    r.line(String::new());
    r.line("Each row shows the best vectors/lane (v) of the group-128 cases and of Q8_0 (small groups: one value for both input widths) with its ratio.");
    r.line(String::new());
    r.line("| threads | per-token bf16 | per-token f16 | asym u8 bf16 | group-128 bf16 (v) | group-128 f32 (v) | Q8_0 bf16 (v) | Q8_0 f32 (v) | geo. mean |");
    r.line("|---|---|---|---|---|---|---|---|---|");
    let default = dev.tuning();
    let mut best = (0.0f64, default);
    for threads in [256u32] {
        let mut t = default;
        t.quant_reg_threads = threads;
        dev.set_tuning(t);
        let pt_b = ratio(&QuantSpec::int8_activation_per_token(), 1)?;
        let pt_h = ratio(&QuantSpec::int8_activation_per_token(), 2)?;
        let asym = ratio(&QuantSpec::uint8_asymmetric(), 1)?;
        let (mut gb, mut gf) = ((0.0f64, 0u32), (0.0f64, 0u32));
        for v in [2u32, 4, 8] {
            let mut tv = t;
            tv.quant_reg_vectors_half = v;
            tv.quant_reg_vectors_f32 = v;
            dev.set_tuning(tv);
            let b = ratio(&g128, 1)?;
            let f = ratio(&g128, 0)?;
            if b > gb.0 {
                gb = (b, v);
            }
            if f > gf.0 {
                gf = (f, v);
            }
        }
        let mut qs = (0.0f64, 0u32, 0.0f64, 0.0f64);
        for v in [1u32, 2, 4, 8] {
            let mut tv = t;
            tv.quant_reg_vectors_small = v;
            dev.set_tuning(tv);
            let b = ratio(&QuantSpec::ggml_q8_0(), 1)?;
            let f = ratio(&QuantSpec::ggml_q8_0(), 0)?;
            let geo = (b * f).sqrt();
            if geo > qs.0 {
                qs = (geo, v, b, f);
            }
        }
        let geo = (pt_b * pt_h * asym * gb.0 * gf.0 * qs.2 * qs.3).powf(1.0 / 7.0);
        r.line(format!(
            "| {threads} | {pt_b:.3} | {pt_h:.3} | {asym:.3} | {:.3} ({}) | {:.3} ({}) | {:.3} ({}) | {:.3} ({}) | {geo:.3} |",
            gb.0, gb.1, gf.0, gf.1, qs.2, qs.1, qs.3, qs.1
        ));
        if geo > best.0 {
            let mut tb = t;
            tb.quant_reg_vectors_half = gb.1;
            tb.quant_reg_vectors_f32 = gf.1;
            tb.quant_reg_vectors_small = qs.1;
            best = (geo, tb);
        }
    }
    let mut b = best.1;
    dev.set_tuning(b);
    r.line(String::new());
    r.line(format!(
        "Best: {} threads, vectors/lane 16-bit {} / f32 {} / small groups {} (geo. mean {:.3}); library default: {} threads, {} / {} / {}.",
        b.quant_reg_threads, b.quant_reg_vectors_half, b.quant_reg_vectors_f32,
        b.quant_reg_vectors_small, best.0, default.quant_reg_threads,
        default.quant_reg_vectors_half, default.quant_reg_vectors_f32, default.quant_reg_vectors_small
    ));
    // split kernels: 4096-element 16-bit rows over NW warps (0 = one warp, 16 vectors/lane)
    r.line(String::new());
    r.line("### Split register kernel (warps per 4096-element 16-bit row; 0 = one warp)");
    r.line(String::new());
    r.line("| warps/row | per-token bf16 | per-token f16 | asym u8 bf16 | vLLM bf16 | per-token bf16 again | geo. mean |");
    r.line("|---|---|---|---|---|---|---|");
    let mut best_split = (0.0f64, 0u32);
    for w in [0u32, 4] {
        let mut t = b;
        t.quant_split_warps = w;
        dev.set_tuning(t);
        let a = ratio(&QuantSpec::int8_activation_per_token(), 1)?;
        let h = ratio(&QuantSpec::int8_activation_per_token(), 2)?;
        let u = ratio(&QuantSpec::uint8_asymmetric(), 1)?;
        let v = ratio(&QuantSpec::vllm_int8_activation_per_token(), 1)?;
        let a2 = ratio(&QuantSpec::int8_activation_per_token(), 1)?;
        let geo = (a * h * u * v * a2).powf(0.2);
        r.line(format!("| {w} | {a:.3} | {h:.3} | {u:.3} | {v:.3} | {a2:.3} | {geo:.3} |"));
        if geo > best_split.0 {
            best_split = (geo, w);
        }
    }
    b.quant_split_warps = best_split.1;
    dev.set_tuning(b);
    r.line(String::new());
    r.line(format!(
        "Picked: split warps {} (geo. mean {:.3}); the tables below use the picked settings.",
        b.quant_split_warps, best_split.0
    ));
    Ok(())
}

/// One dequantize of `q` (`n` int8 codes) into `out`, as a ratio of the useful bytes (codes
/// read, values written, 8 bytes of scale and zero point per group) to the copy bandwidth `roof`.
fn dequant_ratio<O: eai_quant::cuda::FloatElem>(
    dev: &CudaDevice,
    samples: usize,
    q: &eai_quant::cuda::DeviceQuantized,
    out: &mut eai_quant::cuda::DeviceBuffer<O>,
    n: usize,
    roof: f64,
) -> BoxResult<f64> {
    let bytes = (1 + std::mem::size_of::<O>()) as f64 * n as f64 + 8.0 * q.scales().len() as f64;
    Ok(gbs(bytes, time_op(dev, samples, |_| Ok(dev.dequantize_into(q, out)?))?) / roof)
}

/// Sweep of the dequantize grid size (blocks per multiprocessor).
pub(super) fn sweep_dequant(
    dev: &CudaDevice,
    r: &mut Report,
    samples: usize,
    roof: f64,
) -> BoxResult<()> {
    use eai_quant::{Granularity, QuantSpec};
    let n = 1usize << 28;
    let (rows, cols) = (n / 4096, 4096usize);
    let mut x32 = dev.zeros::<f32>(n)?;
    dev.fill_uniform(&mut x32, 3, -4.0, 4.0)?;
    let mut xb = dev.zeros::<half::bf16>(n)?;
    let mut xh = dev.zeros::<f16>(n)?;
    let pc = dev.quantize("pc", &QuantSpec::int8_weight(), &x32, &[rows, cols])?;
    let g128 =
        QuantSpec { granularity: Granularity::PerGroup { size: 128 }, ..QuantSpec::int8_weight() };
    let pg = dev.quantize("pg", &g128, &x32, &[rows, cols])?;
    r.line(String::new());
    r.line("## Dequantize sweep (ratio of useful bytes to copy bandwidth; the blocked kernel)");
    r.line(String::new());
    r.line("| blocks/SM | per-channel → f32 | → bf16 | → f16 | group-128 → bf16 | group-128 → f32 | Q8_0 → f32 | geo. mean |");
    r.line("|---|---|---|---|---|---|---|---|");
    let q8 = dev.quantize("q8", &QuantSpec::ggml_q8_0(), &x32, &[rows, cols])?;
    let default = dev.tuning();
    let mut best = (0.0f64, default);
    for b in [4u32, 8, 16] {
        let mut t = default;
        t.dequant_blocks_per_sm = b;
        dev.set_tuning(t);
        let r32 = dequant_ratio(dev, samples, &pc, &mut x32, n, roof)?;
        let rb = dequant_ratio(dev, samples, &pc, &mut xb, n, roof)?;
        let rh = dequant_ratio(dev, samples, &pc, &mut xh, n, roof)?;
        let rg = dequant_ratio(dev, samples, &pg, &mut xb, n, roof)?;
        let rg32 = dequant_ratio(dev, samples, &pg, &mut x32, n, roof)?;
        let rq32 = dequant_ratio(dev, samples, &q8, &mut x32, n, roof)?;
        let geo = (r32 * rb * rh * rg * rg32 * rq32).powf(1.0 / 6.0);
        r.line(format!(
            "| {b} | {r32:.3} | {rb:.3} | {rh:.3} | {rg:.3} | {rg32:.3} | {rq32:.3} | {geo:.3} |"
        ));
        if geo > best.0 {
            best = (geo, dev.tuning());
        }
    }
    dev.set_tuning(best.1);
    r.line(String::new());
    r.line(format!(
        "Best: {} blocks/SM (geo. mean {:.3}); the tables below use it.",
        best.1.dequant_blocks_per_sm, best.0
    ));
    Ok(())
}

/// Per-tensor and inner-axis per-channel quantization at sizes below and above the L2 cache:
/// below it the statistics pass leaves the input in L2 and the code pass reads it from there,
/// so HBM sees the input at most once (repetitions reuse the same buffers, so small inputs stay
/// L2-resident between calls, as an activation just written by the previous kernel would be). Each size is compared with the 1 GiB copy and with a copy of
/// the same number of bytes (input + codes) at that size.
pub(super) fn two_pass_sizes(
    dev: &CudaDevice,
    r: &mut Report,
    samples: usize,
    roof: f64,
) -> BoxResult<()> {
    use eai_quant::{Granularity, QuantSpec};
    r.line(String::new());
    r.line("## Per-tensor and inner-axis per-channel by size (L2 regime vs HBM regime)");
    r.line(String::new());
    let cap = dev.one_pass_tensor_capacity_bytes();
    r.line(format!(
        "One-pass per-tensor capacity on this device: {} bytes ({:.1} MiB) of input; larger inputs take two passes.",
        cap,
        cap as f64 / (1u64 << 20) as f64
    ));
    r.line(String::new());
    r.line("| kernel | input | elements | input MiB | path | time (µs) | useful GB/s | ratio to 1 GiB copy | same-size copy GB/s | ratio to same-size copy |");
    r.line("|---|---|---|---|---|---|---|---|---|---|");
    let default = dev.tuning();
    let pt = QuantSpec { granularity: Granularity::PerTensor, ..QuantSpec::int8_weight() };
    let pc1 =
        QuantSpec { granularity: Granularity::PerChannel { axis: 1 }, ..QuantSpec::int8_weight() };
    for n in [1usize << 20, 1 << 22, 1 << 23, 1 << 24, 1 << 25, 1 << 28] {
        let (rows, cols) = (n / 4096, 4096usize);
        let mut x32 = dev.zeros::<f32>(n)?;
        dev.fill_uniform(&mut x32, 5, -4.0, 4.0)?;
        let mut xb = dev.zeros::<half::bf16>(n)?;
        dev.cast(&x32, &mut xb)?;
        for (esz, tname) in [(4usize, "f32"), (2, "bf16")] {
            // same-size copy: input + codes bytes moved (read + write); like the kernels it
            // repeats on the same buffers, so at sizes below L2 both run from L2
            let half_bytes = (esz + 1) * n / 2;
            let src = random_i8(dev, half_bytes, 9)?;
            let mut dst = dev.zeros::<i8>(half_bytes)?;
            let tc = time_op(dev, samples, |_| Ok(dev.copy(&src, &mut dst)?))?;
            let copy_gbs = gbs(2.0 * half_bytes as f64, tc);
            drop((src, dst));
            for (kname, spec, one) in [
                ("per-tensor", &pt, true),
                ("per-tensor", &pt, false),
                ("per-channel axis 1", &pc1, false),
            ] {
                let mut t = default;
                t.quant_one_pass_tensor = one;
                dev.set_tuning(t);
                let fits = ((esz * n) as u64) <= cap;
                let path = if one && fits {
                    "one pass"
                } else if one {
                    "two passes (too big for one)"
                } else {
                    "two passes"
                };
                if kname == "per-tensor" && !one && !fits {
                    continue; // same as the row above
                }
                let mut out = dev.quant_output("sizes", spec, &[rows, cols])?;
                let groups = out.scales().len() as f64;
                let t = if esz == 4 {
                    time_op(dev, samples, |_| Ok(dev.quantize_into(&x32, &mut out)?))?
                } else {
                    time_op(dev, samples, |_| Ok(dev.quantize_into(&xb, &mut out)?))?
                };
                out.check(dev, &x32)?;
                let g = gbs((esz as f64 + 1.0) * n as f64 + 8.0 * groups, t);
                r.line(format!(
                    "| {kname} | {tname} | {n} | {:.0} | {path} | {:.1} | {g:.0} | {:.3} | {copy_gbs:.0} | {:.3} |",
                    (esz * n) as f64 / (1u64 << 20) as f64,
                    t * 1e6,
                    g / roof,
                    g / copy_gbs
                ));
            }
        }
    }
    dev.set_tuning(default);
    Ok(())
}
