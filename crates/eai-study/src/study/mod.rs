//! [`Study`]: the paper's co-evaluation protocol in one call.
//!
//! For each scheme: build (quantize) the model, measure the idle baseline, warm up, then for
//! each repetition run every task inside its own energy window through a
//! [`Metered`](crate::Metered) model, and record one [`TaskRecord`] per window and one
//! [`SchemeRecord`] per scheme; cool down; next scheme. The analysis (Table 2 with intervals, Pareto front, recommendation) and
//! the output folder are in [`StudyResults`].

mod config;
mod journal;
mod loader;
mod records;
mod run;
mod task;
mod window;

pub use config::{Accounting, PowerSetup, Study};
#[cfg(feature = "model")]
pub use loader::GgufLoader;
pub use loader::{FnLoader, ModelLoader, loader_fn};
pub use records::{
    DeviceShare, EnergyInfo, EnergyKind, ModelInfoRecord, SampleSet, SchemeRecord, StudyResults,
    StudySettings, TaskRecord, TaskSetting, TimeBreakdown,
};
pub use task::StudyTask;
