//! Running prepared tasks against a [`LanguageModel`]: batching, timing, repeated passes.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use eai_core::{
    EngineTime, GenerateRequest, Generation, LanguageModel, Loglikelihood, LoglikelihoodRequest,
    ModelError, ModelInfo, RollingLoglikelihood, RollingRequest, Seconds,
};

use crate::metrics::predict_choice;
use crate::prepare::{Prepared, PreparedTask, chunks, context_batches};
use crate::results::{BatchSource, Batching, EvalResults};
use crate::score::{DocResponses, TaskScorer, aggregate_groups, sum_tokens};
use crate::task::DocRequests;
use crate::tasks::Suite;
use crate::{Error, Result};

/// Runs tasks against a model and scores them.
///
/// Requests are de-duplicated within a task (identical `(context, continuation)` pairs are sent
/// once; lm-eval's context grouping computes them once too), sorted longest-context first with
/// requests that share a context kept adjacent and in the same call, so that an engine can
/// score all single-token continuations of one context from one forward pass, as lm-eval's
/// one-token cache does. The engine's own count of forward passes
/// ([`LanguageModel::forward_passes`]) is recorded per task when it offers one.
///
/// **Batching.** By default the model decides how many requests go into one call
/// ([`LanguageModel::batch_hint`]; `eai-model`'s engines take a whole task per call and batch
/// internally); a model that does not say gets [`Evaluator::DEFAULT_BATCH_SIZE`] per call.
/// [`Evaluator::batch_size`] overrides both. [`EvalResults::batching`] records what was used.
///
/// **Plans.** [`Evaluator::prepare`] builds a suite's requests once ([`Prepared`]);
/// [`Evaluator::run_prepared`] runs a plan, as often as needed, against any model: a study
/// prepares each task once and reuses it across repetitions and schemes. [`Evaluator::run`] is
/// `prepare` followed by `run_prepared`. Every [`TaskResult`](crate::TaskResult) says where its
/// time went ([`TaskTiming`](crate::TaskTiming)).
///
/// **Measuring windows.** [`Evaluator::run_prepared_passes`] repeats a plan's model calls while
/// the caller asks for more (e.g. until an energy window is long enough), scores the first pass
/// and reports whether the later ones agreed; [`Evaluator::answer`] and [`Evaluator::score`]
/// are the two halves for callers that schedule passes themselves.
///
/// ```
/// # use eai_eval::{Evaluator, Suite, bundled};
/// # use eai_core::*;
/// # struct Uniform;
/// # impl LanguageModel for Uniform {
/// #     fn info(&self) -> ModelInfo { ModelInfo::new("uniform") }
/// #     fn loglikelihood(&mut self, r: &[LoglikelihoodRequest]) -> Result<Vec<Loglikelihood>, ModelError> {
/// #         Ok(r.iter().map(|_| Loglikelihood::new(-1.0, false)).collect())
/// #     }
/// #     fn generate_until(&mut self, r: &[GenerateRequest]) -> Result<Vec<Generation>, ModelError> {
/// #         Ok(r.iter().map(|_| Generation::new("")).collect())
/// #     }
/// # }
/// let suite = Suite { tasks: vec![bundled::arc_easy()?], groups: vec![] };
/// let results = Evaluator::new().progress(false).run(&mut Uniform, &suite)?;
/// assert_eq!(results.tasks[0].n_effective, bundled::ARC_EASY_ITEMS);
/// // `Uniform` gives no batch hint: the default of 64 requests per call was used.
/// assert_eq!(results.batching.loglikelihood_requests, Some(Evaluator::DEFAULT_BATCH_SIZE));
///
/// // Prepare once, run many times (here: until three passes are done), score the first.
/// let ev = Evaluator::new().progress(false);
/// let plan = ev.prepare(&suite)?;
/// let rep = ev.run_prepared_passes(&mut Uniform, &plan, |p| p.passes < 3)?;
/// assert_eq!((rep.passes, rep.agreement.agrees()), (3, true));
/// assert_eq!(rep.results.tasks[0].metrics, results.tasks[0].metrics);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct Evaluator {
    batch_size: Option<usize>,
    progress: bool,
    keep_samples: bool,
    warmup: bool,
}

impl Default for Evaluator {
    fn default() -> Self {
        Self::new()
    }
}

/// The model's answers to one pass over a [`Prepared`] plan's distinct requests, with the pass's
/// timing: what [`Evaluator::answer`] returns and [`Evaluator::score`] reads.
#[derive(Clone, Debug)]
pub struct Answers {
    tasks: Vec<TaskAnswers>,
    batching: Batching,
    plan: u64,
}

#[derive(Clone, Debug, Default)]
struct TaskAnswers {
    ll: Vec<Loglikelihood>,
    gens: Vec<Generation>,
    rolls: Vec<RollingLoglikelihood>,
    forward_passes: Option<u64>,
    truncated_requests: Option<u64>,
    engine: Seconds,
    tokenize: Option<Seconds>,
    wall: Seconds,
    calls: usize,
    passes: usize,
}

impl Answers {
    /// How the requests were split into calls.
    pub fn batching(&self) -> Batching {
        self.batching
    }

    /// Time inside the model's calls, over all tasks.
    pub fn engine_time(&self) -> Seconds {
        self.tasks.iter().map(|t| t.engine).sum()
    }

    /// Wall-clock time of the pass (model calls and the evaluator's work around them).
    pub fn wall_time(&self) -> Seconds {
        self.tasks.iter().map(|t| t.wall).sum()
    }

    /// Compares a later pass with this one (the first), per request and per document.
    ///
    /// # Errors
    /// [`Error::Config`] when the two are not answers to the same plan.
    pub fn compare(&self, later: &Answers, plan: &Prepared) -> Result<Agreement> {
        let mut a = Agreement { passes: 0, identical: true, ..Agreement::default() };
        a.add(self, later, plan)?;
        Ok(a)
    }

    /// Adds a later pass's timing (not its answers) to these, for repeated-pass totals.
    fn absorb(&mut self, later: &Answers) {
        for (t, l) in self.tasks.iter_mut().zip(&later.tasks) {
            t.engine += l.engine;
            t.tokenize = match (t.tokenize, l.tokenize) {
                (Some(a), Some(b)) => Some(a + b),
                _ => None,
            };
            t.wall += l.wall;
            t.calls += l.calls;
            t.passes += l.passes;
        }
    }
}

/// Whether repeated passes over the same plan gave the same answers as the first.
///
/// Engines batch deterministically, so passes are normally bit-identical; a GPU engine whose
/// kernels reduce in a varying order may differ in the last bits, which moves no prediction.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
#[non_exhaustive]
pub struct Agreement {
    /// Later passes compared with the first.
    pub passes: usize,
    /// Every answer of every later pass bit-identical to the first pass's.
    pub identical: bool,
    /// Largest `|Δ logprob|` of any log-likelihood request against the first pass.
    pub max_logprob_diff: f64,
    /// Log-likelihood requests whose `is_greedy` flag differed in some later pass.
    pub greedy_flips: usize,
    /// Multiple-choice documents whose prediction (`acc` or `acc_norm` argmax) differed in some
    /// later pass.
    pub changed_predictions: usize,
    /// Generation requests whose text differed in some later pass.
    pub changed_generations: usize,
}

impl Agreement {
    /// No later pass changed a prediction or a generated text (scores from any pass would be
    /// the same).
    pub fn agrees(&self) -> bool {
        self.changed_predictions == 0 && self.changed_generations == 0
    }

    fn add(&mut self, first: &Answers, later: &Answers, plan: &Prepared) -> Result<()> {
        let mismatch = || Error::config("answers compared are not answers to the same plan");
        if first.plan != plan.id || later.plan != plan.id {
            return Err(mismatch());
        }
        for ((f, l), p) in first.tasks.iter().zip(&later.tasks).zip(&plan.tasks) {
            if f.ll.len() != l.ll.len()
                || f.gens.len() != l.gens.len()
                || f.rolls.len() != l.rolls.len()
            {
                return Err(mismatch());
            }
            for (x, y) in f.rolls.iter().zip(&l.rolls) {
                if x.logprob.to_bits() != y.logprob.to_bits() {
                    self.identical = false;
                }
                let d = (x.logprob - y.logprob).abs();
                if d > self.max_logprob_diff || (d.is_nan() && !self.max_logprob_diff.is_nan()) {
                    self.max_logprob_diff = d;
                }
            }
            for (x, y) in f.ll.iter().zip(&l.ll) {
                if x.logprob.to_bits() != y.logprob.to_bits() || x.is_greedy != y.is_greedy {
                    self.identical = false;
                }
                let d = (x.logprob - y.logprob).abs();
                if d > self.max_logprob_diff || (d.is_nan() && !self.max_logprob_diff.is_nan()) {
                    self.max_logprob_diff = d;
                }
                self.greedy_flips += usize::from(x.is_greedy != y.is_greedy);
            }
            for (x, y) in f.gens.iter().zip(&l.gens) {
                if x.text != y.text {
                    self.identical = false;
                    self.changed_generations += 1;
                }
            }
            let mut li = 0;
            for inst in &p.instances {
                if let DocRequests::Loglikelihood(_) = inst.requests {
                    let idx = &p.ll_index[li];
                    li += 1;
                    let choices = &p.task.docs()[inst.doc].choices;
                    let a: Vec<f64> = idx.iter().map(|&i| f.ll[i].logprob).collect();
                    let b: Vec<f64> = idx.iter().map(|&i| l.ll[i].logprob).collect();
                    let (pa, pb) = (predict_choice(&a, choices), predict_choice(&b, choices));
                    let same = match (pa, pb) {
                        (Some(x), Some(y)) => x.pred == y.pred && x.pred_norm == y.pred_norm,
                        (None, None) => true,
                        _ => false,
                    };
                    self.changed_predictions += usize::from(!same);
                }
            }
        }
        self.passes += 1;
        Ok(())
    }
}

/// Progress of a repeated run, given to the caller's "one more pass?" question.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub struct PassProgress {
    /// Passes done so far (at least 1).
    pub passes: usize,
    /// Wall-clock time since the first pass began.
    pub elapsed: Duration,
    /// Time inside the model's calls so far.
    pub engine: Seconds,
}

/// What [`Evaluator::run_prepared_passes`] returns.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RepeatedRun {
    /// Scores from the first pass; each task's timing covers all passes
    /// ([`TaskTiming::passes`](crate::TaskTiming::passes)).
    pub results: EvalResults,
    /// Passes run.
    pub passes: usize,
    /// How the later passes compared with the first.
    pub agreement: Agreement,
}

impl Evaluator {
    /// Requests per call when the model gives no [`LanguageModel::batch_hint`] and no
    /// [`Evaluator::batch_size`] is set.
    pub const DEFAULT_BATCH_SIZE: usize = 64;

    /// The model's preferred batching, a progress bar, per-sample records kept.
    pub fn new() -> Self {
        Self { batch_size: None, progress: true, keep_samples: true, warmup: false }
    }

    /// Runs every task's requests once untimed before the timed pass(es) of
    /// [`Evaluator::run`] / [`Evaluator::run_prepared`] / [`Evaluator::run_prepared_passes`]:
    /// the first pass of an engine pays for cold caches (a tokenizer cache filled, device
    /// buffers and library plans created, GPU clocks still ramping), which a one-pass timing
    /// would otherwise report as the task's cost — twice the warm time for full ARC-Easy on an
    /// H100 (issue 14). The warm-up's answers are discarded (the timed pass's are scored); its
    /// time is reported apart ([`TaskTiming::warmup`]). Off by default: it doubles the model's
    /// work, worth it where the timing is the point (`eai eval` on a GPU turns it on).
    ///
    /// [`TaskTiming::warmup`]: crate::TaskTiming::warmup
    pub fn warmup(mut self, on: bool) -> Self {
        self.warmup = on;
        self
    }

    /// Overrides the model's batching: at most `n` requests (at least 1) per call, of either
    /// kind. For experts; the model's own answer is normally faster.
    pub fn batch_size(self, n: usize) -> Self {
        self.batch_limit(Some(n))
    }

    /// [`Evaluator::batch_size`] as an option: `None` (the default) lets the model decide.
    pub fn batch_limit(mut self, n: Option<usize>) -> Self {
        self.batch_size = n.map(|n| n.max(1));
        self
    }

    /// Draw a progress bar over requests on stderr (only when it is a terminal).
    pub fn progress(mut self, on: bool) -> Self {
        self.progress = on;
        self
    }

    /// Keep per-sample records (prompt, choices, log-likelihoods, prediction, target).
    pub fn keep_samples(mut self, on: bool) -> Self {
        self.keep_samples = on;
        self
    }

    /// How requests will be split into calls to `model`: the override, else the model's
    /// [`LanguageModel::batch_hint`], else [`Evaluator::DEFAULT_BATCH_SIZE`].
    pub fn batching(&self, model: &dyn LanguageModel) -> Batching {
        if let Some(n) = self.batch_size {
            return Batching {
                loglikelihood_requests: Some(n),
                generate_requests: Some(n),
                source: BatchSource::Override,
            };
        }
        match model.batch_hint() {
            Some(h) => Batching {
                loglikelihood_requests: h.loglikelihood_requests.map(|n| n.max(1)),
                generate_requests: h.generate_requests.map(|n| n.max(1)),
                source: BatchSource::Engine,
            },
            None => Batching {
                loglikelihood_requests: Some(Self::DEFAULT_BATCH_SIZE),
                generate_requests: Some(Self::DEFAULT_BATCH_SIZE),
                source: BatchSource::Default,
            },
        }
    }

    /// Builds every task's requests once (see [`Prepared`]).
    ///
    /// # Errors
    /// Prompt construction failures.
    pub fn prepare(&self, suite: &Suite) -> Result<Prepared> {
        Prepared::new(suite)
    }

    /// Runs every task of the suite, then aggregates its groups: [`Evaluator::prepare`], then
    /// [`Evaluator::run_prepared`] (each task's timing includes its preparation).
    ///
    /// # Errors
    /// Prompt construction failures, and [`Error::Model`] when the model fails or returns a
    /// different number of answers than requests.
    pub fn run(&self, model: &mut dyn LanguageModel, suite: &Suite) -> Result<EvalResults> {
        let plan = self.prepare(suite)?;
        let mut res = self.run_prepared(model, &plan)?;
        for (t, p) in res.tasks.iter_mut().zip(&plan.tasks) {
            t.timing.prepare = p.prepare;
            t.timing.total += p.prepare;
        }
        Ok(res)
    }

    /// Runs a prepared plan once and scores it ([`Evaluator::answer`] then
    /// [`Evaluator::score`]).
    ///
    /// # Errors
    /// As [`Evaluator::run`].
    pub fn run_prepared(
        &self,
        model: &mut dyn LanguageModel,
        plan: &Prepared,
    ) -> Result<EvalResults> {
        let warm = self.warm_up(model, plan)?;
        let answers = self.answer_with(model, plan, self.progress && warm.is_none())?;
        let mut res = self.score(model.info(), plan, &answers)?;
        if let Some(w) = &warm {
            for (t, wt) in res.tasks.iter_mut().zip(&w.tasks) {
                t.timing.warmup = wt.wall;
            }
        }
        Ok(res)
    }

    /// The untimed warm-up pass, when [`Evaluator::warmup`] is on.
    fn warm_up(&self, model: &mut dyn LanguageModel, plan: &Prepared) -> Result<Option<Answers>> {
        if !self.warmup {
            return Ok(None);
        }
        self.answer_with(model, plan, self.progress).map(Some)
    }

    /// Runs a plan's model calls, then asks `more` whether to run them again (e.g.
    /// `|p| p.elapsed < min_window`), until it says no; scores the first pass. Each task's timing
    /// covers every pass, so per-pass figures are totals divided by
    /// [`RepeatedRun::passes`]; [`RepeatedRun::agreement`] says whether later passes changed
    /// any answer. The progress bar, if on, is drawn for the first pass only.
    ///
    /// # Errors
    /// As [`Evaluator::run`]; [`Error::Model`] from any pass.
    pub fn run_prepared_passes(
        &self,
        model: &mut dyn LanguageModel,
        plan: &Prepared,
        mut more: impl FnMut(PassProgress) -> bool,
    ) -> Result<RepeatedRun> {
        let warm = self.warm_up(model, plan)?;
        let t0 = Instant::now();
        let mut first = self.answer_with(model, plan, self.progress && warm.is_none())?;
        let mut agreement = Agreement { passes: 0, identical: true, ..Agreement::default() };
        let mut passes = 1;
        while more(PassProgress { passes, elapsed: t0.elapsed(), engine: first.engine_time() }) {
            let later = self.answer_with(model, plan, false)?;
            agreement.add(&first, &later, plan)?;
            first.absorb(&later);
            passes += 1;
        }
        let mut results = self.score(model.info(), plan, &first)?;
        if let Some(w) = &warm {
            for (t, wt) in results.tasks.iter_mut().zip(&w.tasks) {
                t.timing.warmup = wt.wall;
            }
        }
        Ok(RepeatedRun { results, passes, agreement })
    }

    /// One pass of model calls over a plan's distinct requests, batched as
    /// [`Evaluator::batching`] says, timed per task. Nothing is scored.
    ///
    /// # Errors
    /// [`Error::Model`] when the model fails or returns a different number of answers than
    /// requests.
    pub fn answer(&self, model: &mut dyn LanguageModel, plan: &Prepared) -> Result<Answers> {
        self.answer_with(model, plan, self.progress)
    }

    fn answer_with(
        &self,
        model: &mut dyn LanguageModel,
        plan: &Prepared,
        progress: bool,
    ) -> Result<Answers> {
        let batching = self.batching(model);
        let bar = Progress::new(progress, plan.unique_requests() as u64);
        let tasks = plan
            .tasks
            .iter()
            .map(|p| answer_task(model, p, batching, &bar))
            .collect::<Result<Vec<_>>>()?;
        bar.finish();
        Ok(Answers { tasks, batching, plan: plan.id })
    }

    /// Scores a pass's answers: metrics, per-sample records (when kept), group aggregates.
    ///
    /// # Errors
    /// [`Error::Config`] when the answers are not answers to this plan, or a task's scoring rule
    /// does not match its requests.
    pub fn score(
        &self,
        model: ModelInfo,
        plan: &Prepared,
        answers: &Answers,
    ) -> Result<EvalResults> {
        if answers.plan != plan.id {
            return Err(Error::config("answers scored are not answers to this plan"));
        }
        let mut tasks = Vec::with_capacity(plan.tasks.len());
        let mut samples = BTreeMap::new();
        for (p, a) in plan.tasks.iter().zip(&answers.tasks) {
            if a.ll.len() != p.ll_unique.len()
                || a.gens.len() != p.gen_unique.len()
                || a.rolls.len() != p.roll_unique.len()
            {
                return Err(Error::config(format!(
                    "task {}: answers scored are not answers to this plan",
                    p.task.name()
                )));
            }
            let t = Instant::now();
            let (mut tr, recs) = score_answers(p, a, self.keep_samples)?;
            if self.keep_samples {
                samples.insert(tr.name.clone(), recs);
            }
            let scoring = Seconds(t.elapsed().as_secs_f64());
            tr.requests.truncated_requests = a.truncated_requests;
            tr.timing.engine = a.engine;
            tr.timing.tokenize = a.tokenize;
            tr.timing.scoring = scoring;
            tr.timing.bookkeeping = Seconds((a.wall.0 - a.engine.0).max(0.0));
            tr.timing.total = a.wall + scoring;
            tr.timing.passes = a.passes;
            tr.timing.calls = a.calls;
            tasks.push(tr);
        }
        let groups = aggregate_groups(&plan.groups, &tasks);
        Ok(EvalResults {
            model,
            tasks,
            groups,
            group_tree: plan.groups.clone(),
            samples,
            batching: answers.batching,
        })
    }
}

/// One task's model calls.
fn answer_task(
    model: &mut dyn LanguageModel,
    p: &PreparedTask,
    batching: Batching,
    bar: &Progress,
) -> Result<TaskAnswers> {
    let t_task = Instant::now();
    let name = p.task.name();
    let wrap = |source| Error::Model { task: name.to_owned(), source };
    let passes_before = model.forward_passes();
    let time_before = model.engine_time();
    let truncated_before = model.truncated_requests();
    let mut engine = Duration::ZERO;
    let mut calls = 0;
    let mut ll = Vec::with_capacity(p.ll_unique.len());
    for batch in context_batches(&p.ll_unique, batching.loglikelihood_requests) {
        let reqs: &[LoglikelihoodRequest] = &p.ll_unique[batch];
        let t = Instant::now();
        let got = model.loglikelihood(reqs);
        engine += t.elapsed();
        calls += 1;
        ll.extend(checked(got, reqs.len()).map_err(wrap)?);
        bar.inc(reqs.len() as u64);
    }
    let mut rolls = Vec::with_capacity(p.roll_unique.len());
    for batch in chunks(p.roll_unique.len(), batching.loglikelihood_requests) {
        let reqs: &[RollingRequest] = &p.roll_unique[batch];
        let t = Instant::now();
        let got = model.loglikelihood_rolling(reqs);
        engine += t.elapsed();
        calls += 1;
        rolls.extend(checked(got, reqs.len()).map_err(wrap)?);
        bar.inc(reqs.len() as u64);
    }
    let mut gens = Vec::with_capacity(p.gen_unique.len());
    for batch in chunks(p.gen_unique.len(), batching.generate_requests) {
        let reqs: &[GenerateRequest] = &p.gen_unique[batch];
        let t = Instant::now();
        let got = model.generate_until(reqs);
        engine += t.elapsed();
        calls += 1;
        gens.extend(checked(got, reqs.len()).map_err(wrap)?);
        bar.inc(reqs.len() as u64);
    }
    let forward_passes = match (passes_before, model.forward_passes()) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a)),
        _ => None,
    };
    let truncated_requests = match (truncated_before, model.truncated_requests()) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a)),
        _ => None,
    };
    let tokenize = match (time_before, model.engine_time()) {
        (Some(a), Some(b)) => Some(EngineTime::since(b, a).tokenize),
        _ => None,
    };
    Ok(TaskAnswers {
        ll,
        gens,
        rolls,
        forward_passes,
        truncated_requests,
        engine: Seconds(engine.as_secs_f64()),
        tokenize,
        wall: Seconds(t_task.elapsed().as_secs_f64()),
        calls,
        passes: 1,
    })
}

/// Scores one task from the answers to its distinct requests through the public per-document
/// path ([`TaskScorer`]): each document gets the answers to its own requests. The request
/// counts are the plan's (distinct requests as sent); the timing is left for the caller.
fn score_answers(
    p: &PreparedTask,
    a: &TaskAnswers,
    keep: bool,
) -> Result<(crate::TaskResult, Vec<crate::SampleRecord>)> {
    let mut scorer = TaskScorer::new(&p.task).keep_samples(keep);
    let (mut li, mut gi, mut ri) = (0, 0, 0);
    for inst in &p.instances {
        let resp = match &inst.requests {
            DocRequests::Loglikelihood(_) => {
                li += 1;
                DocResponses::Loglikelihood(p.ll_index[li - 1].iter().map(|&i| a.ll[i]).collect())
            }
            DocRequests::Generate(_) => {
                gi += 1;
                DocResponses::Generate(a.gens[p.gen_index[gi - 1]].clone())
            }
            DocRequests::Rolling(_) => {
                ri += 1;
                DocResponses::Rolling(a.rolls[p.roll_index[ri - 1]])
            }
        };
        scorer.add(inst, &resp)?;
    }
    let scored = scorer.finish()?;
    let mut tr = scored.result;
    tr.requests.requests = p.requests;
    tr.requests.unique_requests = p.unique_requests();
    tr.requests.unique_contexts = p.unique_contexts;
    tr.requests.forward_passes = a.forward_passes;
    tr.requests.scored_tokens =
        sum_tokens(a.ll.iter().map(|l| l.tokens).chain(a.rolls.iter().map(|r| r.tokens)));
    tr.requests.generated_tokens = sum_tokens(a.gens.iter().map(|g| g.tokens));
    Ok((tr, scored.samples))
}

/// The answers, when there is one per request.
fn checked<T>(
    got: std::result::Result<Vec<T>, ModelError>,
    expected: usize,
) -> std::result::Result<Vec<T>, ModelError> {
    let got = got?;
    if got.len() != expected {
        return Err(ModelError::CountMismatch { expected, got: got.len() });
    }
    Ok(got)
}

struct Progress {
    #[cfg(feature = "progress")]
    bar: Option<indicatif::ProgressBar>,
}

impl Progress {
    #[cfg_attr(not(feature = "progress"), allow(unused_variables))]
    fn new(on: bool, total: u64) -> Self {
        #[cfg(feature = "progress")]
        {
            let bar = on.then(|| {
                let b = indicatif::ProgressBar::new(total);
                if let Ok(style) = indicatif::ProgressStyle::with_template(
                    "{msg} [{elapsed_precise}] {wide_bar} {pos}/{len} requests ({per_sec}, eta {eta})",
                ) {
                    b.set_style(style);
                }
                b.set_message("eai-eval");
                b
            });
            Self { bar }
        }
        #[cfg(not(feature = "progress"))]
        Self {}
    }

    #[cfg_attr(not(feature = "progress"), allow(unused_variables))]
    fn inc(&self, n: u64) {
        #[cfg(feature = "progress")]
        if let Some(b) = &self.bar {
            b.inc(n);
        }
    }

    fn finish(&self) {
        #[cfg(feature = "progress")]
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
