//! The small shared vocabulary of the eai workspace.
//!
//! Two or more sibling crates need these items, so they live here and nowhere else:
//!
//! - unit newtypes ([`Joules`], [`Watts`], [`Seconds`]) so that no number crosses a crate
//!   boundary without its unit (NVML's milliwatts and millijoules are converted at the sensor);
//! - the [`LanguageModel`] trait and its request/response types, the seam between an inference
//!   engine (`eai-model`, or yours) and the benchmark tasks (`eai-eval`): three required methods
//!   (`info`, `loglikelihood`, `generate_until`), an optional rolling log-likelihood for
//!   perplexity tasks ([`LanguageModel::loglikelihood_rolling`], unsupported by default) and
//!   capability queries that may answer "unknown" ([`LanguageModel::supports`],
//!   [`LanguageModel::batch_hint`], ...).
//!
//! The crate has one dependency (`thiserror`) and an optional `serde` feature (on by default).
//!
//! ```
//! use eai_core::{Joules, Seconds, Watts};
//!
//! let energy = Watts(250.0) * Seconds(4.0);
//! assert_eq!(energy, Joules(1000.0));
//! assert_eq!(energy / Seconds(4.0), Watts(250.0));
//! assert!((energy.to_watt_hours() - 1000.0 / 3600.0).abs() < 1e-12);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub use crate::{
    model::{
        BatchHint, EngineTime, GenerateRequest, Generation, LanguageModel, Loglikelihood,
        LoglikelihoodRequest, ModelError, ModelInfo, RequestKind, RollingLoglikelihood,
        RollingRequest,
    },
    units::{Joules, Seconds, Watts},
};

mod model;
mod units;
