//! One task window: the task's requests run once (or again, until the minimum window is
//! reached), the window measured, the passes checked to agree, and the [`TaskRecord`] built.

use std::time::{Duration, Instant};

use eai_core::{Joules, LanguageModel, Seconds};
use eai_eval::{Evaluator, PassProgress, Prepared, RepeatedRun};
use eai_power::{Baseline, Measurement, Meter};

use super::config::{Accounting, Study};
use super::loader::ModelLoader;
use super::records::{DeviceShare, SampleSet, TaskRecord, TimeBreakdown};
use super::run::{Recorder, build_task_run, energy_domain};
use super::task::StudyTask;
use crate::error::{Error, Result};
use crate::metered::{CallEnergy, CallKind, Metered, PendingCalls};
use crate::scheme::Scheme;

/// Which (scheme, repetition, task) a window is.
#[derive(Clone, Copy, Debug)]
pub(super) struct WindowKey<'a> {
    pub(super) scheme: Scheme,
    pub(super) rep: u32,
    pub(super) task: &'a StudyTask,
    /// The task's requests, built once for the whole study.
    pub(super) plan: &'a Prepared,
}

/// What the passes of one window produced.
struct Passes<'m> {
    run: RepeatedRun,
    calls: Option<PendingCalls<'m>>,
}

impl<L: ModelLoader> Study<L> {
    /// The evaluator of the study's passes: the engine's batching unless overridden.
    pub(super) fn evaluator(&self, progress: bool, keep_samples: bool) -> Evaluator {
        Evaluator::new().progress(progress).keep_samples(keep_samples).batch_limit(self.batch_size)
    }

    /// Runs the passes of one window over the task's prepared plan: the first (samples kept,
    /// calls metered when asked), then again until `min_window` has passed since `start`.
    fn passes<'m>(
        &self,
        meter: Option<&'m Meter>,
        model: &mut dyn LanguageModel,
        key: WindowKey<'_>,
        start: Instant,
        min_window: Duration,
    ) -> Result<Passes<'m>> {
        let eval_err = |e| Error::Eval {
            task: key.task.name().into(),
            scheme: key.scheme.label().into(),
            source: Box::new(e),
        };
        let ev = self.evaluator(self.progress, self.keep_samples);
        let more = |_: PassProgress| start.elapsed() < min_window;
        match meter {
            Some(m) if self.per_call_energy => {
                let label = format!("{}/rep{}/{}", key.scheme.label(), key.rep, key.task.name());
                let mut lm = Metered::new(&mut *model, m).label(label);
                let run = ev.run_prepared_passes(&mut lm, key.plan, more);
                let calls = lm.take_calls();
                Ok(Passes { run: run.map_err(eval_err)?, calls: Some(calls) })
            }
            _ => {
                let run = ev.run_prepared_passes(model, key.plan, more).map_err(eval_err)?;
                Ok(Passes { run, calls: None })
            }
        }
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
        let min_window = Duration::try_from_secs_f64(rec.results.settings.min_window.0)
            .unwrap_or(Duration::ZERO);
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
        let Passes { run, calls } = out?;
        let RepeatedRun { results, passes, agreement, .. } = run;
        let passes = u32::try_from(passes).unwrap_or(u32::MAX).max(1);
        let per_pass = 1.0 / f64::from(passes);
        // Every pass makes the same calls: per-pass call figures divide exactly.
        let calls = match calls {
            Some(p) => per_pass_calls(p.energy()?, passes),
            None => Vec::new(),
        };
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
                    file: None,
                });
            }
        }
        let unique: u64 = results.tasks.iter().map(|t| t.requests.unique_requests as u64).sum();
        let lm_eval_requests: u64 = results.tasks.iter().map(|t| t.requests.requests as u64).sum();
        let requests = calls.iter().map(|c| c.requests).sum::<u64>().max(unique);
        // Tokens per task: scored plus generated, known when the engine counted them.
        let tokens: Option<u64> = results
            .tasks
            .iter()
            .map(|t| match (t.requests.scored_tokens, t.requests.generated_tokens) {
                (None, None) => None,
                (s, g) => Some(s.unwrap_or(0) + g.unwrap_or(0)),
            })
            .sum();
        let tokens = tokens.or_else(|| calls.iter().map(|c| c.tokens).sum::<Option<u64>>());
        let generated_tokens: Option<u64> = results
            .tasks
            .iter()
            .filter_map(|t| t.requests.generated_tokens)
            .reduce(|a, b| a + b)
            .or_else(|| calls.iter().find(|c| c.kind == CallKind::Generation)?.tokens);
        let timing = |f: fn(&eai_eval::TaskTiming) -> f64| -> Seconds {
            Seconds(results.tasks.iter().map(|t| f(&t.timing)).sum::<f64>() * per_pass)
        };
        let tokenize = timing(|t| t.tokenize.map_or(0.0, |x| x.0));
        let time = TimeBreakdown::new(
            tokenize,
            Seconds((timing(|t| t.engine.0).0 - tokenize.0).max(0.0)),
            timing(|t| t.scoring.0),
            wall,
        );
        let (window, devices, energy) = match &measurement {
            Some((id, m)) => {
                let used = self.loader.cuda_ordinals();
                let devices = shares(m, &rec.results.energy.sources, per_pass, used.as_deref());
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
            passes_agree: agreement.agrees(),
            passes_identical: agreement.identical,
            lm_eval_requests,
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

/// Call figures summed over identical passes, per pass.
fn per_pass_calls(calls: Vec<CallEnergy>, passes: u32) -> Vec<CallEnergy> {
    let n = u64::from(passes.max(1));
    let k = 1.0 / n as f64;
    calls
        .into_iter()
        .map(|mut c| {
            c.calls /= n;
            c.requests /= n;
            c.tokens = c.tokens.map(|t| t / n);
            c.duration = Seconds(c.duration.0 * k);
            c.energy = c.energy.map(|e| e * k);
            c
        })
        .collect()
}

/// Each source's energy in a window, per pass. With `used` (the CUDA ordinals the model runs
/// on), a GPU source whose `cuda_ordinal` is known and not among them is not charged.
fn shares(
    m: &Measurement,
    sources: &[eai_power::SourceInfo],
    per_pass: f64,
    used: Option<&[usize]>,
) -> Vec<DeviceShare> {
    m.devices
        .iter()
        .map(|d| DeviceShare {
            charged: charged_source(sources, &d.source, used),
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

/// Whether a source's energy is the model's: every source, except a GPU that the model does
/// not run on (known from `used` and the source's `cuda_ordinal`).
pub(super) fn charged_source(
    sources: &[eai_power::SourceInfo],
    id: &str,
    used: Option<&[usize]>,
) -> bool {
    let Some(used) = used else { return true };
    let Some(info) = sources.iter().find(|s| s.id == id) else { return true };
    if !matches!(info.domain, eai_power::Domain::Gpu | eai_power::Domain::GpuModule) {
        return true;
    }
    match info.meta("cuda_ordinal").and_then(|o| o.parse::<usize>().ok()) {
        Some(o) => used.contains(&o),
        None => true,
    }
}

/// The energy charged to a task under the study's accounting (`None`: no source had data):
/// the sum over the charged sources.
fn charged(devices: &[DeviceShare], a: Accounting) -> Option<Joules> {
    let charged: Vec<Joules> = devices
        .iter()
        .filter(|d| d.charged)
        .filter_map(|d| match a {
            Accounting::Total => d.energy,
            Accounting::AboveIdle => d.above_idle.or(d.energy),
        })
        .collect();
    (!charged.is_empty()).then(|| charged.into_iter().sum())
}
