//! Scoring from responses: one document's answers into lm-eval's per-document metrics and a
//! sample record ([`score_document`]); a task's documents into its aggregated metrics
//! ([`TaskScorer`], [`score_task`]); group aggregates ([`aggregate_groups`]).
//!
//! This is the only scoring code: [`Evaluator`](crate::Evaluator) hands each document the
//! answers to its own requests and calls the same functions, so scores computed from responses
//! you supply (a recorded run, another engine's output, a test's synthetic numbers) are the
//! scores an evaluation would report.

use std::collections::{BTreeMap, HashMap};

use eai_core::{Generation, Loglikelihood, RollingLoglikelihood};

use crate::metrics::{self, cut_at_stop, mc2, predict_choice};
use crate::perplexity::{self, PerplexitySample};
use crate::results::{
    GroupResult, MetricValue, RequestStats, SampleRecord, TaskResult, TaskTiming,
};
use crate::task::{DocRequests, FewshotRef, Instance, Scoring, Target, Task};
use crate::tasks::Group;
use crate::{Error, Result};

/// The answers to one document's requests, in the order of its [`Instance::requests`]: one
/// log-likelihood per choice, one generation, or one rolling log-likelihood.
///
/// Answers are per request, not per distinct request: two documents that make the same request
/// may be given different answers.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum DocResponses {
    /// Answers to [`DocRequests::Loglikelihood`], one per choice.
    Loglikelihood(Vec<Loglikelihood>),
    /// The answer to [`DocRequests::Generate`] (the raw text; stop strings are cut here).
    Generate(Generation),
    /// The answer to [`DocRequests::Rolling`].
    Rolling(RollingLoglikelihood),
}

/// Scores one document from the answers to its requests: lm-eval's per-document metric values
/// (in [`SampleRecord::metrics`], keyed `metric,filter`) and the sample record.
///
/// Multiple choice: `acc` (argmax of the log-likelihoods equals the gold index) and, when the
/// task reports it, `acc_norm` (argmax of log-likelihood per character of the choice). MC2: the
/// normalised probability of the true choices. Generation: the text cut at the stop strings,
/// then each filter and `exact_match`. Perplexity: the log-likelihood with the text's word and
/// byte counts ([`SampleRecord::perplexity`]; the metric values are aggregated over the task).
///
/// ```
/// use eai_core::Loglikelihood;
/// use eai_eval::{DocResponses, score_document};
/// let task = eai_eval::bundled::arc_easy()?;
/// let inst = &task.instances()?[0];
/// let gold = match task.docs()[inst.doc].target { eai_eval::Target::Choice(g) => g, _ => 0 };
/// let lls = (0..task.docs()[inst.doc].choices.len())
///     .map(|i| Loglikelihood::new(if i == gold { -1.0 } else { -5.0 }, false))
///     .collect();
/// let rec = score_document(&task, inst, &DocResponses::Loglikelihood(lls))?;
/// assert_eq!(rec.metrics["acc,none"], 1.0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// [`Error::ResponseMismatch`] when the answers do not fit the document's requests (kind or
/// count); [`Error::NonFiniteLoglikelihood`] for a NaN or infinite log-likelihood (no score is
/// computed from it).
pub fn score_document(
    task: &Task,
    instance: &Instance,
    responses: &DocResponses,
) -> Result<SampleRecord> {
    let doc = task.docs().get(instance.doc).ok_or_else(|| {
        Error::config(format!(
            "task {}: instance names document {} of {}",
            task.name(),
            instance.doc,
            task.docs().len()
        ))
    })?;
    let mismatch = |got: String| Error::ResponseMismatch {
        task: task.name().to_owned(),
        doc: doc.id.clone(),
        expected: describe_requests(&instance.requests),
        got,
    };
    let fewshot = instance
        .fewshot
        .iter()
        .map(|&i| FewshotRef {
            index: i,
            id: task.fewshot_pool().get(i).map(|d| d.id.clone()).unwrap_or_default(),
        })
        .collect();
    let mut rec = SampleRecord {
        doc_id: instance.doc_index,
        doc: doc.id.clone(),
        prompt: instance.context.clone(),
        choices: doc.choices.clone(),
        target: doc.target.clone(),
        fewshot,
        continuations: Vec::new(),
        loglikelihoods: Vec::new(),
        is_greedy: Vec::new(),
        generation: None,
        filtered: Vec::new(),
        prediction: None,
        prediction_norm: None,
        perplexity: None,
        metrics: BTreeMap::new(),
    };
    let put = |m: &str, f: &str, v: f64| (format!("{m},{f}"), v);
    let mut values: Vec<(String, f64)> = Vec::new();
    match (task.scoring(), &instance.requests, responses) {
        (
            scoring @ (Scoring::MultipleChoice { .. } | Scoring::Mc2(_)),
            DocRequests::Loglikelihood(reqs),
            DocResponses::Loglikelihood(lls),
        ) => {
            if lls.len() != reqs.len() {
                return Err(mismatch(format!("{} log-likelihoods", lls.len())));
            }
            if let Some((r, l)) = reqs.iter().zip(lls).find(|(_, l)| !l.logprob.is_finite()) {
                let n = r.context.chars().count();
                return Err(Error::NonFiniteLoglikelihood {
                    task: task.name().to_owned(),
                    doc: doc.id.clone(),
                    context: r.context.chars().skip(n.saturating_sub(80)).collect(),
                    continuation: r.continuation.clone(),
                    value: l.logprob,
                });
            }
            let ll: Vec<f64> = lls.iter().map(|l| l.logprob).collect();
            rec.is_greedy = lls.iter().map(|l| l.is_greedy).collect();
            rec.continuations = reqs.iter().map(|r| r.continuation.clone()).collect();
            match scoring {
                Scoring::MultipleChoice { acc_norm } => {
                    let pred = predict_choice(&ll, &doc.choices);
                    let gold = match doc.target {
                        Target::Choice(g) if g < doc.choices.len() => Some(g),
                        _ => None,
                    };
                    let hit = |x: Option<usize>| f64::from(u8::from(x.is_some() && x == gold));
                    rec.prediction = pred.map(|p| p.pred);
                    rec.prediction_norm = pred.map(|p| p.pred_norm);
                    values.push(put("acc", "none", hit(rec.prediction)));
                    if *acc_norm {
                        values.push(put("acc_norm", "none", hit(rec.prediction_norm)));
                    }
                }
                Scoring::Mc2(version) => {
                    rec.prediction = metrics::argmax(&ll);
                    values.push(put("acc", "none", mc2(&ll, &doc.labels, *version)));
                }
                _ => {}
            }
            rec.loglikelihoods = ll;
        }
        (
            Scoring::Generate { filters, exact_match },
            DocRequests::Generate(g),
            DocResponses::Generate(out),
        ) => {
            let text = cut_at_stop(&out.text, &g.until);
            let gold = match &doc.target {
                Target::Text(t) => t.as_str(),
                Target::Choice(_) => "",
            };
            for (fname, f) in filters {
                let filtered = f.apply(&text);
                values.push(put("exact_match", fname, exact_match.score(&filtered, gold)));
                rec.filtered.push((fname.clone(), filtered));
            }
            rec.generation = Some(text);
        }
        (Scoring::Perplexity, DocRequests::Rolling(r), DocResponses::Rolling(out)) => {
            if !out.logprob.is_finite() {
                let n = r.text.chars().count();
                return Err(Error::NonFiniteLoglikelihood {
                    task: task.name().to_owned(),
                    doc: doc.id.clone(),
                    context: r.text.chars().skip(n.saturating_sub(80)).collect(),
                    continuation: String::new(),
                    value: out.logprob,
                });
            }
            let mut p = PerplexitySample::new(out.logprob, &r.text);
            p.tokens = out.tokens;
            rec.loglikelihoods = vec![out.logprob];
            rec.perplexity = Some(p);
        }
        (_, req, r) if !fits(req, r) => return Err(mismatch(describe_responses(r))),
        _ => {
            return Err(Error::config(format!(
                "task {}: scoring rule does not match request kind",
                task.name()
            )));
        }
    }
    rec.metrics = values.into_iter().collect();
    Ok(rec)
}

fn fits(req: &DocRequests, resp: &DocResponses) -> bool {
    matches!(
        (req, resp),
        (DocRequests::Loglikelihood(_), DocResponses::Loglikelihood(_))
            | (DocRequests::Generate(_), DocResponses::Generate(_))
            | (DocRequests::Rolling(_), DocResponses::Rolling(_))
    )
}

fn describe_requests(r: &DocRequests) -> String {
    match r {
        DocRequests::Loglikelihood(v) => format!("{} log-likelihoods", v.len()),
        DocRequests::Generate(_) => "a generation".into(),
        DocRequests::Rolling(_) => "a rolling log-likelihood".into(),
    }
}

fn describe_responses(r: &DocResponses) -> String {
    match r {
        DocResponses::Loglikelihood(v) => format!("{} log-likelihoods", v.len()),
        DocResponses::Generate(_) => "a generation".into(),
        DocResponses::Rolling(_) => "a rolling log-likelihood".into(),
    }
}

/// Scores a task document by document and aggregates it as lm-eval does: the mean and its
/// standard error per metric (`acc`, `acc_norm`, `exact_match` per filter, MC2's `acc`), or the
/// weighted perplexities. [`score_task`] runs it over a whole task.
///
/// ```
/// use eai_core::Loglikelihood;
/// use eai_eval::{DocRequests, DocResponses, TaskScorer};
/// let task = eai_eval::bundled::arc_easy()?;
/// let mut scorer = TaskScorer::new(&task);
/// for inst in task.instances()? {
///     let DocRequests::Loglikelihood(reqs) = &inst.requests else { unreachable!() };
///     // Your engine's answers; here the first choice is always the most likely.
///     let lls = (0..reqs.len()).map(|i| Loglikelihood::new(-(i as f64) - 1.0, false)).collect();
///     scorer.add(&inst, &DocResponses::Loglikelihood(lls))?;
/// }
/// let scored = scorer.finish()?;
/// let acc = scored.result.metric("acc,none").map(|m| m.value);
/// assert!(acc.is_some_and(|a| (0.0..=1.0).contains(&a)));
/// assert_eq!(scored.samples.len(), eai_eval::bundled::ARC_EASY_ITEMS);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct TaskScorer<'t> {
    task: &'t Task,
    keys: Vec<(String, String)>,
    values: Vec<Vec<f64>>,
    perplexity: Vec<PerplexitySample>,
    records: Vec<SampleRecord>,
    keep: bool,
    docs: usize,
    requests: usize,
    contexts: Vec<String>,
    invalid_gold: usize,
    ll_tokens: Vec<Option<u32>>,
    gen_tokens: Vec<Option<u32>>,
}

/// What [`TaskScorer::finish`] and [`score_task`] return.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct TaskScores {
    /// The task's metrics and counts (timing left at zero; request counts as answered: every
    /// request counted once, with no de-duplication).
    pub result: TaskResult,
    /// One record per document, in the order added (empty when not kept).
    pub samples: Vec<SampleRecord>,
}

impl<'t> TaskScorer<'t> {
    /// A scorer for `task` that keeps the sample records.
    pub fn new(task: &'t Task) -> Self {
        let keys = task.scoring().metric_keys();
        let values = vec![Vec::new(); keys.len()];
        Self {
            task,
            keys,
            values,
            perplexity: Vec::new(),
            records: Vec::new(),
            keep: true,
            docs: 0,
            requests: 0,
            contexts: Vec::new(),
            invalid_gold: 0,
            ll_tokens: Vec::new(),
            gen_tokens: Vec::new(),
        }
    }

    /// Keep the per-document records (default) or only the metric values.
    pub fn keep_samples(mut self, on: bool) -> Self {
        self.keep = on;
        self
    }

    /// Scores one document ([`score_document`]) and adds it to the aggregates; returns its
    /// record.
    ///
    /// # Errors
    /// As [`score_document`].
    pub fn add(&mut self, instance: &Instance, responses: &DocResponses) -> Result<SampleRecord> {
        let rec = score_document(self.task, instance, responses)?;
        for ((m, f), xs) in self.keys.iter().zip(&mut self.values) {
            if let Some(v) = rec.metrics.get(&format!("{m},{f}")) {
                xs.push(*v);
            }
        }
        if let Some(p) = rec.perplexity {
            self.perplexity.push(p);
        }
        if let (Scoring::MultipleChoice { .. }, Target::Choice(g)) =
            (self.task.scoring(), &rec.target)
            && *g >= rec.choices.len()
        {
            self.invalid_gold += 1;
        }
        match responses {
            DocResponses::Loglikelihood(v) => self.ll_tokens.extend(v.iter().map(|l| l.tokens)),
            DocResponses::Generate(g) => self.gen_tokens.push(g.tokens),
            DocResponses::Rolling(r) => self.ll_tokens.push(r.tokens),
        }
        self.docs += 1;
        self.requests += instance.request_count();
        self.contexts.push(instance.context.clone());
        if self.keep {
            self.records.push(rec.clone());
        }
        Ok(rec)
    }

    /// The task's aggregated metrics in lm-eval's order, with the kept records.
    ///
    /// # Errors
    /// [`Error::NoDocuments`] when no document was added.
    pub fn finish(self) -> Result<TaskScores> {
        let task = self.task;
        if self.docs == 0 {
            return Err(Error::NoDocuments {
                task: task.name().to_owned(),
                reason: "no document was scored".into(),
            });
        }
        let metrics = match task.scoring() {
            Scoring::Perplexity => perplexity::aggregate(&self.perplexity)
                .into_iter()
                .map(|(m, v)| MetricValue {
                    metric: m.to_owned(),
                    filter: "none".into(),
                    value: v,
                    stderr: None,
                })
                .collect(),
            _ => self
                .keys
                .iter()
                .zip(&self.values)
                .map(|((m, f), xs)| MetricValue {
                    metric: m.clone(),
                    filter: f.clone(),
                    value: metrics::mean(xs),
                    stderr: metrics::mean_stderr(xs),
                })
                .collect(),
        };
        let mut contexts = self.contexts;
        contexts.sort_unstable();
        contexts.dedup();
        let cfg = task.config();
        let result = TaskResult {
            name: cfg.name.clone(),
            alias: cfg.alias.clone().unwrap_or_else(|| cfg.name.clone()),
            version: cfg.version.clone(),
            num_fewshot: cfg.num_fewshot,
            n_original: task.docs().len(),
            n_effective: self.docs,
            metrics,
            requests: RequestStats {
                requests: self.requests,
                unique_requests: self.requests,
                unique_contexts: contexts.len(),
                forward_passes: None,
                scored_tokens: sum_tokens(self.ll_tokens.into_iter()),
                generated_tokens: sum_tokens(self.gen_tokens.into_iter()),
                truncated_requests: None,
            },
            timing: TaskTiming::default(),
            invalid_gold: self.invalid_gold,
            source: task.source().to_owned(),
            config: cfg.clone(),
        };
        Ok(TaskScores { result, samples: self.records })
    }
}

/// Scores a whole task from the answers to each evaluated document's requests, given in the
/// order of [`Task::instances`]: [`TaskScorer`] over every instance.
///
/// # Errors
/// [`Error::ResponseMismatch`] when there is not one [`DocResponses`] per instance or one does
/// not fit its document; as [`TaskScorer::add`] and [`TaskScorer::finish`].
pub fn score_task(task: &Task, responses: &[DocResponses]) -> Result<TaskScores> {
    let instances = task.instances()?;
    if instances.len() != responses.len() {
        return Err(Error::ResponseMismatch {
            task: task.name().to_owned(),
            doc: "*".into(),
            expected: format!("answers for {} documents", instances.len()),
            got: format!("answers for {} documents", responses.len()),
        });
    }
    let mut scorer = TaskScorer::new(task);
    for (inst, r) in instances.iter().zip(responses) {
        scorer.add(inst, r)?;
    }
    scorer.finish()
}

/// The sum when every item has a count (`None` if any lacks one or there are none).
pub(crate) fn sum_tokens(xs: impl Iterator<Item = Option<u32>>) -> Option<u64> {
    let mut total = 0u64;
    let mut any = false;
    for x in xs {
        total += u64::from(x?);
        any = true;
    }
    any.then_some(total)
}

/// Aggregates groups over their leaf tasks (recursively), as lm-eval's `Group.aggregate` does:
/// a (size-)weighted mean per metric key and the pooled stderr.
pub fn aggregate_groups(groups: &[Group], tasks: &[TaskResult]) -> Vec<GroupResult> {
    let by_name: HashMap<&str, &Group> = groups.iter().map(|g| (g.name.as_str(), g)).collect();
    fn leaves<'a>(
        g: &'a Group,
        by: &HashMap<&str, &'a Group>,
        out: &mut Vec<&'a str>,
        depth: usize,
    ) {
        for c in &g.children {
            match by.get(c.as_str()) {
                Some(sub) if depth < 64 => leaves(sub, by, out, depth + 1),
                _ => out.push(c),
            }
        }
    }
    groups
        .iter()
        .map(|g| {
            let mut leaf_names = Vec::new();
            leaves(g, &by_name, &mut leaf_names, 0);
            let leaf: Vec<&TaskResult> =
                leaf_names.iter().filter_map(|n| tasks.iter().find(|t| t.name == *n)).collect();
            let mut keys: Vec<(String, String)> = Vec::new();
            for t in &leaf {
                for m in &t.metrics {
                    let k = (m.metric.clone(), m.filter.clone());
                    if !keys.contains(&k) {
                        keys.push(k);
                    }
                }
            }
            let metrics = keys
                .into_iter()
                .map(|(metric, filter)| {
                    let mut values = Vec::new();
                    let mut sizes = Vec::new();
                    let mut stderrs = Vec::new();
                    for t in &leaf {
                        if let Some(m) =
                            t.metrics.iter().find(|m| m.metric == metric && m.filter == filter)
                        {
                            values.push(m.value);
                            sizes.push(t.n_effective);
                            if let Some(se) = m.stderr {
                                stderrs.push(se);
                            }
                        }
                    }
                    let value = metrics::aggregate_subtasks(&values, &sizes, g.weight_by_size);
                    let stderr = if stderrs.len() == values.len() {
                        metrics::pooled_stderr(&stderrs, &sizes)
                    } else {
                        None
                    };
                    MetricValue { metric, filter, value, stderr }
                })
                .collect();
            GroupResult {
                name: g.name.clone(),
                alias: g.alias.clone(),
                n: leaf.iter().map(|t| t.n_effective).sum(),
                leaf_tasks: leaf.len(),
                metrics,
            }
        })
        .collect()
}
