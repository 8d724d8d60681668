//! Roofline transfer of a measured run from one profiled GPU to another, with a stated band.
//!
//! Model (per forward pass, weights read once per pass, KV-cache traffic ignored):
//! - prefill of `p` prompt tokens × batch `b`: `max(2·N·p·b / R_prec, W / BW)`;
//! - each decode step: `max(2·N·b / R_prec, W / BW)`, times the output tokens;
//!
//! with `N` parameters, `W` weight bytes, `R_prec` the precision's dense tensor rate (FP32
//! CUDA-core rate when the tensor cores lack the precision) and `BW` the memory bandwidth. The
//! measured run fixes the efficiency `η = measured time / roofline time` on its GPU; the target's
//! time is `η ×` its roofline time. Power transfers as the same fraction of TDP, capped at the
//! target's TDP; energy is power × time.
//!
//! The band is empirical: [`SAME_MEMORY_FAMILY`] and [`CROSS_MEMORY_FAMILY`] are the largest
//! errors seen when predicting published llama.cpp, MLC and ExLlama throughputs of one GPU from
//! another (the crate's `tests/predictor.rs`, table in `docs/metrics.md`). Transfers between GPUs
//! of one memory family (GDDR ↔ GDDR, HBM ↔ HBM) were accurate to 15–35 %; transfers between
//! a GDDR consumer card and an HBM data-centre card erred by up to 2.2× (decode) and 5.7×
//! (prefill), because the software stack reached a much smaller fraction of the data-centre
//! GPU's roofs. [`POWER_BAND`] is an assumption: no cross-GPU power data validates it.

use eai_core::{Joules, Seconds, Watts};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, positive};
use crate::hardware::{HardwareProfile, Precision};

/// Multiplicative (×/÷) bands on predicted time, per limiting roof.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Bands {
    /// Band on memory-bound time.
    pub memory_bound: f64,
    /// Band on compute-bound time.
    pub compute_bound: f64,
}

/// Bands between GPUs of the same memory family: worst validation errors ×1.35 (decode, ExLlama
/// RTX 3090 Ti ↔ RTX 4090) and ×1.10 (prefill, RTX 3090 ↔ RTX 4090). HBM ↔ HBM is not covered by
/// the validation data and is assumed to behave alike.
pub const SAME_MEMORY_FAMILY: Bands = Bands { memory_bound: 1.4, compute_bound: 1.2 };
/// Bands between a GDDR and an HBM GPU: worst validation errors ×2.22 (decode) and ×5.69
/// (prefill), both RTX 4090/3090 ↔ H100 PCIe with llama.cpp of December 2023.
pub const CROSS_MEMORY_FAMILY: Bands = Bands { memory_bound: 2.3, compute_bound: 6.0 };
/// Multiplicative band on transferred power (an assumption: no cross-GPU power data validates it).
pub const POWER_BAND: f64 = 1.3;

/// The bands that apply when predicting `target` from `source`.
pub fn bands(source: &HardwareProfile, target: &HardwareProfile) -> Bands {
    let hbm = |p: &HardwareProfile| p.memory_type.to_ascii_uppercase().starts_with("HBM");
    if hbm(source) == hbm(target) { SAME_MEMORY_FAMILY } else { CROSS_MEMORY_FAMILY }
}

/// What was run: model size, storage and compute precision, and token counts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Workload {
    /// Parameter count.
    pub params: f64,
    /// Bits per stored weight (16 for FP16, 8 for INT8, 4.5 for GGUF Q4_0).
    pub weight_bits: f64,
    /// Precision the matrix products run in.
    pub compute: Precision,
    /// Prompt tokens per sequence.
    pub prompt_tokens: u64,
    /// Generated tokens per sequence.
    pub output_tokens: u64,
    /// Sequences processed together.
    pub batch: u32,
}

impl Workload {
    /// A workload of `params` parameters stored and computed in `compute`, batch 1, no tokens yet.
    pub fn new(params: f64, compute: Precision) -> Self {
        Self {
            params,
            weight_bits: compute.weight_bytes() * 8.0,
            compute,
            prompt_tokens: 0,
            output_tokens: 0,
            batch: 1,
        }
    }

    /// Sets the bits per stored weight (weight-only quantization).
    #[must_use]
    pub fn weight_bits(mut self, bits: f64) -> Self {
        self.weight_bits = bits;
        self
    }

    /// Sets the prompt tokens per sequence.
    #[must_use]
    pub fn prompt_tokens(mut self, n: u64) -> Self {
        self.prompt_tokens = n;
        self
    }

    /// Sets the generated tokens per sequence.
    #[must_use]
    pub fn output_tokens(mut self, n: u64) -> Self {
        self.output_tokens = n;
        self
    }

    /// Sets the batch size.
    #[must_use]
    pub fn batch(mut self, b: u32) -> Self {
        self.batch = b;
        self
    }

    fn validate(&self) -> Result<()> {
        positive("workload", "params", self.params)?;
        positive("workload", "weight_bits", self.weight_bits)?;
        if self.batch == 0 {
            return Err(Error::Zero { run: "workload".into(), field: "batch" });
        }
        if self.prompt_tokens == 0 && self.output_tokens == 0 {
            return Err(Error::Zero {
                run: "workload".into(),
                field: "prompt_tokens + output_tokens",
            });
        }
        Ok(())
    }
}

/// Which roof limits a phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Bound {
    /// Limited by memory bandwidth.
    Memory,
    /// Limited by compute throughput.
    Compute,
}

/// Roofline lower bounds of a workload's phases on one GPU.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Roofline {
    /// Prefill time bound.
    pub prefill: Seconds,
    /// Which roof limits prefill.
    pub prefill_bound: Bound,
    /// Decode time bound (all output tokens).
    pub decode: Seconds,
    /// Which roof limits decode.
    pub decode_bound: Bound,
}

impl Roofline {
    /// Total bound.
    pub fn total(&self) -> Seconds {
        self.prefill + self.decode
    }

    /// Fraction of the total bound spent in compute-bound phases.
    pub fn compute_bound_fraction(&self) -> f64 {
        let t = self.total().0;
        if t <= 0.0 {
            return 0.0;
        }
        let mut c = 0.0;
        if self.prefill_bound == Bound::Compute {
            c += self.prefill.0;
        }
        if self.decode_bound == Bound::Compute {
            c += self.decode.0;
        }
        c / t
    }
}

fn phase(flops: f64, bytes: f64, rate: f64, bw: f64) -> (Seconds, Bound) {
    let (c, m) = (flops / rate, bytes / bw);
    if c > m { (Seconds(c), Bound::Compute) } else { (Seconds(m), Bound::Memory) }
}

/// The roofline bounds of `w` on `gpu`.
///
/// # Errors
/// [`Error::Zero`]/[`Error::Invalid`] for a workload with no parameters, bits, batch or tokens.
pub fn roofline(gpu: &HardwareProfile, w: &Workload) -> Result<Roofline> {
    w.validate()?;
    let rate = gpu.compute_rate(w.compute);
    let bw = gpu.bandwidth_bytes_per_s();
    let bytes = w.params * w.weight_bits / 8.0;
    let b = f64::from(w.batch);
    let (prefill, prefill_bound) = if w.prompt_tokens > 0 {
        phase(2.0 * w.params * w.prompt_tokens as f64 * b, bytes, rate, bw)
    } else {
        (Seconds(0.0), Bound::Memory)
    };
    let (step, decode_bound) = phase(2.0 * w.params * b, bytes, rate, bw);
    Ok(Roofline {
        prefill,
        prefill_bound,
        decode: Seconds(step.0 * w.output_tokens as f64),
        decode_bound,
    })
}

/// A point estimate with a low and high bound.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Band<T> {
    /// Most likely value.
    pub point: T,
    /// Lower bound.
    pub low: T,
    /// Upper bound.
    pub high: T,
}

/// A measurement on one GPU that a prediction starts from.
#[derive(Clone, Debug, PartialEq)]
pub struct Observation<'a> {
    /// The GPU it ran on.
    pub gpu: &'a HardwareProfile,
    /// What ran.
    pub workload: Workload,
    /// Measured time.
    pub wall: Seconds,
    /// Measured GPU energy, when known.
    pub energy: Option<Joules>,
}

/// Time and energy of a workload predicted on another GPU.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// Target profile id.
    pub target: String,
    /// Predicted time.
    pub time: Band<Seconds>,
    /// Predicted mean power, when the observation had energy.
    pub power: Option<Band<Watts>>,
    /// Predicted energy, when the observation had energy.
    pub energy: Option<Band<Joules>>,
    /// Efficiency measured on the source GPU (roofline time / measured time, in `(0, 1]`
    /// for a sane measurement).
    pub source_efficiency: f64,
    /// Target roofline bounds.
    pub roofline: Roofline,
    /// The bands applied to time.
    pub bands: Bands,
    /// Caveats that apply (unsupported precision, power above TDP, ...).
    pub notes: Vec<String>,
}

impl Prediction {
    /// The predicted run on the target: `measured`'s labels, scores, tokens and requests, with
    /// the hardware label set to the target, the predicted time, and the predicted energy
    /// (point values) as GPU 0's. Scores carry over unchanged: the same numeric scheme gives the
    /// same answers on another GPU. Feed it to [`crate::compare`] or
    /// [`crate::Candidate::from_runs`] (then set the candidate's evidence to
    /// [`crate::Evidence::Predicted`]).
    ///
    /// # Errors
    /// [`Error::Missing`] when the prediction has no energy (the observation had none).
    pub fn to_run(&self, measured: &crate::run::Run) -> Result<crate::run::Run> {
        let energy = self.energy.ok_or_else(|| Error::Missing {
            run: measured.label(),
            field: "energy (observation)",
        })?;
        let c = measured.config();
        let mut b =
            crate::run::Run::builder(c.model.clone(), c.scheme.clone(), self.target.clone())
                .energy(crate::run::EnergyDomain::Gpu(0), energy.point)
                .wall(self.time.point);
        for (task, s) in measured.scores() {
            b = b.score(task.clone(), *s);
        }
        if let Some(r) = measured.repetition() {
            b = b.repetition(r);
        }
        if let Ok(n) = measured.input_tokens() {
            b = b.input_tokens(n);
        }
        if let Ok(n) = measured.output_tokens() {
            b = b.output_tokens(n);
        }
        if let Ok(n) = measured.requests() {
            b = b.requests(n);
        }
        b.build()
    }
}

/// Predicts `obs`'s time (and energy) on `target`. See the module docs for the model and band.
///
/// ```
/// use eai_core::Seconds;
/// use eai_metrics::{Observation, Precision, ProfileSet, Workload, predict};
///
/// let set = ProfileSet::builtin()?;
/// // 7B FP16 decode of 128 tokens took 2.4 s on an A100 PCIe 40GB.
/// let w = Workload::new(7e9, Precision::Fp16).output_tokens(128);
/// let obs = Observation { gpu: set.get("A100-PCIe-40GB")?, workload: w, wall: Seconds(2.4), energy: None };
/// let p = predict(&obs, set.get("H200-SXM-141GB")?)?;
/// // Memory-bound: time scales with bandwidth, 1555 / 4800.
/// assert!((p.time.point.0 - 2.4 * 1555.0 / 4800.0).abs() < 1e-9);
/// assert!(p.time.low.0 < p.time.point.0 && p.time.point.0 < p.time.high.0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// An invalid workload; a zero or non-finite measured time or energy.
pub fn predict(obs: &Observation<'_>, target: &HardwareProfile) -> Result<Prediction> {
    positive("observation", "wall", obs.wall.0)?;
    let src = roofline(obs.gpu, &obs.workload)?;
    let dst = roofline(target, &obs.workload)?;
    let mut notes = Vec::new();
    for (gpu, role) in [(obs.gpu, "source"), (target, "target")] {
        if !gpu.supports(obs.workload.compute) {
            notes.push(format!(
                "{role} {} has no {} tensor cores; its FP32 CUDA-core rate was assumed",
                gpu.id, obs.workload.compute
            ));
        }
    }
    let eff = src.total().0 / obs.wall.0;
    if eff > 1.0 {
        notes.push(format!(
            "the measurement is {eff:.2}x faster than the source roofline: the workload description \
             overstates the work (e.g. fewer bits per weight than stated)"
        ));
    }
    let t = dst.total().0 / eff;
    let f = dst.compute_bound_fraction();
    let band = bands(obs.gpu, target);
    let k = (f * band.compute_bound.ln() + (1.0 - f) * band.memory_bound.ln()).exp();
    let time = Band { point: Seconds(t), low: Seconds(t / k), high: Seconds(t * k) };

    let (power, energy) = match obs.energy {
        None => (None, None),
        Some(e) => {
            positive("observation", "energy", e.0)?;
            let p_src = e.0 / obs.wall.0;
            let mut u = p_src / obs.gpu.tdp_w.value;
            if u > 1.0 {
                notes.push(format!(
                    "source mean power {p_src:.0} W exceeds its {:.0} W TDP (other domains counted?); capped at TDP",
                    obs.gpu.tdp_w.value
                ));
                u = 1.0;
            }
            let tdp = target.tdp_w.value;
            let p = u * tdp;
            let pb = Band {
                point: Watts(p),
                low: Watts(p / POWER_BAND),
                high: Watts((p * POWER_BAND).min(tdp)),
            };
            let eb = Band {
                point: Joules(p * t),
                low: Joules(pb.low.0 * time.low.0),
                high: Joules(pb.high.0 * time.high.0),
            };
            (Some(pb), Some(eb))
        }
    };
    Ok(Prediction {
        target: target.id.clone(),
        time,
        power,
        energy,
        source_efficiency: eff,
        roofline: dst,
        bands: band,
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hardware::ProfileSet;

    #[test]
    fn roofline_hand_computed() {
        let set = ProfileSet::builtin().unwrap();
        let a100 = set.get("A100-PCIe-40GB").unwrap();
        // 7e9 params FP16: 14e9 bytes / 1555e9 B/s = 9.003 ms per decode step (memory-bound:
        // compute 1.4e10 FLOP / 312e12 = 0.045 ms).
        let w = Workload::new(7e9, Precision::Fp16).prompt_tokens(512).output_tokens(100);
        let r = roofline(a100, &w).unwrap();
        assert_eq!(r.decode_bound, Bound::Memory);
        assert!((r.decode.0 - 100.0 * 14e9 / 1555e9).abs() < 1e-12);
        // Prefill: 2·7e9·512 = 7.168e12 FLOP / 312e12 = 22.97 ms > 9.0 ms: compute-bound.
        assert_eq!(r.prefill_bound, Bound::Compute);
        assert!((r.prefill.0 - 7.168e12 / 312e12).abs() < 1e-12);
        assert!(roofline(a100, &Workload::new(7e9, Precision::Fp16)).is_err());
    }

    #[test]
    fn power_is_capped_by_target_tdp_and_notes_unsupported_precisions() {
        let set = ProfileSet::builtin().unwrap();
        let w = Workload::new(7e9, Precision::Int8).output_tokens(100);
        let src = set.get("RTX-4090").unwrap();
        // 400 W of 450 W → 0.889 of TDP; on a V100 (300 W) that is 266.7 W.
        let obs =
            Observation { gpu: src, workload: w, wall: Seconds(2.0), energy: Some(Joules(800.0)) };
        let p = predict(&obs, set.get("V100-SXM2-32GB").unwrap()).unwrap();
        let pw = p.power.unwrap();
        assert!((pw.point.0 - 400.0 / 450.0 * 300.0).abs() < 1e-9);
        assert!(pw.high.0 <= 300.0);
        assert!(p.notes.iter().any(|n| n.contains("no INT8 tensor cores")));
        let e = p.energy.unwrap();
        assert!(e.low.0 < e.point.0 && e.point.0 < e.high.0);
        assert!(predict(&Observation { wall: Seconds(0.0), ..obs.clone() }, src).is_err());
    }

    #[test]
    fn predicted_runs_feed_the_recommender() {
        use crate::recommend::{Candidate, Constraints, Evidence, Strategy, recommend};
        use crate::run::{EnergyDomain, Run};
        let set = ProfileSet::builtin().unwrap();
        let mk = |scheme: &str, wh: f64, secs: f64| {
            Run::builder("m", scheme, "A100-PCIe-40GB")
                .score("mmlu", 0.6)
                .energy(EnergyDomain::Gpu(0), Joules::from_watt_hours(wh))
                .wall(Seconds(secs))
                .output_tokens(12_800)
                .requests(100)
                .build()
                .unwrap()
        };
        let (fp16, int8) = (mk("fp16", 10.0, 200.0), mk("int8", 6.0, 120.0));
        let w = Workload::new(7e9, Precision::Int8).output_tokens(12_800);
        let obs = Observation {
            gpu: set.get("A100-PCIe-40GB").unwrap(),
            workload: w,
            wall: Seconds(120.0),
            energy: Some(int8.energy().unwrap()),
        };
        let h200 = predict(&obs, set.get("H200-SXM-141GB").unwrap()).unwrap();
        let run = h200.to_run(&int8).unwrap();
        assert_eq!(run.config().hardware, "H200-SXM-141GB");
        // Memory-bound: 120 s × 1555/4800; power 180 W of 250 → 0.72 × 700 W.
        assert!((run.wall().unwrap().0 - 120.0 * 1555.0 / 4800.0).abs() < 1e-9);
        assert!((run.mean_power().unwrap().0 - 0.72 * 700.0).abs() < 1e-9);
        let mut cand = Candidate::from_runs(&[fp16], &[run], Strategy::int8()).unwrap();
        cand.evidence = Evidence::Predicted { from: "A100-PCIe-40GB".into() };
        let rec = recommend(&[cand], &Constraints::default(), &set).unwrap();
        assert_eq!(rec.best().unwrap().candidate.hardware, "H200-SXM-141GB");
    }
}
