//! Predicts one measured platform from another (published decode and prefill throughputs) and
//! reports the error; every measured value must fall inside the predictor's stated band.

use eai_core::Seconds;
use eai_metrics::{Observation, Precision, ProfileSet, Workload, bands, predict};

#[derive(Debug, serde::Deserialize)]
struct Row {
    source: String,
    params: f64,
    weight_bits: f64,
    phase: String,
    tokens: u64,
    gpu: String,
    tokens_per_s: f64,
}

fn rows() -> Vec<Row> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/data/throughput_validation.csv");
    let mut r = csv::Reader::from_path(path).unwrap();
    r.deserialize().map(|x| x.unwrap()).collect()
}

fn workload(r: &Row) -> Workload {
    let w = Workload::new(r.params, Precision::Fp16).weight_bits(r.weight_bits);
    if r.phase == "decode" { w.output_tokens(r.tokens) } else { w.prompt_tokens(r.tokens) }
}

#[test]
fn cross_platform_predictions_fall_inside_the_stated_band() {
    let set = ProfileSet::builtin().unwrap();
    let rows = rows();
    let mut n = 0;
    let mut worst_same: f64 = 1.0;
    let mut worst_cross: f64 = 1.0;
    println!(
        "{:<24} {:<7} {:>16} -> {:<16} {:>10} {:>10} {:>7}  band",
        "source", "phase", "from", "to", "pred t/s", "meas t/s", "error"
    );
    for a in &rows {
        for b in &rows {
            let same_case =
                a.source == b.source && a.phase == b.phase && a.weight_bits == b.weight_bits;
            if !same_case || a.gpu == b.gpu {
                continue;
            }
            let (ga, gb) = (set.get(&a.gpu).unwrap(), set.get(&b.gpu).unwrap());
            let w = workload(a);
            let obs = Observation {
                gpu: ga,
                workload: w,
                wall: Seconds(a.tokens as f64 / a.tokens_per_s),
                energy: None,
            };
            let p = predict(&obs, gb).unwrap();
            let pred = b.tokens as f64 / p.time.point.0;
            let ratio = pred / b.tokens_per_s;
            let measured_time = b.tokens as f64 / b.tokens_per_s;
            let inside = p.time.low.0 <= measured_time && measured_time <= p.time.high.0;
            let band = bands(ga, gb);
            let k = if p.roofline.compute_bound_fraction() > 0.5 {
                band.compute_bound
            } else {
                band.memory_bound
            };
            println!(
                "{:<24} {:<7} {:>16} -> {:<16} {:>10.1} {:>10.1} {:>+6.0}%  x/{k}",
                a.source,
                a.phase,
                a.gpu,
                b.gpu,
                pred,
                b.tokens_per_s,
                100.0 * (ratio - 1.0)
            );
            assert!(
                inside,
                "{} {} {} -> {}: predicted {pred:.1}, measured {}",
                a.source, a.phase, a.gpu, b.gpu, b.tokens_per_s
            );
            let err = ratio.max(1.0 / ratio);
            if band == eai_metrics::SAME_MEMORY_FAMILY {
                worst_same = worst_same.max(err);
            } else {
                worst_cross = worst_cross.max(err);
            }
            n += 1;
        }
    }
    println!(
        "{n} predictions; worst error x{worst_same:.2} within a memory family, x{worst_cross:.2} across"
    );
    assert_eq!(n, 28);
    // The bands are the observed worst cases, not arbitrarily loose.
    assert!(worst_same > 1.3 && worst_cross > 5.0);
}
