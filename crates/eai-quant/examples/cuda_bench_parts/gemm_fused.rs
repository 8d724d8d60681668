//! `cuda_bench` section 3b: the INT8 GEMM with its dequantization: the two calls (`gemm_i8`
//! into a caller's int32 matrix at heuristic rank 0, then `gemm_dequant`), the default
//! `gemm_i8_dequant` (panel budget and rank from `gemm_plan`), and `gemm_i8_dequant` under every
//! row-panel budget and cuBLASLt heuristic rank in the sweep, all against cuBLAS FP16 in the same
//! interleaved rounds. `wgmma` rows: our Hopper kernel with the dequantize in its epilogue
//! (`gemm_i8_dequant_wgmma_kernel`, no int32 matrix; v1 … v4 side by side), also at two LLM shapes (2048 × 11008 × 4096 and
//! 2048 × 4096 × 11008) beside FP16 and the cuBLASLt path.

use eai_quant::cuda::{CudaDevice, GemmShape, WgmmaKernel, gemm_plan, row_panels, use_wgmma};

use super::{BoxResult, GemmOperands, Report, SETTLE, Settled, time_op_settled};

/// Rounds in which every row is timed once (the table gives the median of the round medians).
const ROUNDS: usize = 3;

/// Row-panel budgets (MiB of int32 accumulator; 0 = one panel) and heuristic ranks swept.
const PANEL_MIB: [u32; 4] = [0, 8, 16, 32];
const RANKS: [u32; 3] = [0, 1, 2];

#[derive(Clone, Copy, Debug)]
enum Row {
    Fp16,
    Separate,
    /// `gemm_i8_dequant` as a user calls it (the device's default tuning: the wgmma kernel
    /// where it applies).
    Default,
    /// `gemm_i8_dequant` on cuBLASLt (`gemm_wgmma = false`) with the measured panel budget
    /// and rank.
    LtDefault,
    /// cuBLASLt: panel budget (MiB), heuristic rank, dequantize on a second stream.
    Fused(u32, u32, bool),
    /// `gemm_i8_dequant_wgmma_kernel` (f16 out; `true`: with bias).
    Wgmma(WgmmaKernel, bool),
}

/// Whether `EAI_BENCH_SKIP_WGMMA` leaves kernel `k`'s rows out: a comma-separated list of
/// kernel names (`v2,v3`) leaves those out, any other value all of them.
fn skip_wgmma(k: WgmmaKernel) -> bool {
    std::env::var("EAI_BENCH_SKIP_WGMMA").is_ok_and(|v| {
        let names: Vec<&str> = v.split(',').map(str::trim).collect();
        names.contains(&k.name())
            || !names.iter().all(|n| WgmmaKernel::ALL.iter().any(|o| o.name() == *n))
    })
}

/// Runs the section; returns one bar line per square shape.
pub(crate) fn fused_gemm(
    dev: &CudaDevice,
    r: &mut Report,
    samples: usize,
) -> BoxResult<Vec<String>> {
    let base = dev.tuning();
    r.line(String::new());
    r.line("## INT8 GEMM + dequantize → f16: separate pass vs fused (row panels through an L2-resident int32 scratch)");
    r.line(String::new());
    r.line(format!(
        "Median of {ROUNDS} interleaved rounds, each a median of {samples} event-timed batches; ×FP16 = cuBLAS FP16 time ÷ this row's time, same rounds. \
         Every row runs {} ms back to back before it is timed (its own clock and power state; mJ/call, W and the SM clock are from that window, NVML). \
         `separate` = `gemm_i8` (heuristic rank 0) + `gemm_dequant`; `default` = `gemm_i8_dequant` as a user calls it (the wgmma kernel where `use_wgmma` takes it, else cuBLASLt); `cuBLASLt default` = `gemm_i8_dequant` with `gemm_wgmma=false` and the measured choice of `gemm_plan` (shown as P/R); `fused P/R` = the same with `gemm_panel_mib=P` (0: one panel), `gemm_algo_rank=R`; `+ overlap`: `gemm_overlap=true` (each panel's dequantize on a second stream, double-buffered scratch).",
        SETTLE.as_millis()
    ));
    let nvml = nvml_wrapper::Nvml::init().ok();
    let nvd = nvml.as_ref().and_then(|n| n.device_by_index(0).ok());
    let shown: Vec<String> = WgmmaKernel::ALL
        .into_iter()
        .filter(|&k| !skip_wgmma(k))
        .map(|k| {
            let n = dev.wgmma_clusters(k).map_or_else(|e| e.to_string(), |c| c.to_string());
            match k {
                WgmmaKernel::V1 => format!("`wgmma v1`: one CTA per tile, {n} CTAs"),
                WgmmaKernel::V4 => format!(
                    "`wgmma v4`: v2 (clusters of {}) with 3 stages and the epilogue stored by TMA from shared memory, {n} co-resident clusters",
                    k.cluster()
                ),
                _ => format!(
                    "`wgmma {}`: clusters of {} CTAs along M sharing W's tile by TMA multicast, {n} co-resident clusters",
                    k.name(),
                    k.cluster()
                ),
            }
        })
        .collect();
    if !shown.is_empty() {
        r.line(String::new());
        r.line(format!(
            "Our Hopper wgmma kernels (128×256 tile per CTA, dequantize in the epilogue): {}.",
            shown.join("; ")
        ));
    }
    r.line(String::new());
    r.line("| shape | row | panels | µs (median) | slowest–fastest round (µs) | TOPS | ×FP16 | mJ/call | W | SM MHz |");
    r.line("|---|---|---|---|---|---|---|---|---|---|");
    let mut bars = Vec::new();
    for s in [
        GemmShape::new(4096, 4096, 4096),
        GemmShape::new(8192, 8192, 8192),
        GemmShape::new(2048, 11008, 4096),
        GemmShape::new(2048, 4096, 11008),
    ] {
        let square = s.m == s.n && s.n == s.k;
        let GemmOperands { sets, x16, w16, x8, w8, sx, sw, bias, mut y16, mut acc } =
            GemmOperands::new(dev, s, 110)?;
        // EAI_BENCH_SKIP_WGMMA leaves wgmma rows out (e.g. after a test failed): a list such
        // as `v2,v3` those kernels' rows, any other value all of them
        let kernels: Vec<WgmmaKernel> =
            WgmmaKernel::ALL.into_iter().filter(|&k| !skip_wgmma(k)).collect();
        let mut rows = vec![Row::Fp16];
        rows.extend(kernels.iter().map(|&k| Row::Wgmma(k, false)));
        rows.extend([Row::Separate, Row::Default, Row::LtDefault]);
        if square {
            rows.extend(kernels.iter().map(|&k| Row::Wgmma(k, true)));
            for mib in PANEL_MIB {
                for rank in RANKS {
                    rows.push(Row::Fused(mib, rank, false));
                }
            }
            for mib in [8, 16, 32] {
                rows.push(Row::Fused(mib, 0, true));
            }
        }
        let mut times = vec![Vec::new(); rows.len()];
        let mut power: Vec<Vec<Settled>> = vec![Vec::new(); rows.len()];
        let mut errors = vec![None; rows.len()];
        for _ in 0..ROUNDS {
            for (ri, row) in rows.iter().enumerate() {
                if errors[ri].is_some() {
                    continue;
                }
                let mut t = base;
                if !matches!(row, Row::Default | Row::LtDefault) {
                    t.gemm_panel_mib = Some(0);
                    t.gemm_algo_rank = Some(0);
                    t.gemm_overlap = false;
                }
                if matches!(row, Row::LtDefault | Row::Fused(..)) {
                    t.gemm_wgmma = Some(false);
                }
                if let Row::Fused(mib, rank, overlap) = *row {
                    t.gemm_panel_mib = Some(mib);
                    t.gemm_algo_rank = Some(rank);
                    t.gemm_overlap = overlap;
                }
                dev.set_tuning(t);
                let timed = |f: &mut dyn FnMut(usize) -> BoxResult<()>| {
                    time_op_settled(dev, samples, SETTLE, nvd.as_ref(), f)
                };
                let res = match row {
                    Row::Fp16 => {
                        timed(&mut |i| Ok(dev.gemm_f16(&x16, &w16[i % sets], &mut y16, s)?))
                    }
                    Row::Separate => timed(&mut |i| {
                        dev.gemm_i8(&x8, &w8[i % sets], &mut acc, s)?;
                        Ok(dev.gemm_dequant(&acc, &sx, &sw, None, &mut y16, s.m, s.n)?)
                    }),
                    Row::Fused(..) | Row::Default | Row::LtDefault => timed(&mut |i| {
                        Ok(dev.gemm_i8_dequant(&x8, &w8[i % sets], &sx, &sw, None, &mut y16, s)?)
                    }),
                    Row::Wgmma(kernel, with_bias) => {
                        let b = with_bias.then_some(&bias);
                        timed(&mut |i| {
                            Ok(dev.gemm_i8_dequant_wgmma_kernel(
                                &x8,
                                &w8[i % sets],
                                &sx,
                                &sw,
                                b,
                                &mut y16,
                                s,
                                *kernel,
                            )?)
                        })
                    }
                };
                match res {
                    Ok(v) => {
                        times[ri].push(v.secs);
                        power[ri].push(v);
                    }
                    Err(e) => errors[ri] = Some(e.to_string()),
                }
            }
        }
        dev.set_tuning(base);
        let med = |v: &[f64]| {
            let mut v = v.to_vec();
            v.sort_by(f64::total_cmp);
            v.get(v.len() / 2).copied()
        };
        let t16 = med(&times[0]);
        let label = format!("{}×{}×{}", s.m, s.n, s.k);
        let mut best: Option<(f64, String)> = None;
        let mut separate = None;
        let mut default = None;
        let mut lt_default = None;
        let mut wgmma = [None; WgmmaKernel::ALL.len()];
        let (auto_mib, auto_rank) = gemm_plan(s.m, s.n, &base);
        for (ri, row) in rows.iter().enumerate() {
            let name = match row {
                Row::Fp16 => "cuBLAS FP16".to_string(),
                Row::Separate => "separate".to_string(),
                Row::Default
                    if use_wgmma(&base, &s, dev.info().multiprocessors)
                        && dev.wgmma_applies(&s) =>
                {
                    format!("default (wgmma {})", WgmmaKernel::default().name())
                }
                Row::Default => format!("default ({auto_mib}/{auto_rank})"),
                Row::LtDefault => format!("cuBLASLt default ({auto_mib}/{auto_rank})"),
                Row::Fused(mib, rank, false) => format!("fused {mib}/{rank}"),
                Row::Fused(mib, rank, true) => format!("fused {mib}/{rank} + overlap"),
                Row::Wgmma(k, false) => format!("wgmma {} (cluster {})", k.name(), k.cluster()),
                Row::Wgmma(k, true) => {
                    format!("wgmma {} (cluster {}) + bias", k.name(), k.cluster())
                }
            };
            let panels = match row {
                Row::Fused(mib, _, _) => row_panels(s.m, s.n, *mib).len().to_string(),
                Row::LtDefault => row_panels(s.m, s.n, auto_mib).len().to_string(),
                Row::Default
                    if !(use_wgmma(&base, &s, dev.info().multiprocessors)
                        && dev.wgmma_applies(&s)) =>
                {
                    row_panels(s.m, s.n, auto_mib).len().to_string()
                }
                _ => "—".to_string(),
            };
            let (Some(t), Some(t16)) = (med(&times[ri]), t16) else {
                let why = errors[ri].clone().unwrap_or_else(|| "no FP16 time".into());
                r.line(format!("| {label} | {name} | {panels} | error: {why} | | | | | | |"));
                continue;
            };
            let lo = times[ri].iter().copied().fold(f64::INFINITY, f64::min);
            let hi = times[ri].iter().copied().fold(0.0, f64::max);
            let ratio = t16 / t;
            let (mj, watts, mhz) = power_columns(&power[ri]);
            r.line(format!(
                "| {label} | {name} | {panels} | {:.1} | {:.1}–{:.1} | {:.1} | {:.3} | {mj} | {watts} | {mhz} |",
                t * 1e6,
                lo * 1e6,
                hi * 1e6,
                s.ops() / t / 1e12,
                ratio
            ));
            match row {
                Row::Separate => separate = Some(ratio),
                Row::Default => default = Some(ratio),
                Row::LtDefault => lt_default = Some(ratio),
                Row::Wgmma(k, false) => wgmma[*k as usize] = Some(ratio),
                Row::Fused(..) if best.as_ref().is_none_or(|b| ratio > b.0) => {
                    best = Some((ratio, name));
                }
                _ => {}
            }
        }
        let fmt = |v: Option<f64>| v.map_or("—".to_string(), |v| format!("{v:.3}×"));
        let (b, bname) = best.map_or((None, String::new()), |(v, n)| (Some(v), n));
        bars.push(format!(
            "- INT8 GEMM + dequant → f16 vs cuBLAS FP16 at {label}: default (`gemm_i8_dequant`) {}, cuBLASLt default ({auto_mib}/{auto_rank}) {}, separate {}, best fused {} ({bname}); bar ≥ 1.6× (default): {}",
            fmt(default),
            fmt(lt_default),
            fmt(separate),
            fmt(b),
            if default.is_some_and(|d| d >= 1.6) { "met" } else { "NOT met" }
        ));
        for k in WgmmaKernel::ALL.into_iter().filter(|&k| !skip_wgmma(k)) {
            let v = wgmma[k as usize];
            bars.push(format!(
                "- INT8 wgmma {} GEMM with the dequantize in its epilogue → f16 vs cuBLAS FP16 at {label}: {}; bar ≥ 1.6×: {}",
                k.name(),
                fmt(v),
                if v.is_some_and(|d| d >= 1.6) { "met" } else { "NOT met" }
            ));
        }
    }
    Ok(bars)
}

/// Median over the rounds of a row's settle-window energy per call (mJ), watts and SM clock;
/// `—` where NVML did not answer.
fn power_columns(rounds: &[Settled]) -> (String, String, String) {
    fn med(mut v: Vec<f64>) -> Option<f64> {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied()
    }
    let col = |get: fn(&Settled) -> Option<f64>, scale: f64, digits: usize| {
        med(rounds.iter().filter_map(get).collect())
            .map_or("—".to_string(), |v| format!("{:.*}", digits, v * scale))
    };
    (col(|p| p.joules, 1e3, 2), col(|p| p.watts, 1.0, 0), col(|p| p.sm_mhz.map(f64::from), 1.0, 0))
}
