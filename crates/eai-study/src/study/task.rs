//! [`StudyTask`]: one task (or group) of a study, with the metric that scores it.

use eai_eval::{Limit, Suite, Task};

use super::records::TaskSetting;
use crate::error::{Error, Result};

/// One task of a study, run in one energy window: an `eai-eval` task, or a group of tasks
/// scored by their aggregate (MMLU's 57 subjects as `mmlu`), plus the metric that scores it.
#[derive(Clone, Debug)]
pub struct StudyTask {
    pub(super) name: String,
    pub(super) suite: Suite,
    pub(super) metric: Option<String>,
}

impl StudyTask {
    /// The task with its headline metric (`acc_norm` for ARC-Challenge and HellaSwag,
    /// `exact_match,strict-match` for GSM8K, `acc` otherwise).
    pub fn new(task: Task) -> Self {
        let name = task.name().to_string();
        Self { name, suite: Suite { tasks: vec![task], groups: vec![] }, metric: None }
    }

    /// A group of tasks run in one window and scored by the aggregate of the group `name` of
    /// `suite` (e.g. the `mmlu` suite from `eai_eval::tasks::load`, scored as `mmlu`).
    ///
    /// # Errors
    /// [`Error::Config`] when `suite` has no group called `name`.
    pub fn group(name: impl Into<String>, suite: Suite) -> Result<Self> {
        let name = name.into();
        if !suite.groups.iter().any(|g| g.name == name) {
            return Err(Error::Config {
                field: "tasks",
                reason: format!(
                    "the suite has no group `{name}` (it has {})",
                    suite.groups.iter().map(|g| g.name.as_str()).collect::<Vec<_>>().join(", ")
                ),
            });
        }
        Ok(Self { name, suite, metric: None })
    }

    /// Scores with this metric (lm-eval key, e.g. `acc,none`) instead of the headline one.
    pub fn metric(mut self, key: impl Into<String>) -> Self {
        self.metric = Some(key.into());
        self
    }

    /// Evaluates only the first `n` documents (of each task of a group).
    pub fn limit(mut self, n: usize) -> Self {
        self.suite.tasks =
            self.suite.tasks.into_iter().map(|t| t.with_limit(Some(Limit::Count(n)))).collect();
        self
    }

    /// Uses `k` few-shot examples.
    ///
    /// # Errors
    /// When a task has no few-shot pool large enough.
    pub fn shots(mut self, k: usize) -> Result<Self> {
        let mut out = Vec::with_capacity(self.suite.tasks.len());
        for t in self.suite.tasks {
            let name = t.name().to_string();
            out.push(t.with_num_fewshot(k).map_err(|e| Error::Eval {
                task: name,
                scheme: "-".into(),
                source: Box::new(e),
            })?);
        }
        self.suite.tasks = out;
        Ok(self)
    }

    /// The task's (or group's) name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The tasks and groups it runs.
    pub fn suite(&self) -> &Suite {
        &self.suite
    }

    /// Documents evaluated (summed over a group's tasks).
    pub fn docs(&self) -> usize {
        self.suite.tasks.iter().map(|t| t.eval_docs().len()).sum()
    }

    pub(super) fn metric_key(&self) -> String {
        if let Some(m) = &self.metric {
            return m.clone();
        }
        eai_eval::Benchmark::from_name(&self.name)
            .map_or_else(|_| "acc,none".to_string(), |b| b.headline_metric().to_string())
    }

    pub(super) fn setting(&self) -> TaskSetting {
        let first = self.suite.tasks.first();
        let more = self.suite.tasks.len().saturating_sub(1);
        TaskSetting {
            name: self.name.clone(),
            metric: self.metric_key(),
            shots: first.map_or(0, |t| t.config().num_fewshot),
            docs: self.docs(),
            source: first.map_or_else(String::new, |t| {
                if more > 0 {
                    format!("{} (+{more} tasks)", t.source())
                } else {
                    t.source().to_string()
                }
            }),
            prepare: eai_core::Seconds(0.0),
            tokenize: None,
        }
    }
}

impl From<Task> for StudyTask {
    fn from(t: Task) -> Self {
        Self::new(t)
    }
}
