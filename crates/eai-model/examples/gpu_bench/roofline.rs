//! Decode roofline accounting for `gpu_bench` (issue 16): the device-to-device copy bandwidth
//! measured in the same process, the bytes a decode step reads (weights, scales, KV cache), the
//! fraction of the copy bandwidth a measured step rate reaches, the memory report by part, and
//! the bars summary printed at the end of a 7B run.

use eai_model::cuda::{GpuMemory, GpuModel};
use eai_quant::cuda::CudaDevice;
use serde_json::{Value, json};

/// Bytes per second of a device-to-device copy of a 512 MiB buffer (≫ any L2), bytes read and
/// written both counted (as BabelStream's copy): the median of 9 event-timed copies after 2
/// warm-ups, on the device's stream.
pub(crate) fn copy_bandwidth(dev: &CudaDevice) -> f64 {
    let n = 128usize << 20;
    let host: Vec<f32> =
        (0..n as u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 8) as f32).collect();
    let src = dev.upload(&host).unwrap();
    drop(host);
    let mut dst = dev.zeros::<f32>(n).unwrap();
    for _ in 0..2 {
        dev.copy(&src, &mut dst).unwrap();
    }
    dev.synchronize().unwrap();
    let mut t: Vec<f64> = (0..9)
        .map(|_| {
            let timer = dev.start_timer().unwrap();
            dev.copy(&src, &mut dst).unwrap();
            timer.stop().unwrap().as_secs_f64()
        })
        .collect();
    t.sort_by(f64::total_cmp);
    2.0 * (4 * n) as f64 / t[t.len() / 2]
}

/// Roofline fields of a decode measurement of `batch` sequences at a mean context of `ctx`
/// tokens that produced `tok_s` tokens/s in decode steps alone: a step reads the weights once
/// ([`GpuModel::decode_read_bytes`] at context 0 — projections, scales, the LM head, norms, an
/// embedding row) and every sequence's f32 keys and values.
pub(crate) fn decode_roofline(
    m: &GpuModel,
    batch: usize,
    ctx: usize,
    tok_s: f64,
    copy: f64,
) -> Value {
    let one = m.decode_read_bytes(ctx);
    let kv = one - m.decode_read_bytes(0);
    let step = one + (batch as u64).saturating_sub(1) * kv;
    let achieved = step as f64 * tok_s / batch as f64;
    json!({
        "mean_context": ctx, "bytes_per_step": step, "bytes_per_token": step as f64 / batch as f64,
        "kv_bytes_per_sequence": kv, "achieved_bytes_per_s": achieved, "copy_bytes_per_s": copy,
        "fraction_of_copy": achieved / copy, "roofline_tokens_per_s": copy / step as f64 * batch as f64,
    })
}

/// The memory report with the weights by part (bytes).
pub(crate) fn memory_json(mem: &GpuMemory) -> Value {
    let p = &mem.weight_parts;
    json!({
        "weights": mem.weights, "embedding": p.embedding, "lm_head": p.lm_head, "layers": p.layers,
        "scales": p.scales, "other": p.other, "kv_cache": mem.kv_cache, "scratch": mem.scratch,
        "graph": mem.graph, "staging": mem.staging, "device_free": mem.device_free,
        "device_total": mem.device_total,
    })
}

fn gb(v: &Value) -> f64 {
    v.as_f64().unwrap_or(0.0) / 1e9
}

/// The roofline table of every measured row and the issue-16 bars per model, as markdown.
pub(crate) fn summary(rows: &[Value], copy: f64, device: &str) -> String {
    let mut s = format!(
        "## Decode roofline — {device}, device-to-device copy {:.0} GB/s (read + write, 512 MiB, same process)\n\n",
        copy / 1e9
    );
    s += "| model | scheme | tile | batch | tok/s | steps tok/s | J/token | GB read/step | GB/s | % of copy | weights GB (emb + head + layers + scales + other) |\n|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|\n";
    for r in rows {
        let Some(dec) = r["decode"].as_array() else { continue };
        let m = &r["memory"];
        let mem = format!(
            "{:.2} ({:.2} + {:.2} + {:.2} + {:.3} + {:.3})",
            gb(&m["weights"]),
            gb(&m["embedding"]),
            gb(&m["lm_head"]),
            gb(&m["layers"]),
            gb(&m["scales"]),
            gb(&m["other"])
        );
        for d in dec {
            let rf = &d["roofline"];
            s += &format!(
                "| {} | {} | {} | {} | {:.1} | {:.1} | {} | {:.3} | {:.0} | {:.1} | {} |\n",
                r["model"].as_str().unwrap_or(""),
                r["scheme"].as_str().unwrap_or(""),
                r["tile"].as_str().unwrap_or(""),
                d["batch"],
                d["tokens_per_s"].as_f64().unwrap_or(0.0),
                d["decode_only_tokens_per_s"].as_f64().unwrap_or(0.0),
                d["j_per_token"].as_f64().map_or("–".into(), |j| format!("{j:.3}")),
                gb(&rf["bytes_per_step"]),
                rf["achieved_bytes_per_s"].as_f64().unwrap_or(0.0) / 1e9,
                100.0 * rf["fraction_of_copy"].as_f64().unwrap_or(0.0),
                mem,
            );
        }
    }
    // The batch curve: per model and batch size, each scheme's best tile (decode steps alone).
    s += "\n## Decode against batch size (best tile per scheme; tok/s in decode steps, J/token of the whole call)\n\n";
    s += "| model | batch | FP16 tok/s | FP16 J/token | W8A16 tok/s | W8A16 J/token | W8A8 tok/s | W8A8 J/token |\n|---|---:|---:|---:|---:|---:|---:|---:|\n";
    let mut models: Vec<&str> = rows.iter().filter_map(|r| r["model"].as_str()).collect();
    models.dedup();
    let mut batches: Vec<u64> = rows
        .iter()
        .filter_map(|r| r["decode"].as_array())
        .flatten()
        .filter_map(|d| d["batch"].as_u64())
        .collect();
    batches.sort_unstable();
    batches.dedup();
    for model in &models {
        for &b in &batches {
            let best = |scheme: &str| -> String {
                rows.iter()
                    .filter(|r| r["model"] == *model && r["base_scheme"] == scheme)
                    .filter(|r| r["int8_head"] != true)
                    .filter_map(|r| {
                        r["decode"].as_array()?.iter().find(|d| d["batch"] == b).cloned()
                    })
                    .max_by(|x, y| {
                        let t = |d: &Value| d["decode_only_tokens_per_s"].as_f64().unwrap_or(0.0);
                        t(x).total_cmp(&t(y))
                    })
                    .map_or("– | –".into(), |d| {
                        format!(
                            "{:.1} | {}",
                            d["decode_only_tokens_per_s"].as_f64().unwrap_or(0.0),
                            d["j_per_token"].as_f64().map_or("–".into(), |j| format!("{j:.3}"))
                        )
                    })
            };
            s += &format!(
                "| {model} | {b} | {} | {} | {} |\n",
                best("fp16"),
                best("int8-w8a16"),
                best("int8-w8a8")
            );
        }
    }
    // Bars: batch-1 decode, best tile per scheme (FP16 ≥ 85 % of the roofline, W8A16 ≥ 75 %),
    // W8A16 / FP16 tokens/s and J/token, old (auto) vs new (w16) GEMV.
    s += "\n## Issue-16 bars (batch 1, decode steps alone; best tile per scheme unless named)\n\n";
    s += "| model | FP16 % of copy (bar ≥ 85) | W8A16 % of copy (bar ≥ 75) | W8A16 / FP16 tok/s | W8A16 / FP16 J/token | FP16 w16 / auto tok/s | W8A16 w16 / auto tok/s |\n|---|---:|---:|---:|---:|---:|---:|\n";
    for model in models {
        let b1 = |scheme: &str, tile: Option<&str>| -> Option<(f64, f64, Option<f64>)> {
            rows.iter()
                .filter(|r| r["model"] == model && r["base_scheme"] == scheme)
                .filter(|r| r["int8_head"] != true)
                .filter(|r| tile.is_none_or(|t| r["tile"] == t))
                .filter_map(|r| r["decode"].as_array()?.iter().find(|d| d["batch"] == 1).cloned())
                .map(|d| {
                    (
                        d["decode_only_tokens_per_s"].as_f64().unwrap_or(0.0),
                        d["roofline"]["fraction_of_copy"].as_f64().unwrap_or(0.0),
                        d["j_per_token"].as_f64(),
                    )
                })
                .max_by(|a, b| a.0.total_cmp(&b.0))
        };
        let pct = |x: Option<(f64, f64, Option<f64>)>| {
            x.map_or("–".into(), |v| format!("{:.1}", 100.0 * v.1))
        };
        let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) if b > 0.0 => format!("{:.3}", a / b),
            _ => "–".into(),
        };
        let (f, w) = (b1("fp16", None), b1("int8-w8a16", None));
        s += &format!(
            "| {model} | {} | {} | {} | {} | {} | {} |\n",
            pct(f),
            pct(w),
            ratio(w.map(|v| v.0), f.map(|v| v.0)),
            ratio(w.and_then(|v| v.2), f.and_then(|v| v.2)),
            ratio(b1("fp16", Some("w16")).map(|v| v.0), b1("fp16", Some("auto")).map(|v| v.0)),
            ratio(
                b1("int8-w8a16", Some("w16")).map(|v| v.0),
                b1("int8-w8a16", Some("auto")).map(|v| v.0)
            ),
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(model: &str, scheme: &str, tile: &str, dec: &[(u64, f64, f64, f64)]) -> Value {
        json!({
            "model": model, "scheme": format!("{scheme}+{tile}"), "base_scheme": scheme,
            "tile": tile, "int8_head": false,
            "memory": {"weights": 8.72e9, "embedding": 1.09e9, "lm_head": 1.09e9, "layers": 6.525e9, "scales": 5.6e6, "other": 9.7e6},
            "decode": dec.iter().map(|&(b, t, j, f)| json!({
                "batch": b, "tokens_per_s": t, "decode_only_tokens_per_s": t, "j_per_token": j,
                "roofline": {"bytes_per_step": 7.6e9, "achieved_bytes_per_s": f * 3e12, "fraction_of_copy": f},
            })).collect::<Vec<_>>(),
        })
    }

    #[test]
    fn summary_reports_rows_curves_and_bars() {
        let rows = vec![
            row("qwen", "fp16", "auto", &[(1, 170.0, 2.8, 0.8), (8, 1300.0, 0.4, 0.78)]),
            row("qwen", "fp16", "w16", &[(1, 180.0, 2.7, 0.86), (8, 1350.0, 0.39, 0.8)]),
            row("qwen", "int8-w8a16", "auto", &[(1, 250.0, 2.0, 0.64), (8, 1500.0, 0.3, 0.6)]),
            row("qwen", "int8-w8a16", "w16", &[(1, 300.0, 1.8, 0.76), (8, 1900.0, 0.25, 0.7)]),
        ];
        let s = summary(&rows, 3.0e12, "test GPU");
        assert!(s.contains("copy 3000 GB/s"), "{s}");
        // Bars: best tile per scheme at batch 1; ratios of the best rows and of w16 / auto.
        assert!(s.contains("| qwen | 86.0 | 76.0 | 1.667 | 0.667 | 1.059 | 1.200 |"), "{s}");
        // The batch curve takes each scheme's best tile; W8A8 absent.
        assert!(s.contains("| qwen | 8 | 1350.0 | 0.390 | 1900.0 | 0.250 | – | – |"), "{s}");
        assert_eq!(s.matches("| qwen | int8-w8a16+w16 | w16 |").count(), 2);
    }
}
