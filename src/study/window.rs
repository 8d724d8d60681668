//! One task window: the task's requests run once (or again, until the minimum window is
//! reached), the window measured, the passes checked to agree, and the [`TaskRecord`] built.

use std::time::{Duration, Instant};

use eai_core::{
    GenerateRequest, Generation, Joules, LanguageModel, Loglikelihood, LoglikelihoodRequest,
    ModelError, ModelInfo, Seconds,
};
use eai_eval::{EvalResults, Evaluator};
use eai_power::{Baseline, Measurement, Meter};

use super::config::{Accounting, Study};
use super::loader::ModelLoader;
use super::records::{DeviceShare, SampleSet, TaskRecord, TimeBreakdown};
use super::run::{Recorder, build_task_run, energy_domain};
use super::task::StudyTask;
use crate::error::{Error, Result};
use crate::metered::{CallEnergy, CallKind, Metered};
use crate::scheme::Scheme;

/// Which (scheme, repetition, task) a window is.
#[derive(Clone, Copy, Debug)]
pub(super) struct WindowKey<'a> {
    pub(super) scheme: Scheme,
    pub(super) rep: u32,
    pub(super) task: &'a StudyTask,
}

/// What the passes of one window produced.
struct Passes {
    first: EvalResults,
    passes: u32,
    agree: bool,
    engine: Duration,
    calls: Vec<CallEnergy>,
}

impl<L: ModelLoader> Study<L> {
    /// The evaluator of the study's passes: the engine's batch size unless overridden.
    pub(super) fn evaluator(&self, progress: bool, keep_samples: bool) -> Evaluator {
        let e = Evaluator::new().progress(progress).keep_samples(keep_samples);
        match self.batch_size {
            Some(n) => e.batch_size(n),
            None => e,
        }
    }

    /// Runs the passes of one window: the first (metered per call when asked, samples kept),
    /// then more without progress or samples until `min_window` has passed since `start`.
    fn passes(
        &self,
        meter: Option<&Meter>,
        model: &mut dyn LanguageModel,
        key: WindowKey<'_>,
        start: Instant,
        min_window: Duration,
    ) -> Result<Passes> {
        let eval_err = |e| Error::Eval {
            task: key.task.name().into(),
            scheme: key.scheme.label().into(),
            source: Box::new(e),
        };
        let suite = key.task.suite();
        let mut timed = Timed::new(model);
        let (first, calls) = match meter {
            Some(m) if self.per_call_energy => {
                let label = format!("{}/rep{}/{}", key.scheme.label(), key.rep, key.task.name());
                let mut lm = Metered::new(&mut timed, m).label(label);
                let out = self.evaluator(self.progress, self.keep_samples).run(&mut lm, suite);
                let calls = lm.energy()?;
                (out.map_err(eval_err)?, calls)
            }
            _ => {
                let out = self.evaluator(self.progress, self.keep_samples).run(&mut timed, suite);
                (out.map_err(eval_err)?, Vec::new())
            }
        };
        let mut passes = 1u32;
        let mut agree = true;
        let quiet = self.evaluator(false, false);
        while start.elapsed() < min_window {
            let again = quiet.run(&mut timed, suite).map_err(eval_err)?;
            agree &= same_scores(&first, &again);
            passes += 1;
        }
        Ok(Passes { first, passes, agree, engine: timed.busy, calls })
    }

    /// Runs one task window and records it.
    pub(super) fn run_task(
        &self,
        meter: Option<&Meter>,
        rec: &mut Recorder,
        model: &mut dyn LanguageModel,
        key: WindowKey<'_>,
        baseline: Option<&Baseline>,
    ) -> Result<TaskRecord> {
        let name = key.task.name().to_string();
        let scheme = key.scheme;
        let rep = key.rep;
        let metric = key.task.metric_key();
        let min_window = Duration::from_secs_f64(rec.results.settings.min_window.0.max(0.0));
        let start = Seconds(rec.t0.elapsed().as_secs_f64());
        let t = Instant::now();
        let w = meter.map(|m| m.begin(&format!("{}/rep{rep}/{name}", scheme.label())));
        let out = self.passes(meter, model, key, t, min_window);
        let window_wall = Seconds(t.elapsed().as_secs_f64());
        let measurement = match (meter, w) {
            (Some(m), Some(w)) => {
                m.end(w).map_err(|e| Error::power("closing a task window", e))?;
                let mut meas =
                    m.measurement(w).map_err(|e| Error::power("computing a task window", e))?;
                if let Some(b) = baseline {
                    meas.subtract_baseline(b);
                }
                Some((w.0, meas))
            }
            _ => None,
        };
        let Passes { first: results, passes, agree, engine, calls } = out?;
        let per_pass = 1.0 / f64::from(passes);
        let wall = Seconds(window_wall.0 * per_pass);
        let (metrics, docs) = match results.group(&name) {
            Some(g) => (&g.metrics, g.n),
            None => {
                let t = results.task(&name).ok_or_else(|| Error::Config {
                    field: "tasks",
                    reason: format!("the evaluator returned no result for {name}"),
                })?;
                (&t.metrics, t.n_effective)
            }
        };
        let mv = metrics.iter().find(|m| m.key() == metric).ok_or_else(|| Error::Config {
            field: "metric",
            reason: format!(
                "{name} has no metric `{metric}` (it has {})",
                metrics.iter().map(|m| m.key()).collect::<Vec<_>>().join(", ")
            ),
        })?;
        let (score, stderr) = (mv.value, mv.stderr);
        if self.keep_samples {
            for (task, recs) in &results.samples {
                rec.results.samples.push(SampleSet {
                    scheme,
                    repetition: rep,
                    task: task.clone(),
                    records: recs.iter().map(eai_eval::SampleRecord::to_json).collect(),
                });
            }
        }
        let unique: u64 = results.tasks.iter().map(|t| t.requests.unique_requests as u64).sum();
        let requests = calls.iter().map(|c| c.requests).sum::<u64>().max(unique);
        let stats = |f: fn(&eai_eval::RequestStats) -> Option<u64>| -> Option<u64> {
            results.tasks.iter().map(|t| f(&t.requests)).sum()
        };
        let generated_tokens = stats(|r| r.generated_tokens)
            .or_else(|| calls.iter().find(|c| c.kind == CallKind::Generation)?.tokens);
        let tokens = match (stats(|r| r.scored_tokens), stats(|r| r.generated_tokens)) {
            (Some(s), Some(g)) => Some(s + g),
            _ if !calls.is_empty() => calls.iter().map(|c| c.tokens).sum::<Option<u64>>(),
            _ => None,
        };
        let time = TimeBreakdown::new(
            Seconds(0.0),
            Seconds(engine.as_secs_f64() * per_pass),
            Seconds(0.0),
            wall,
        );
        let (window, devices, energy) = match &measurement {
            Some((id, m)) => {
                let devices = shares(m, &rec.results.energy.sources, per_pass);
                let energy = charged(&devices, self.accounting);
                (Some(*id), devices, energy)
            }
            None => (None, Vec::new(), None),
        };
        let record = TaskRecord {
            scheme,
            repetition: rep,
            task: name,
            metric,
            score,
            stderr,
            docs,
            window,
            start,
            wall,
            energy,
            devices,
            calls,
            requests,
            tokens,
            generated_tokens,
            passes,
            window_wall,
            passes_agree: agree,
            time: Some(time),
        };
        rec.results.task_runs.push(build_task_run(
            &rec.results.settings,
            self.accounting,
            &record,
        )?);
        Ok(record)
    }
}

/// Whether two passes scored identically: every metric value of every task and group.
fn same_scores(a: &EvalResults, b: &EvalResults) -> bool {
    let values = |r: &EvalResults| -> Vec<(String, f64)> {
        r.tasks
            .iter()
            .flat_map(|t| {
                t.metrics.iter().map(move |m| (format!("{}/{}", t.name, m.key()), m.value))
            })
            .chain(r.groups.iter().flat_map(|g| {
                g.metrics.iter().map(move |m| (format!("{}/{}", g.name, m.key()), m.value))
            }))
            .collect()
    };
    let (x, y) = (values(a), values(b));
    x.len() == y.len()
        && x.iter().zip(&y).all(|(p, q)| p.0 == q.0 && p.1.to_bits() == q.1.to_bits())
}

/// Each source's energy in a window, per pass.
fn shares(m: &Measurement, sources: &[eai_power::SourceInfo], per_pass: f64) -> Vec<DeviceShare> {
    m.devices
        .iter()
        .map(|d| DeviceShare {
            source: d.source.clone(),
            domain: energy_domain(sources, &d.source, &d.domain),
            energy: d.energy.map(|e| e * per_pass),
            above_idle: d.dynamic_energy.map(|e| e * per_pass),
            flags: d
                .flags
                .iter()
                .map(|f| {
                    serde_json::to_value(f)
                        .ok()
                        .and_then(|v| v.get("flag").and_then(|x| x.as_str()).map(str::to_string))
                        .unwrap_or_else(|| format!("{f:?}"))
                })
                .collect(),
        })
        .collect()
}

/// The energy charged to a task under the study's accounting (`None`: no source had data).
fn charged(devices: &[DeviceShare], a: Accounting) -> Option<Joules> {
    let charged: Vec<Joules> = devices
        .iter()
        .filter_map(|d| match a {
            Accounting::Total => d.energy,
            Accounting::AboveIdle => d.above_idle.or(d.energy),
        })
        .collect();
    (!charged.is_empty()).then(|| charged.into_iter().sum())
}

/// A model whose calls are timed (the engine's share of a window): one clock read per call.
struct Timed<'m> {
    inner: &'m mut dyn LanguageModel,
    busy: Duration,
}

impl<'m> Timed<'m> {
    fn new(inner: &'m mut dyn LanguageModel) -> Self {
        Self { inner, busy: Duration::ZERO }
    }
}

impl LanguageModel for Timed<'_> {
    fn info(&self) -> ModelInfo {
        self.inner.info()
    }

    fn loglikelihood(
        &mut self,
        reqs: &[LoglikelihoodRequest],
    ) -> std::result::Result<Vec<Loglikelihood>, ModelError> {
        let t = Instant::now();
        let out = self.inner.loglikelihood(reqs);
        self.busy += t.elapsed();
        out
    }

    fn generate_until(
        &mut self,
        reqs: &[GenerateRequest],
    ) -> std::result::Result<Vec<Generation>, ModelError> {
        let t = Instant::now();
        let out = self.inner.generate_until(reqs);
        self.busy += t.elapsed();
        out
    }

    fn forward_passes(&self) -> Option<u64> {
        self.inner.forward_passes()
    }
}
