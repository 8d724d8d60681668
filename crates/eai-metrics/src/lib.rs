//! eai-metrics: EOR, TWEOR, reductions against a baseline, statistics over repeated runs,
//! Pareto fronts, hardware profiles, a roofline predictor and the deployment recommender.
//!
//! **Plain data in, numbers out.** This crate reads no sensor and runs no model: a [`Run`] is a
//! validated record of what was measured (scores per task, energy per domain, wall time, tokens,
//! requests, and the labels model/scheme/hardware), and everything else is a pure function of
//! runs. Units live in the types ([`eai_core::Joules`], [`eai_core::Seconds`], and this crate's
//! [`ScorePerWattHour`], [`Percent`], [`PercentagePoints`], …); watt-hours appear only where the
//! paper uses them (EOR and TWEOR). A missing or zero input is a typed [`Error`], never NaN.
//!
//! ```
//! use eai_core::{Joules, Seconds};
//! use eai_metrics::{EnergyDomain, Run, compare};
//!
//! // The paper's DeepSeek-R1-Distill-Qwen-7B example: 39.65 Wh (baseline) → 29.74 Wh (INT8).
//! let run = |scheme: &str, wh: f64, score: f64| {
//!     Run::builder("DeepSeek-R1-Distill-Qwen-7B", scheme, "A100-PCIe-40GB")
//!         .score("mmlu", score)
//!         .energy(EnergyDomain::Gpu(0), Joules::from_watt_hours(wh))
//!         .wall(Seconds(600.0))
//!         .build()
//! };
//! let base = run("fp32", 39.65, 0.600)?;
//! let int8 = run("int8", 29.74, 0.594)?;
//! assert!((base.eor()?.0 - 0.600 / 39.65).abs() < 1e-12); // score per Wh
//!
//! let c = compare(&[base], &[int8])?;
//! assert!((c.energy_reduction.value - 24.99).abs() < 0.01); // percent
//! assert!((c.accuracy_loss.value - 0.6).abs() < 1e-9); // percentage points
//! // A 25 % energy cut with a 1 % relative accuracy loss is a 32.0 % EOR improvement.
//! assert!((c.eor_improvement.value - 31.99).abs() < 0.01);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Layers, each usable alone:
//! - [`Run`] + [`Metric`]: per-run metrics (EOR, TWEOR, J/token, tokens/J, J/request, mean power,
//!   energy-delay product, carbon, cost); add your own by implementing [`Metric`].
//! - [`compare`]: a candidate against a baseline over repeated runs, with Student-t/Welch and
//!   Fieller intervals and Welch tests ([`Summary`], [`welch`], [`ratio_of_means`]).
//! - [`pareto_front`]: non-dominated configurations on (score, energy) or (score, energy, latency).
//! - [`HardwareProfile`]: the paper's six GPUs plus H100 SXM and H200, as serde data with sources.
//! - [`predict`]: roofline transfer of a measurement from one GPU to another, with a stated band.
//! - [`recommend`]: the paper's decision flow (hardware → requirements → cost) as a ranking with
//!   reasons; [`paper`] holds the paper's published numbers to reproduce its three scenarios.
//! - [`Table2`]: report tables as JSON, CSV and Markdown in the paper's Table 2 layout.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub use crate::{
    compare::{
        COMPARISON_LEVEL, Comparison, Estimate, accuracy_loss, compare, energy_reduction,
        group_by_config, implied_eor_improvement, improvement,
    },
    error::{Error, Result},
    hardware::{Architecture, HardwareProfile, Precision, ProfileSet, Sourced, TensorRates},
    metric::{
        Carbon, Cost, EnergyDelay, EnergyPerRequest, EnergyPerToken, Eor, MeanPower, Metric,
        Tokens, TokensPerEnergy, Tweor,
    },
    pareto::{Objectives, ParetoPoint, Sense, pareto_front, pareto_indices},
    predict::{
        Band, Bands, Bound, CROSS_MEMORY_FAMILY, Observation, POWER_BAND, Prediction, Roofline,
        SAME_MEMORY_FAMILY, Workload, bands, predict, roofline,
    },
    quantity::{
        EnergyPrice, GramsCo2e, GramsCo2ePerKwh, JOULES_PER_KWH, JouleSeconds, JoulesPerRequest,
        JoulesPerToken, Money, Percent, PercentagePoints, ScorePerWattHour, ScorePerWattHourSecond,
        TokensPerJoule,
    },
    recommend::{
        Assessment, Candidate, Constraints, CostModel, Evidence, MEMORY_OVERHEAD, Priority, Reason,
        Recommendation, Step, Strategy, Variability, Verdict, recommend,
    },
    report::{ConfigSummary, Table2, Table2Row, summaries_to_markdown},
    run::{Config, DomainEnergy, EnergyDomain, EnergyScope, Run, RunBuilder},
    stats::{Interval, Ratio, Summary, WelchTest, ratio_of_means, t_cdf, t_quantile, welch},
};

mod compare;
mod error;
mod hardware;
mod metric;
pub mod paper;
mod pareto;
mod predict;
mod quantity;
mod recommend;
mod report;
mod run;
mod stats;
