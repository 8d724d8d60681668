//! The deployment recommender: the paper's decision flow (§5 and the slides' "Deployment
//! Decision Flow") as a function from candidates and constraints to a ranked list with reasons.
//!
//! 1. **Hardware support**: the GPU is profiled and available; its tensor cores support the
//!    strategy's compute precision; the model fits in memory; the board fits the power envelope.
//! 2. **Application requirements**: accuracy retained ≥ threshold; latency ≤ tolerance; input
//!    variability (high variability favours input-adaptive, i.e. dynamic, quantization).
//! 3. **Cost**: GPUs needed for the request rate, hardware budget, energy cost and TCO.
//!
//! Survivors are ranked by the stated priority; every step leaves a [`Reason`].

use std::collections::BTreeMap;
use std::fmt::Write as _;

use eai_core::{Joules, Seconds, Watts};
use serde::{Deserialize, Serialize};

use crate::compare::compare;
use crate::error::{Error, Result, non_negative, positive};
use crate::hardware::{Precision, ProfileSet};
use crate::metric::check_price_pue;
use crate::quantity::{EnergyPrice, JOULES_PER_KWH, Money, Percent};
use crate::run::Run;

/// Headroom over the weights for KV cache, activations and the runtime when checking that a
/// model fits in GPU memory.
pub const MEMORY_OVERHEAD: f64 = 1.2;

/// A quantization/precision strategy, as the recommender needs to know it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Strategy {
    /// Label (`INT8`, `FP16 mixed`, `Dynamic`).
    pub name: String,
    /// Precision the matrix products run in (decides tensor-core support and weight bytes).
    pub compute: Precision,
    /// Whether the quantization parameters adapt to each input at run time.
    pub adaptive: bool,
}

impl Strategy {
    /// Unquantized FP32 (the paper's baseline).
    pub fn fp32() -> Self {
        Self { name: "FP32".into(), compute: Precision::Fp32, adaptive: false }
    }
    /// FP16 mixed precision.
    pub fn fp16_mixed() -> Self {
        Self { name: "FP16 mixed".into(), compute: Precision::Fp16, adaptive: false }
    }
    /// BF16.
    pub fn bf16() -> Self {
        Self { name: "BF16".into(), compute: Precision::Bf16, adaptive: false }
    }
    /// Static INT8 (calibrated scales).
    pub fn int8() -> Self {
        Self { name: "INT8".into(), compute: Precision::Int8, adaptive: false }
    }
    /// Dynamic quantization: INT8 weights, activation scales computed per input.
    pub fn dynamic_int8() -> Self {
        Self { name: "Dynamic".into(), compute: Precision::Int8, adaptive: true }
    }
    /// FP8.
    pub fn fp8() -> Self {
        Self { name: "FP8".into(), compute: Precision::Fp8, adaptive: false }
    }
}

/// Where a candidate's numbers come from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Evidence {
    /// Measured runs (count of candidate runs).
    Measured {
        /// Number of runs.
        runs: usize,
    },
    /// Predicted from a measurement on another GPU.
    Predicted {
        /// The source GPU id.
        from: String,
    },
    /// Published figures.
    Published {
        /// Where.
        citation: String,
    },
}

/// One hardware × strategy option with its figures relative to a common reference.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// Hardware profile id.
    pub hardware: String,
    /// Strategy.
    pub strategy: Strategy,
    /// Score relative to the reference score (0.98 = 98 % of baseline performance).
    pub retained_accuracy: f64,
    /// EOR improvement against the reference, percent (the paper's "efficiency gain").
    pub efficiency_gain: Percent,
    /// Energy per request, when known (needed for energy cost).
    pub energy_per_request: Option<Joules>,
    /// Latency per request, when known (needed for the latency check and GPU count).
    pub latency: Option<Seconds>,
    /// Where the figures come from.
    pub evidence: Evidence,
}

impl Candidate {
    /// A candidate from measured runs against measured reference runs (same tasks): retained
    /// accuracy is the ratio of mean scores, efficiency gain the EOR improvement of
    /// [`compare`]; energy and latency per request are filled when every run recorded
    /// requests (and wall time).
    ///
    /// # Errors
    /// Whatever [`compare`] rejects; a zero reference score.
    pub fn from_runs(reference: &[Run], runs: &[Run], strategy: Strategy) -> Result<Self> {
        let c = compare(reference, runs)?;
        if c.score.0.mean == 0.0 {
            return Err(Error::Zero { run: c.baseline.to_string(), field: "score" });
        }
        let per_request: Option<Vec<(f64, Option<f64>)>> = runs
            .iter()
            .map(|r| {
                let n = r.requests().ok().filter(|&n| n > 0)? as f64;
                Some((r.energy().ok()?.0 / n, r.wall().ok().map(|w| w.0 / n)))
            })
            .collect();
        let (energy_per_request, latency) = match per_request {
            Some(v) if !v.is_empty() => {
                let n = v.len() as f64;
                let e = v.iter().map(|x| x.0).sum::<f64>() / n;
                let l: Option<f64> = v.iter().map(|x| x.1).sum::<Option<f64>>().map(|s| s / n);
                (Some(Joules(e)), l.map(Seconds))
            }
            _ => (None, None),
        };
        Ok(Self {
            hardware: c.candidate.hardware.clone(),
            strategy,
            retained_accuracy: c.score.1.mean / c.score.0.mean,
            efficiency_gain: Percent(c.eor_improvement.value),
            energy_per_request,
            latency,
            evidence: Evidence::Measured { runs: runs.len() },
        })
    }

    fn label(&self) -> String {
        format!("{} + {}", self.hardware, self.strategy.name)
    }
}

/// How much the inputs vary (the slides' "input complexity variation").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Variability {
    /// Inputs resemble the calibration data.
    #[default]
    Low,
    /// Inputs vary widely: static scales may not fit; adaptive strategies rank first.
    High,
}

/// What the ranking optimizes (the paper's selection principles).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    /// Highest retained accuracy first.
    Accuracy,
    /// Highest EOR improvement first.
    #[default]
    Energy,
    /// Input-adaptive strategies first, then EOR improvement.
    Flexibility,
    /// Lowest total cost of ownership first.
    Cost,
}

/// The cost side of the decision.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CostModel {
    /// Electricity price.
    pub energy_price: EnergyPrice,
    /// Facility power usage effectiveness (≥ 1).
    pub pue: f64,
    /// Requests served per day.
    pub requests_per_day: f64,
    /// Years the deployment runs (TCO horizon).
    pub years: f64,
    /// Price of one GPU per hardware id, in the energy price's currency.
    pub hardware_price: BTreeMap<String, f64>,
    /// Largest acceptable price of one GPU.
    pub budget_per_gpu: Option<f64>,
}

/// Everything the decision flow checks against. Unset limits are not checked.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Constraints {
    /// Hardware ids that can be used (`None`: any profiled GPU).
    pub available: Option<Vec<String>>,
    /// Model parameter count, for the memory check.
    pub model_params: Option<f64>,
    /// Largest acceptable board power (an edge power envelope).
    pub max_board_power: Option<Watts>,
    /// Smallest acceptable retained accuracy (0.98 for "98 % of baseline performance").
    pub min_retained_accuracy: Option<f64>,
    /// Largest acceptable latency per request.
    pub max_latency: Option<Seconds>,
    /// Input variability.
    pub variability: Variability,
    /// What to optimize.
    pub priority: Priority,
    /// Cost inputs.
    pub cost: Option<CostModel>,
}

/// The step of the flow a reason belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// 1. Hardware support assessment.
    Hardware,
    /// 2. Application requirements analysis.
    Requirements,
    /// 3. Cost constraint consideration.
    Cost,
    /// Final ranking.
    Ranking,
}

/// Whether a check passed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The check passed.
    Pass,
    /// The check failed; the candidate is rejected.
    Fail,
    /// Information that did not decide anything.
    Note,
}

/// One spelled-out reason.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reason {
    /// The step.
    pub step: Step,
    /// The verdict.
    pub verdict: Verdict,
    /// The reason in words, with the numbers.
    pub text: String,
}

/// A candidate with the outcome of every check.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Assessment {
    /// The candidate.
    pub candidate: Candidate,
    /// Reasons, in flow order.
    pub reasons: Vec<Reason>,
    /// GPUs needed for the request rate (1 when unknown).
    pub gpus: Option<u64>,
    /// Energy cost per year, when energy per request and a cost model are known.
    pub annual_energy_cost: Option<Money>,
    /// Hardware price plus energy cost over the horizon, when both are known.
    pub tco: Option<Money>,
}

impl Assessment {
    /// `true` when no check failed.
    pub fn accepted(&self) -> bool {
        self.reasons.iter().all(|r| r.verdict != Verdict::Fail)
    }

    fn push(&mut self, step: Step, verdict: Verdict, text: String) {
        self.reasons.push(Reason { step, verdict, text });
    }
}

/// The ranked survivors and the rejected candidates, each with reasons.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Recommendation {
    /// Accepted candidates, best first.
    pub ranked: Vec<Assessment>,
    /// Rejected candidates, in input order.
    pub rejected: Vec<Assessment>,
}

impl Recommendation {
    /// The best accepted candidate.
    pub fn best(&self) -> Option<&Assessment> {
        self.ranked.first()
    }

    /// The recommendation as Markdown: ranked list, then rejections, each with its reasons.
    pub fn to_markdown(&self) -> String {
        let mut s = String::new();
        let mark = |v: Verdict| match v {
            Verdict::Pass => "pass",
            Verdict::Fail => "FAIL",
            Verdict::Note => "note",
        };
        let step = |s: Step| match s {
            Step::Hardware => "hardware",
            Step::Requirements => "requirements",
            Step::Cost => "cost",
            Step::Ranking => "ranking",
        };
        let _ = writeln!(s, "## Recommended\n");
        if self.ranked.is_empty() {
            let _ = writeln!(s, "No candidate satisfies the constraints.\n");
        }
        for (i, a) in self.ranked.iter().enumerate() {
            let _ = writeln!(s, "{}. **{}**", i + 1, a.candidate.label());
            for r in &a.reasons {
                let _ = writeln!(s, "   - {} / {}: {}", step(r.step), mark(r.verdict), r.text);
            }
        }
        if !self.rejected.is_empty() {
            let _ = writeln!(s, "\n## Rejected\n");
            for a in &self.rejected {
                let _ = writeln!(s, "- **{}**", a.candidate.label());
                for r in a.reasons.iter().filter(|r| r.verdict == Verdict::Fail) {
                    let _ = writeln!(s, "  - {}: {}", step(r.step), r.text);
                }
            }
        }
        s
    }
}

fn validate(candidates: &[Candidate], c: &Constraints) -> Result<()> {
    for x in candidates {
        let who = x.label();
        positive(&who, "retained_accuracy", x.retained_accuracy)?;
        if !(x.efficiency_gain.0.is_finite() && x.efficiency_gain.0 > -100.0) {
            return Err(Error::Invalid {
                run: who,
                field: "efficiency_gain",
                value: x.efficiency_gain.0,
                reason: "a finite percentage above -100",
            });
        }
        if let Some(e) = x.energy_per_request {
            non_negative(&who, "energy_per_request", e.0)?;
        }
        if let Some(l) = x.latency {
            non_negative(&who, "latency", l.0)?;
        }
    }
    if let Some(p) = c.model_params {
        positive("constraints", "model_params", p)?;
    }
    if let Some(w) = c.max_board_power {
        positive("constraints", "max_board_power", w.0)?;
    }
    if let Some(a) = c.min_retained_accuracy {
        positive("constraints", "min_retained_accuracy", a)?;
    }
    if let Some(l) = c.max_latency {
        positive("constraints", "max_latency", l.0)?;
    }
    if let Some(m) = &c.cost {
        check_price_pue(&m.energy_price, m.pue)?;
        positive("cost model", "requests_per_day", m.requests_per_day)?;
        positive("cost model", "years", m.years)?;
        for v in m.hardware_price.values() {
            positive("cost model", "hardware_price", *v)?;
        }
        if let Some(b) = m.budget_per_gpu {
            positive("cost model", "budget_per_gpu", b)?;
        }
    }
    Ok(())
}

/// Runs the decision flow over `candidates` and ranks the survivors.
///
/// Ranking keys by priority: **Energy** — EOR improvement, then retained accuracy;
/// **Accuracy** — retained accuracy, then EOR improvement; **Flexibility** — adaptive strategies
/// first, then EOR improvement; **Cost** — TCO (unknown last), then EOR improvement. With
/// [`Variability::High`] adaptive strategies rank before static ones whatever the priority (the
/// paper: "flexibility priority use cases should consider dynamic quantization").
///
/// ```
/// use eai_metrics::{Constraints, Priority, ProfileSet, recommend, paper};
/// let profiles = ProfileSet::builtin()?;
/// let rec = recommend(&paper::scenario_candidates(), &paper::data_centre(), &profiles)?;
/// let best = rec.best().unwrap();
/// assert_eq!((best.candidate.hardware.as_str(), best.candidate.strategy.name.as_str()), ("A100-PCIe-40GB", "INT8"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// [`Error::Invalid`]/[`Error::Zero`] for a non-finite or non-positive figure in a candidate or
/// the constraints. An unknown hardware id is not an error: that candidate is rejected with a
/// reason.
pub fn recommend(
    candidates: &[Candidate],
    constraints: &Constraints,
    profiles: &ProfileSet,
) -> Result<Recommendation> {
    validate(candidates, constraints)?;
    let mut accepted = Vec::new();
    let mut rejected = Vec::new();
    for cand in candidates {
        let a = assess(cand, constraints, profiles);
        if a.accepted() { accepted.push(a) } else { rejected.push(a) }
    }
    let adaptive_first = constraints.variability == Variability::High
        || constraints.priority == Priority::Flexibility;
    accepted.sort_by(|x, y| {
        let (a, b) = (&x.candidate, &y.candidate);
        let adaptive = if adaptive_first {
            b.strategy.adaptive.cmp(&a.strategy.adaptive)
        } else {
            std::cmp::Ordering::Equal
        };
        let gain = b.efficiency_gain.0.total_cmp(&a.efficiency_gain.0);
        let acc = b.retained_accuracy.total_cmp(&a.retained_accuracy);
        let tco = match (&x.tco, &y.tco) {
            (Some(p), Some(q)) => p.amount.total_cmp(&q.amount),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        };
        let rest = match constraints.priority {
            Priority::Energy | Priority::Flexibility => gain.then(acc),
            Priority::Accuracy => acc.then(gain),
            Priority::Cost => tco.then(gain),
        };
        adaptive.then(rest)
    });
    let n = accepted.len();
    let key = match constraints.priority {
        Priority::Energy => "highest EOR improvement",
        Priority::Accuracy => "highest retained accuracy",
        Priority::Flexibility => "input-adaptive strategy first, then highest EOR improvement",
        Priority::Cost => "lowest total cost of ownership",
    };
    for (i, a) in accepted.iter_mut().enumerate() {
        let extra = if constraints.variability == Variability::High
            && constraints.priority != Priority::Flexibility
        {
            " (high input variability: adaptive strategies first)"
        } else {
            ""
        };
        let text = format!(
            "rank {} of {n} by {key}{extra}: EOR {:+.1} %, {:.1} % of baseline accuracy",
            i + 1,
            a.candidate.efficiency_gain.0,
            100.0 * a.candidate.retained_accuracy
        );
        a.push(Step::Ranking, Verdict::Note, text);
    }
    Ok(Recommendation { ranked: accepted, rejected })
}

fn assess(cand: &Candidate, c: &Constraints, profiles: &ProfileSet) -> Assessment {
    let mut a = Assessment {
        candidate: cand.clone(),
        reasons: Vec::new(),
        gpus: None,
        annual_energy_cost: None,
        tco: None,
    };
    // 1. Hardware support.
    let Ok(gpu) = profiles.get(&cand.hardware) else {
        a.push(Step::Hardware, Verdict::Fail, format!("no hardware profile `{}`", cand.hardware));
        return a;
    };
    if let Some(avail) = &c.available {
        if avail.iter().any(|h| h == &gpu.id) {
            a.push(Step::Hardware, Verdict::Pass, format!("{} is available", gpu.name));
        } else {
            a.push(
                Step::Hardware,
                Verdict::Fail,
                format!("{} is not among the available platforms", gpu.name),
            );
        }
    }
    let p = cand.strategy.compute;
    match gpu.tensor_rate(p) {
        Some(r) => a.push(
            Step::Hardware,
            Verdict::Pass,
            format!(
                "{} tensor cores (gen {}) support {p}: {:.0} T{}/s dense",
                gpu.name,
                gpu.tensor_core_generation,
                r / 1e12,
                if p == Precision::Int8 { "OP" } else { "FLOP" }
            ),
        ),
        None if p == Precision::Fp32 => a.push(
            Step::Hardware,
            Verdict::Note,
            format!("FP32 runs on CUDA cores ({:.1} TFLOPS)", gpu.fp32_tflops.value),
        ),
        None => a.push(
            Step::Hardware,
            Verdict::Fail,
            format!("{} ({:?}) tensor cores do not support {p}", gpu.name, gpu.architecture),
        ),
    }
    if let Some(n) = c.model_params {
        let need = n * p.weight_bytes() * MEMORY_OVERHEAD;
        let have = gpu.memory_bytes();
        let text = format!(
            "{:.1} GB of {p} weights (+{:.0} % headroom) {} {:.0} GB",
            n * p.weight_bytes() / 1e9,
            100.0 * (MEMORY_OVERHEAD - 1.0),
            if need <= have { "fit in" } else { "do not fit in" },
            gpu.memory_gb.value
        );
        a.push(Step::Hardware, if need <= have { Verdict::Pass } else { Verdict::Fail }, text);
    }
    a.push(
        Step::Hardware,
        Verdict::Note,
        format!(
            "{:.0} GB/s memory bandwidth bounds memory-bound decode speed",
            gpu.memory_bandwidth_gbs.value
        ),
    );
    if let Some(w) = c.max_board_power {
        let ok = gpu.tdp_w.value <= w.0;
        a.push(
            Step::Hardware,
            if ok { Verdict::Pass } else { Verdict::Fail },
            format!(
                "board power {:.0} W {} the {:.0} W envelope",
                gpu.tdp_w.value,
                if ok { "is within" } else { "exceeds" },
                w.0
            ),
        );
    }
    // 2. Application requirements.
    if let Some(min) = c.min_retained_accuracy {
        let ok = cand.retained_accuracy >= min;
        a.push(
            Step::Requirements,
            if ok { Verdict::Pass } else { Verdict::Fail },
            format!(
                "retains {:.1} % of baseline accuracy ({} the {:.1} % threshold)",
                100.0 * cand.retained_accuracy,
                if ok { "meets" } else { "below" },
                100.0 * min
            ),
        );
    }
    match (c.max_latency, cand.latency) {
        (Some(max), Some(l)) => {
            let ok = l.0 <= max.0;
            a.push(
                Step::Requirements,
                if ok { Verdict::Pass } else { Verdict::Fail },
                format!(
                    "latency {:.3} s per request ({} the {:.3} s tolerance)",
                    l.0,
                    if ok { "within" } else { "exceeds" },
                    max.0
                ),
            );
        }
        (Some(_), None) => a.push(
            Step::Requirements,
            Verdict::Note,
            "latency unknown: tolerance not checked".into(),
        ),
        _ => {}
    }
    if c.variability == Variability::High {
        if cand.strategy.adaptive {
            a.push(
                Step::Requirements,
                Verdict::Pass,
                "adapts its quantization to each input (high input variability)".into(),
            );
        } else {
            a.push(
                Step::Requirements,
                Verdict::Note,
                "static scales were fixed on calibration data; inputs vary widely".into(),
            );
        }
    }
    // 3. Cost.
    if let Some(m) = &c.cost {
        let gpus = match cand.latency {
            Some(l) => ((m.requests_per_day * l.0 / 86_400.0).ceil() as u64).max(1),
            None => 1,
        };
        a.gpus = Some(gpus);
        a.push(
            Step::Cost,
            Verdict::Note,
            match cand.latency {
                Some(l) => format!(
                    "{gpus} GPU(s) serve {:.0} requests/day at {:.3} s each, back to back",
                    m.requests_per_day, l.0
                ),
                None => "latency unknown: 1 GPU assumed".into(),
            },
        );
        let price = m.hardware_price.get(&gpu.id).copied();
        match (price, m.budget_per_gpu) {
            (Some(p), Some(b)) => {
                let ok = p <= b;
                a.push(
                    Step::Cost,
                    if ok { Verdict::Pass } else { Verdict::Fail },
                    format!(
                        "{p:.0} {} per GPU {} the {b:.0} budget",
                        m.energy_price.currency,
                        if ok { "within" } else { "exceeds" }
                    ),
                );
            }
            (None, Some(_)) => a.push(
                Step::Cost,
                Verdict::Note,
                "hardware price unknown: budget not checked".into(),
            ),
            _ => {}
        }
        if let Some(e) = cand.energy_per_request {
            let annual =
                e.0 * m.requests_per_day * 365.0 / JOULES_PER_KWH * m.pue * m.energy_price.per_kwh;
            a.annual_energy_cost =
                Some(Money { amount: annual, currency: m.energy_price.currency.clone() });
            a.push(
                Step::Cost,
                Verdict::Note,
                format!(
                    "energy {:.0} J/request costs {annual:.2} {} per year",
                    e.0, m.energy_price.currency
                ),
            );
            if let Some(p) = price {
                let tco = p * gpus as f64 + annual * m.years;
                a.tco = Some(Money { amount: tco, currency: m.energy_price.currency.clone() });
                a.push(
                    Step::Cost,
                    Verdict::Note,
                    format!("TCO over {:.1} years: {tco:.0} {}", m.years, m.energy_price.currency),
                );
            }
        } else {
            a.push(
                Step::Cost,
                Verdict::Note,
                "energy per request unknown: energy cost not computed".into(),
            );
        }
    }
    a
}

#[cfg(test)]
mod tests {
    use eai_core::Joules;

    use super::*;
    use crate::run::EnergyDomain;

    #[test]
    fn candidate_from_runs_and_cost_arithmetic() {
        let mk = |scheme: &str, hw: &str, wh: f64, acc: f64| {
            Run::builder("m", scheme, hw)
                .score("mmlu", acc)
                .energy(EnergyDomain::Gpu(0), Joules::from_watt_hours(wh))
                .wall(Seconds(100.0))
                .requests(1000)
                .build()
                .unwrap()
        };
        let reference = [mk("fp32", "A100-PCIe-40GB", 40.0, 0.60)];
        let c =
            Candidate::from_runs(&reference, &[mk("int8", "L40S", 30.0, 0.594)], Strategy::int8())
                .unwrap();
        assert!((c.retained_accuracy - 0.99).abs() < 1e-12);
        assert!((c.efficiency_gain.0 - 100.0 * (0.99 * 40.0 / 30.0 - 1.0)).abs() < 1e-9);
        assert_eq!(c.energy_per_request, Some(Joules(108.0))); // 30 Wh = 108 kJ over 1000 requests
        assert_eq!(c.latency, Some(Seconds(0.1)));

        let profiles = ProfileSet::builtin().unwrap();
        let cost = CostModel {
            energy_price: EnergyPrice::per_kwh(0.15, "USD"),
            pue: 1.5,
            requests_per_day: 1_000_000.0,
            years: 3.0,
            hardware_price: [("L40S".to_string(), 8000.0)].into_iter().collect(),
            budget_per_gpu: None,
        };
        let cons =
            Constraints { cost: Some(cost), model_params: Some(7.6e9), ..Default::default() };
        let rec = recommend(&[c], &cons, &profiles).unwrap();
        let a = rec.best().unwrap();
        // 1e6 requests × 0.1 s = 1e5 s/day → 2 GPUs.
        assert_eq!(a.gpus, Some(2));
        // 108 J × 1e6 × 365 / 3.6e6 kWh × 1.5 × 0.15 = 2463.75 USD/year.
        let annual = a.annual_energy_cost.as_ref().unwrap().amount;
        assert!((annual - 2463.75).abs() < 1e-6, "{annual}");
        assert!((a.tco.as_ref().unwrap().amount - (16000.0 + 3.0 * 2463.75)).abs() < 1e-6);
    }

    #[test]
    fn hardware_step_rejects_unsupported_precision_memory_and_unknown_gpus() {
        let profiles = ProfileSet::builtin().unwrap();
        let cand = |hw: &str, s: Strategy| Candidate {
            hardware: hw.into(),
            strategy: s,
            retained_accuracy: 0.99,
            efficiency_gain: Percent(20.0),
            energy_per_request: None,
            latency: None,
            evidence: Evidence::Published { citation: "test".into() },
        };
        let cands = [
            cand("V100-SXM2-32GB", Strategy::int8()),
            cand("A100-PCIe-40GB", Strategy::fp8()),
            cand("RTX-4060-Ti-16GB", Strategy::fp16_mixed()),
            cand("TPU-v5", Strategy::int8()),
            cand("H200-SXM-141GB", Strategy::fp8()),
        ];
        let cons = Constraints { model_params: Some(7.6e9), ..Default::default() };
        let rec = recommend(&cands, &cons, &profiles).unwrap();
        assert_eq!(rec.ranked.len(), 1);
        assert_eq!(rec.best().unwrap().candidate.hardware, "H200-SXM-141GB");
        let why: Vec<String> = rec
            .rejected
            .iter()
            .map(|a| a.reasons.iter().find(|r| r.verdict == Verdict::Fail).unwrap().text.clone())
            .collect();
        assert!(why[0].contains("do not support INT8"), "{why:?}");
        assert!(why[1].contains("do not support FP8"), "{why:?}");
        assert!(why[2].contains("do not fit"), "{why:?}"); // 15.2 GB × 1.2 > 16 GB
        assert!(why[3].contains("no hardware profile"), "{why:?}");
        let bad = Candidate { retained_accuracy: f64::NAN, ..cands[0].clone() };
        assert!(recommend(&[bad], &cons, &profiles).is_err());
    }
}
