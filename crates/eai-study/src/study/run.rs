//! The run loop: load each scheme, baseline, warm-up, repetitions × tasks in their windows,
//! and the runs built from the task records.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::time::{Duration, Instant};

use eai_core::{Joules, LanguageModel, Seconds};
use eai_eval::Prepared;
use eai_metrics::{EnergyDomain, Run};
use eai_power::{Domain, Meter, SourceInfo, WindowId};

use super::config::{Accounting, Study};
use super::journal::{Entry, Journal, RunEntry};
use super::loader::ModelLoader;
use super::records::{ModelInfoRecord, SchemeRecord, StudyResults, StudySettings, TaskRecord};
use super::window::WindowKey;
use crate::environment::{Environment, HardwareChoice};
use crate::error::{Error, Result};
use crate::scheme::Scheme;

impl<L: ModelLoader> Study<L> {
    /// Runs the study.
    ///
    /// # Errors
    /// Invalid settings ([`Error::Config`]) and power-source failures before anything ran;
    /// after that, any failure is returned as [`Error::Partial`] carrying everything recorded
    /// so far (windows and trace included).
    pub fn run(mut self) -> Result<StudyResults> {
        self.validate()?;
        // Every task's requests, built once: reused by every scheme, repetition and pass.
        let mut plans = Vec::with_capacity(self.tasks.len());
        for t in &self.tasks {
            let plan = self.evaluator(false, false).prepare(t.suite()).map_err(|e| {
                Error::Eval { task: t.name().into(), scheme: "-".into(), source: Box::new(e) }
            })?;
            plans.push(plan);
        }
        // Every task's requests encoded once, before any window (where the engine can say how):
        // no window pays for tokenizing, and the time is reported per task.
        let mut tokenized = Vec::with_capacity(plans.len());
        for (t, plan) in self.tasks.iter().zip(&plans) {
            let secs = self.loader.pretokenize(plan).map_err(|e| Error::Model {
                scheme: format!("- (tokenizing {})", t.name()),
                source: e,
            })?;
            tokenized.push(secs);
        }
        let (meter, energy) = self.start_meter()?;
        let mut environment = Environment::capture();
        let hardware = match &self.hardware {
            Some(h) => {
                environment.hardware = Some(HardwareChoice::given(h));
                h.clone()
            }
            None => default_hardware(&energy.sources),
        };
        let min_window = self.min_window.unwrap_or(if has_nvml_sensor(&energy.sources) {
            DEFAULT_MIN_WINDOW_NVML
        } else {
            Duration::ZERO
        });
        let settings = StudySettings {
            model: self.loader.name(),
            hardware,
            schemes: self.schemes.clone(),
            tasks: self
                .tasks
                .iter()
                .zip(plans.iter().zip(&tokenized))
                .map(|(t, (p, secs))| {
                    let mut s = t.setting();
                    s.prepare = p.prepare_time();
                    s.tokenize = *secs;
                    s
                })
                .collect(),
            repeats: self.repeats,
            warmup_docs: self.warmup_docs,
            cooldown: Seconds(self.cooldown.as_secs_f64()),
            baseline: Seconds(if meter.is_some() { self.baseline.as_secs_f64() } else { 0.0 }),
            batch_size: self.batch_size,
            per_call_energy: self.per_call_energy && meter.is_some(),
            min_window: Seconds(if meter.is_some() { min_window.as_secs_f64() } else { 0.0 }),
        };
        let t0 = Instant::now();
        let mut rec = Recorder {
            results: StudyResults {
                settings,
                energy,
                schemes: Vec::new(),
                tasks: Vec::new(),
                runs: Vec::new(),
                task_runs: Vec::new(),
                windows: Vec::new(),
                timeline: None,
                samples: Vec::new(),
                duration: Seconds(0.0),
                environment,
            },
            t0,
            journal: None,
            done: Default::default(),
        };
        let mut restored_windows = Vec::new();
        if let Some(path) = self.journal.clone() {
            let (j, restored) = Journal::open(&path, &rec.results.settings)?;
            rec.done = restored.done();
            let restored_redo = restored.redo;
            rec.results.schemes = restored.schemes;
            for r in restored.runs {
                rec.results.settings.model = r.run.config().model.clone();
                rec.results.runs.push(r.run);
                rec.results.tasks.extend(r.tasks);
                rec.results.task_runs.extend(r.task_runs);
                rec.results.samples.extend(r.samples);
                restored_windows.extend(r.windows);
            }
            for ((scheme, rep), why) in &restored_redo {
                self.say(&format!(
                    "eai study: {} rep {rep} is run again: {why}",
                    scheme.display_name()
                ));
            }
            if !rec.done.is_empty() {
                self.say(&format!(
                    "eai study: resuming from {}: {} run(s) already finished",
                    path.display(),
                    rec.done.len()
                ));
            }
            rec.journal = Some(j);
        }
        let n_restored = rec.results.tasks.len();
        let outcome = self.run_all(meter.as_ref(), &plans, &mut rec);
        let mut results = rec.results;
        results.duration = Seconds(t0.elapsed().as_secs_f64());
        if let Some(m) = meter {
            match m.stop() {
                Ok(session) => {
                    results.windows = session.windows;
                    results.timeline = Some(session.timeline);
                    // The restored runs' windows, renumbered after this session's.
                    let next = results.windows.iter().map(|w| w.id + 1).max().unwrap_or(0);
                    let renumber = |id: u64| {
                        restored_windows.iter().position(|w| w.id == id).map(|i| next + i as u64)
                    };
                    for t in &mut results.tasks[..n_restored] {
                        t.window = t.window.and_then(renumber);
                    }
                    for (i, w) in restored_windows.iter_mut().enumerate() {
                        w.id = next + i as u64;
                    }
                    results.windows.splice(0..0, restored_windows);
                }
                Err(e) if outcome.is_ok() => {
                    return Err(Error::Partial {
                        results: Box::new(results),
                        source: Box::new(Error::power("stopping the sampler", e)),
                    });
                }
                Err(_) => {}
            }
        }
        // A run redone after a resume (its sample files were found wrong) ran after runs that
        // follow it: every record in study order, as an uninterrupted study lists them.
        in_study_order(&mut results);
        match outcome {
            Ok(()) => Ok(results),
            Err(e) => Err(Error::Partial { results: Box::new(results), source: Box::new(e) }),
        }
    }

    fn say(&self, line: &str) {
        tracing::info!("{line}");
        if self.progress {
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "{line}");
        }
    }

    /// After the first model is built: the device that runs it, the libraries it loaded, and
    /// the hardware label of the runs (matched from the GPU's name unless one was given).
    fn place(&self, rec: &mut Recorder, info: &ModelInfoRecord) {
        let r = &mut rec.results;
        r.environment.model_device = info.device.clone();
        r.environment.refresh_libraries();
        if self.hardware.is_none() {
            let choice = HardwareChoice::auto(info.device.as_deref(), &r.energy.sources);
            r.settings.hardware = choice.label.clone();
            r.environment.hardware = Some(choice);
        }
        let sensors: Vec<String> =
            r.energy.sources.iter().map(|s| format!("{} ({})", s.id, s.name)).collect();
        let line = format!(
            "eai study: model on {}; energy from {}; hardware label `{}`",
            info.device.as_deref().unwrap_or("a device the engine does not name"),
            if sensors.is_empty() { "no sensor".to_string() } else { sensors.join(", ") },
            r.settings.hardware
        );
        self.say(&line);
    }

    fn run_all(
        &mut self,
        meter: Option<&Meter>,
        plans: &[Prepared],
        rec: &mut Recorder,
    ) -> Result<()> {
        let total = self.schemes.len() * self.repeats as usize * self.tasks.len();
        let mut step = 0usize;
        let schemes = self.schemes.clone();
        let mut placed = false;
        for (si, &scheme) in schemes.iter().enumerate() {
            if (1..=self.repeats).all(|rep| rec.done.contains(&(scheme, rep))) {
                step += self.repeats as usize * self.tasks.len();
                continue; // finished before a resume
            }
            // 1. Build (quantize) the model.
            self.say(&format!("eai study: {} — building the model", scheme.display_name()));
            let t = Instant::now();
            let w = meter.map(|m| m.begin(&format!("load:{}", scheme.label())));
            let loaded = self.loader.load(scheme);
            let load_time = Seconds(t.elapsed().as_secs_f64());
            let load_energy = match (meter, w) {
                (Some(m), Some(w)) => {
                    m.end(w).map_err(|e| Error::power("closing the load window", e))?;
                    m.measurement(w)
                        .map_err(|e| Error::power("computing the load window", e))?
                        .energy()
                }
                _ => None,
            };
            let mut model =
                loaded.map_err(|e| Error::Model { scheme: scheme.label().into(), source: e })?;
            let info: ModelInfoRecord = model.info().into();
            if !placed {
                // The first model built (after a resume, maybe not the first scheme's).
                placed = true;
                rec.results.settings.model = info.name.clone();
                self.place(rec, &info);
            }

            // 2. Idle baseline.
            let baseline = match meter {
                Some(m) if !self.baseline.is_zero() => {
                    self.say(&format!(
                        "eai study: {} — idle baseline ({:.0} s)",
                        scheme.display_name(),
                        self.baseline.as_secs_f64()
                    ));
                    Some(
                        m.measure_baseline(self.baseline)
                            .map_err(|e| Error::power("measuring the idle baseline", e))?,
                    )
                }
                _ => None,
            };

            // 3. Warm-up (unmeasured: its window is recorded but charged to no run).
            let t = Instant::now();
            if self.warmup_docs > 0 {
                let w = meter.map(|m| m.begin(&format!("warmup:{}", scheme.label())));
                for st in &self.tasks {
                    let suite = st.clone().limit(self.warmup_docs).suite;
                    self.evaluator(false, false).run(&mut model, &suite).map_err(|e| {
                        Error::Eval {
                            task: st.name().into(),
                            scheme: scheme.label().into(),
                            source: Box::new(e),
                        }
                    })?;
                }
                // Each task's longest requests once more, as one call (or as the override
                // splits them): a first pass at a task's own shapes pays one-time costs (device
                // buffers grown to full passes, library kernels loaded for their sizes) that
                // would otherwise land in the task's first window (issue 14).
                for (st, plan) in self.tasks.iter().zip(plans) {
                    let reqs: Vec<eai_core::LoglikelihoodRequest> =
                        plan.loglikelihood_requests().take(WARMUP_REQUESTS).cloned().collect();
                    for chunk in reqs.chunks(self.batch_size.unwrap_or(usize::MAX).max(1)) {
                        model.loglikelihood(chunk).map_err(|e| Error::Eval {
                            task: st.name().into(),
                            scheme: scheme.label().into(),
                            source: Box::new(eai_eval::Error::Model {
                                task: st.name().into(),
                                source: e,
                            }),
                        })?;
                    }
                }
                if let (Some(m), Some(w)) = (meter, w) {
                    m.end(w).map_err(|e| Error::power("closing the warm-up window", e))?;
                }
            }
            let record = SchemeRecord {
                scheme,
                model: info,
                load_time,
                load_energy,
                baseline: baseline.clone(),
                warmup_time: Seconds(t.elapsed().as_secs_f64()),
            };
            if let Some(j) = &mut rec.journal {
                j.append(&Entry::Scheme { record: Box::new(record.clone()) })?;
            }
            rec.results.schemes.retain(|s| s.scheme != scheme);
            rec.results.schemes.push(record);

            // 4. Repetitions × tasks, each task in its own window.
            for rep in 1..=self.repeats {
                if rec.done.contains(&(scheme, rep)) {
                    step += self.tasks.len();
                    continue; // finished before a resume
                }
                let (task_runs0, samples0) =
                    (rec.results.task_runs.len(), rec.results.samples.len());
                let mut run_tasks = Vec::new();
                for (st, plan) in self.tasks.iter().zip(plans) {
                    step += 1;
                    let key = WindowKey { scheme, rep, task: st, plan };
                    let r = self.run_task(meter, rec, &mut *model, key, baseline.as_ref())?;
                    self.say(&format!(
                        "eai study: [{step}/{total}] {} rep {rep}/{} {}: {} {:.4}, {:.2} s{}{}{}{}",
                        scheme.display_name(),
                        self.repeats,
                        r.task,
                        r.metric,
                        r.score,
                        r.wall.0,
                        r.energy.map_or(String::new(), |e| format!(", {:.1} J", e.0)),
                        if r.passes > 1 { " per pass" } else { "" },
                        r.time
                            .and_then(|t| t.engine_busy())
                            .map_or(String::new(), |b| format!(", engine busy {:.0} %", 100.0 * b)),
                        match (r.passes, r.passes_agree) {
                            (1, _) => String::new(),
                            (n, true) => format!(" ({n} passes in {:.1} s)", r.window_wall.0),
                            (n, false) => format!(
                                " ({n} passes in {:.1} s; PASSES DISAGREE, first pass scored)",
                                r.window_wall.0
                            ),
                        },
                    ));
                    run_tasks.push(r);
                }
                let run =
                    build_run(&rec.results.settings, self.accounting, scheme, rep, &run_tasks)?;
                if let Some(j) = &mut rec.journal {
                    let mut windows = Vec::new();
                    for id in run_tasks.iter().filter_map(|t| t.window) {
                        if let Some(m) = meter {
                            windows.push(m.measurement(WindowId(id)).map_err(|e| {
                                Error::power("recomputing a task window for the journal", e)
                            })?);
                        }
                    }
                    let entry = RunEntry {
                        scheme,
                        repetition: rep,
                        run: run.clone(),
                        tasks: run_tasks.clone(),
                        task_runs: rec.results.task_runs[task_runs0..].to_vec(),
                        samples: Vec::new(),
                        sample_files: Vec::new(),
                        windows,
                    };
                    j.record_run(entry, &mut rec.results.samples[samples0..])?;
                }
                rec.results.runs.push(run);
                rec.results.tasks.extend(run_tasks);
            }
            drop(model);

            // 5. Cool-down.
            if !self.cooldown.is_zero() && si + 1 < schemes.len() {
                self.say(&format!("eai study: cool-down {:.0} s", self.cooldown.as_secs_f64()));
                std::thread::sleep(self.cooldown);
            }
        }
        Ok(())
    }
}

/// Sorts the per-run records by (scheme in the study's order, repetition); stable, so the
/// tasks of a run keep their order.
fn in_study_order(r: &mut StudyResults) {
    let schemes = r.settings.schemes.clone();
    let pos = |s: Scheme| schemes.iter().position(|x| *x == s).unwrap_or(usize::MAX);
    let pos_label = |l: &str| schemes.iter().position(|x| x.label() == l).unwrap_or(usize::MAX);
    r.tasks.sort_by_key(|t| (pos(t.scheme), t.repetition));
    r.samples.sort_by_key(|t| (pos(t.scheme), t.repetition));
    r.runs.sort_by_key(|x| (pos_label(&x.config().scheme), x.repetition()));
    r.task_runs.sort_by_key(|x| (pos_label(&x.config().scheme), x.repetition()));
}

pub(super) struct Recorder {
    pub(super) results: StudyResults,
    pub(super) t0: Instant,
    journal: Option<Journal>,
    done: std::collections::BTreeSet<(Scheme, u32)>,
}

/// Log-likelihood requests per task run in the warm-up besides its documents: the plan's first
/// (longest contexts first), a few full GPU passes of HellaSwag's longest documents.
const WARMUP_REQUESTS: usize = 256;

/// The minimum task window when an NVML GPU is measured: below it the sensor's 100 ms
/// updates dominate the error (docs/pipeline.md).
pub(super) const DEFAULT_MIN_WINDOW_NVML: Duration = Duration::from_secs(5);

/// Whether a measured NVML GPU is among the sources.
fn has_nvml_sensor(sources: &[SourceInfo]) -> bool {
    sources.iter().any(|s| {
        s.provenance == eai_power::Provenance::Measured
            && matches!(s.domain, Domain::Gpu | Domain::GpuModule)
            && s.id.starts_with("nvml/")
    })
}

pub(super) fn default_hardware(sources: &[SourceInfo]) -> String {
    sources
        .iter()
        .find(|s| matches!(s.domain, Domain::Gpu | Domain::GpuModule))
        .map_or_else(|| "cpu".to_string(), |s| s.name.clone())
}

/// The metrics layer's domain for a power source.
pub(super) fn energy_domain(sources: &[SourceInfo], id: &str, d: &Domain) -> EnergyDomain {
    match d {
        Domain::Gpu | Domain::GpuModule => {
            let idx = sources
                .iter()
                .find(|s| s.id == id)
                .and_then(|s| s.meta("nvml_index"))
                .and_then(|i| i.parse().ok())
                .unwrap_or_else(|| {
                    sources
                        .iter()
                        .filter(|s| matches!(s.domain, Domain::Gpu | Domain::GpuModule))
                        .position(|s| s.id == id)
                        .unwrap_or(0) as u32
                });
            EnergyDomain::Gpu(idx)
        }
        Domain::CpuPackage { package } => EnergyDomain::CpuPackage(*package),
        Domain::Dram { .. } => EnergyDomain::Other(id.to_string()),
        Domain::Psys => EnergyDomain::System,
        _ => EnergyDomain::Other(id.to_string()),
    }
}

fn metrics_err(ctx: String) -> impl FnOnce(eai_metrics::Error) -> Error {
    move |e| Error::metrics(ctx, e)
}

/// The run of one (scheme, repetition): every task's score, summed energy per domain, summed
/// wall time, requests and tokens.
fn build_run(
    s: &StudySettings,
    a: Accounting,
    scheme: Scheme,
    rep: u32,
    tasks: &[TaskRecord],
) -> Result<Run> {
    let mut b = Run::builder(&s.model, scheme.label(), &s.hardware).repetition(rep);
    let mut by_domain: BTreeMap<EnergyDomain, Joules> = BTreeMap::new();
    let mut complete = true;
    for t in tasks {
        b = b.score(&t.task, t.score);
        if t.energy.is_none() {
            complete = false;
        }
        add_domains(&mut by_domain, t, a);
    }
    if complete {
        for (d, e) in by_domain {
            b = b.energy(d, e);
        }
    }
    let wall: f64 = tasks.iter().map(|t| t.wall.0).sum();
    b = b.wall(Seconds(wall)).requests(tasks.iter().map(|t| t.requests).sum());
    let generated: Option<u64> = tasks.iter().map(|t| t.generated_tokens).sum();
    if let Some(g) = generated.filter(|&g| g > 0) {
        b = b.output_tokens(g);
    }
    b.build().map_err(metrics_err(format!("building run {}/{}#{rep}", s.model, scheme.label())))
}

/// Adds a task's per-domain energy, charged as the study charges (total or above idle).
fn add_domains(by_domain: &mut BTreeMap<EnergyDomain, Joules>, t: &TaskRecord, a: Accounting) {
    if t.energy.is_none() {
        return;
    }
    for d in &t.devices {
        let e = match a {
            Accounting::Total => d.energy,
            Accounting::AboveIdle => d.above_idle.or(d.energy),
        };
        if let Some(e) = e {
            *by_domain.entry(d.domain.clone()).or_insert(Joules::ZERO) += e;
        }
    }
}

/// The run of one task window.
pub(super) fn build_task_run(s: &StudySettings, a: Accounting, t: &TaskRecord) -> Result<Run> {
    let mut b = Run::builder(&s.model, t.scheme.label(), &s.hardware)
        .repetition(t.repetition)
        .score(&t.task, t.score)
        .wall(t.wall)
        .requests(t.requests);
    let mut by_domain = BTreeMap::new();
    add_domains(&mut by_domain, t, a);
    for (d, e) in by_domain {
        b = b.energy(d, e);
    }
    if let Some(g) = t.generated_tokens.filter(|&g| g > 0) {
        b = b.output_tokens(g);
    }
    b.build().map_err(metrics_err(format!(
        "building run {}/{}#{} ({})",
        s.model,
        t.scheme.label(),
        t.repetition,
        t.task
    )))
}
