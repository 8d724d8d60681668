//! The quantize / dequantize table of `cuda_bench` (section 2b): every row-wise and two-pass
//! scheme from f32, bf16 and f16, the dequantize rows, the kernel variants beside the defaults
//! and the traffic probes, in interleaved rounds, as ratios to the copy timed in the same rounds.

use super::*;

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
    /// The two-pass quantizer's traffic from input `.0` (0 f32, 1 bf16, 2 f16) with no
    /// arithmetic: the read-only probe over the input, then the probe that reads it again and
    /// writes one code byte per element (16:4 from f32, 16:8 from 16-bit inputs).
    TwoPassProbe(u8),
}

/// Which rows `quant_rows` measures.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Subset {
    /// Every case, variant, dequantize row and probe.
    All,
    /// `--only-16bit`: `ONLY_16BIT_CASES` from bf16 and f16 with their variants, the 2:1 probes.
    Only16,
    /// `--only-two-pass`: the two-pass cases from every input with their variants and the
    /// two-pass probes.
    TwoPass,
}

/// Indices of the two-pass cases in `quant_rows`' case list (per-tensor, per-channel axis 1).
const TWO_PASS_CASES: [usize; 2] = [6, 7];

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
    // session 14: the in-warp register kernel for group-128 with 4 vectors per lane (the
    // default before it, 2 since); the contiguous kernel on group-128 (quant_group_contig);
    // the split kernel's rows (asymmetric u8, per-token) with one warp per row
    ("4/lane", "quant_reg_vectors_half=4,quant_reg_vectors_f32=4", &[3]),
    ("contig 4/lane", "quant_group_contig=4", &[3]),
    ("contig 2/lane + ld.cs", "quant_group_contig=2", &[3]),
    ("one warp/row", "quant_split_warps=0", &[0, 2]),
    // session 15: per-channel on the last axis applied by the grid-stride vector kernel
    // instead of the column kernel
    ("vector apply", "quant_apply_cols=false", &[7]),
    ("row slices", "quant_cols_interleave=false", &[7]),
    ("row slices, vector apply", "quant_cols_interleave=false,quant_apply_cols=false", &[7]),
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
pub(super) fn quant_rows(
    dev: &CudaDevice,
    r: &mut Report,
    samples: usize,
    roof: f64,
    vary: bool,
    subset: Subset,
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
    // the two-pass probes read the input's bytes: 4 n from f32 (probe_src), 2 n from 16-bit
    let probe_src_half = dev.zeros::<u8>(2 * n)?;
    let probe_words = dev.zeros::<u8>(4096 * dev.info().multiprocessors.max(1) as usize)?;
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
        if subset == Subset::TwoPass {
            if TWO_PASS_CASES.contains(&c) {
                ops.extend([Op::Quant(c, 0), Op::Quant(c, 1), Op::Quant(c, 2)]);
                for (v, (_, _, applies)) in QUANT_VARIANTS.iter().enumerate() {
                    if applies.contains(&c) {
                        ops.extend([
                            Op::QuantVar(c, 0, v),
                            Op::QuantVar(c, 1, v),
                            Op::QuantVar(c, 2, v),
                        ]);
                    }
                }
            }
            continue;
        }
        if subset == Subset::Only16 {
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
    if subset != Subset::Only16 {
        ops.extend([Op::TwoPassProbe(0), Op::TwoPassProbe(1), Op::TwoPassProbe(2)]);
    }
    if subset == Subset::Only16 {
        ops.extend([Op::Probe(16, 8), Op::ProbeBlocked(16, 8)]);
    } else if subset == Subset::All {
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
                Op::TwoPassProbe(input) => {
                    let (src, wr) = if input == 0 { (&probe_src, 4) } else { (&probe_src_half, 8) };
                    let mut codes = dev.zeros::<u8>(n)?;
                    let mut words = dev.zeros::<u8>(probe_words.len())?;
                    time_op(dev, samples, |_| {
                        dev.traffic_probe(src, &mut words, 16, 0)?;
                        dev.traffic_probe(src, &mut codes, 16, wr)?;
                        Ok(())
                    })?
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
    let mut ratios: Vec<(usize, f64)> = Vec::new();
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
            Op::TwoPassProbe(input) => {
                let esz = if input == 0 { 4.0 } else { 2.0 };
                (
                    format!(
                        "two-pass traffic probe from {}: read-only pass, then read 16 B / write {} B per item (useful bytes as the quantizers')",
                        names[input as usize],
                        if input == 0 { 4 } else { 8 }
                    ),
                    (esz + 1.0) * n as f64,
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
        ratios.push((i, gbs(bytes, t) / copy_gbs));
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
    two_pass_bounds(r, &ops, &ratios, &cases.iter().map(|c| c.0).collect::<Vec<_>>());
    Ok(())
}

/// The two-pass rows against the bound measured by the two-pass probe of the same input in
/// the same rounds (issue 16: meet it within 5 %).
fn two_pass_bounds(r: &mut Report, ops: &[Op], ratios: &[(usize, f64)], cases: &[&str]) {
    let ratio_of =
        |want: &dyn Fn(&Op) -> bool| ratios.iter().find(|(i, _)| want(&ops[*i])).map(|&(_, v)| v);
    let names = ["f32", "bf16", "f16"];
    let mut lines = Vec::new();
    for input in 0..3u8 {
        let Some(bound) = ratio_of(&|o| matches!(o, Op::TwoPassProbe(i) if *i == input)) else {
            continue;
        };
        for c in TWO_PASS_CASES {
            let mut rows = vec![(
                String::new(),
                ratio_of(&|o| matches!(o, Op::Quant(k, i) if *k == c && *i == input)),
            )];
            for (v, (label, _, applies)) in QUANT_VARIANTS.iter().enumerate() {
                if applies.contains(&c) {
                    let got = ratio_of(
                        &|o| matches!(o, Op::QuantVar(k, i, w) if *k == c && *i == input && *w == v),
                    );
                    rows.push((format!(" [{label}]"), got));
                }
            }
            for (tag, got) in rows {
                let Some(got) = got else { continue };
                let of = got / bound;
                lines.push(format!(
                    "- {}{tag} from {}: {got:.3} of copy = {of:.3} of the measured two-pass bound {bound:.3}; within 5 %: {}",
                    cases[c],
                    names[input as usize],
                    if of >= 0.95 { "met" } else { "NOT met" }
                ));
            }
        }
    }
    if !lines.is_empty() {
        r.line(String::new());
        r.line("Two-pass kernels against the two-pass probe of the same input (same rounds):");
        r.line(String::new());
        for l in lines {
            r.line(l);
        }
    }
}
