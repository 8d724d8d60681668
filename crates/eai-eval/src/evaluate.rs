//! Running tasks against a [`LanguageModel`]: de-duplication, batching, progress, scoring.

use std::collections::{BTreeMap, HashMap};

use eai_core::{GenerateRequest, Generation, LanguageModel, Loglikelihood, LoglikelihoodRequest};

use crate::metrics::{self, cut_at_stop, mc2, predict_choice};
use crate::results::{
    EvalResults, GroupResult, MetricValue, RequestStats, SampleRecord, TaskResult,
};
use crate::task::{DocRequests, Instance, Scoring, Target, Task};
use crate::tasks::{Group, Suite};
use crate::{Error, Result};

/// Runs tasks against a model and scores them.
///
/// Requests are de-duplicated within a task (identical `(context, continuation)` pairs are sent
/// once; lm-eval's context grouping computes them once too), sorted longest-context first with
/// requests that share a context kept adjacent and in the same batch, so that an engine can
/// score all single-token continuations of one context from one forward pass, as lm-eval's
/// one-token cache does. The engine's own count of forward passes
/// ([`LanguageModel::forward_passes`]) is recorded per task when it offers one.
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
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct Evaluator {
    batch_size: usize,
    progress: bool,
    keep_samples: bool,
}

impl Default for Evaluator {
    fn default() -> Self {
        Self::new()
    }
}

struct Plan<'t> {
    task: &'t Task,
    instances: Vec<Instance>,
    ll_unique: Vec<LoglikelihoodRequest>,
    /// Per instance, per choice: index into `ll_unique`.
    ll_index: Vec<Vec<usize>>,
    gen_unique: Vec<GenerateRequest>,
    gen_index: Vec<usize>,
    requests: usize,
}

impl Evaluator {
    /// Batches of 64 requests, a progress bar, per-sample records kept.
    pub fn new() -> Self {
        Self { batch_size: 64, progress: true, keep_samples: true }
    }

    /// Requests per call to the model (at least 1).
    pub fn batch_size(mut self, n: usize) -> Self {
        self.batch_size = n.max(1);
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

    /// Runs every task of the suite, then aggregates its groups.
    ///
    /// # Errors
    /// Prompt construction failures, and [`Error::Model`] when the model fails or returns a
    /// different number of answers than requests.
    pub fn run(&self, model: &mut dyn LanguageModel, suite: &Suite) -> Result<EvalResults> {
        let plans = suite.tasks.iter().map(plan).collect::<Result<Vec<_>>>()?;
        let total: usize = plans.iter().map(|p| p.ll_unique.len() + p.gen_unique.len()).sum();
        let bar = Progress::new(self.progress, total as u64);
        let mut tasks = Vec::with_capacity(plans.len());
        let mut samples = BTreeMap::new();
        for p in &plans {
            let (tr, recs) = self.run_plan(model, p, &bar)?;
            if self.keep_samples {
                samples.insert(tr.name.clone(), recs);
            }
            tasks.push(tr);
        }
        bar.finish();
        let groups = aggregate_groups(&suite.groups, &tasks);
        Ok(EvalResults {
            model: model.info(),
            tasks,
            groups,
            group_tree: suite.groups.clone(),
            samples,
            batch_size: self.batch_size,
        })
    }

    fn run_plan(
        &self,
        model: &mut dyn LanguageModel,
        p: &Plan<'_>,
        bar: &Progress,
    ) -> Result<(TaskResult, Vec<SampleRecord>)> {
        let name = p.task.name().to_owned();
        let wrap = |source| Error::Model { task: name.clone(), source };
        let passes_before = model.forward_passes();
        let truncated_before = model.truncated_requests();
        let mut ll_out: Vec<Option<Loglikelihood>> = vec![None; p.ll_unique.len()];
        for batch in context_batches(&p.ll_unique, self.batch_size) {
            let reqs = &p.ll_unique[batch.clone()];
            let got = model.loglikelihood(reqs).map_err(wrap)?;
            if got.len() != reqs.len() {
                return Err(wrap(eai_core::ModelError::CountMismatch {
                    expected: reqs.len(),
                    got: got.len(),
                }));
            }
            for (slot, r) in ll_out[batch].iter_mut().zip(got) {
                *slot = Some(r);
            }
            bar.inc(reqs.len() as u64);
        }
        let mut gen_out: Vec<Option<Generation>> = vec![None; p.gen_unique.len()];
        for start in (0..p.gen_unique.len()).step_by(self.batch_size) {
            let end = (start + self.batch_size).min(p.gen_unique.len());
            let reqs = &p.gen_unique[start..end];
            let got = model.generate_until(reqs).map_err(wrap)?;
            if got.len() != reqs.len() {
                return Err(wrap(eai_core::ModelError::CountMismatch {
                    expected: reqs.len(),
                    got: got.len(),
                }));
            }
            for (slot, r) in gen_out[start..end].iter_mut().zip(got) {
                *slot = Some(r);
            }
            bar.inc(reqs.len() as u64);
        }
        let forward_passes = match (passes_before, model.forward_passes()) {
            (Some(a), Some(b)) => Some(b.saturating_sub(a)),
            _ => None,
        };
        let ll_out: Vec<Loglikelihood> = ll_out.into_iter().flatten().collect();
        let gen_out: Vec<Generation> = gen_out.into_iter().flatten().collect();
        let (mut tr, recs) = score(p, &ll_out, &gen_out, forward_passes, self.keep_samples)?;
        tr.requests.truncated_requests = match (truncated_before, model.truncated_requests()) {
            (Some(a), Some(b)) => Some(b.saturating_sub(a)),
            _ => None,
        };
        Ok((tr, recs))
    }
}

fn plan(task: &Task) -> Result<Plan<'_>> {
    let instances = task.instances()?;
    let mut ll_map: HashMap<LoglikelihoodRequest, usize> = HashMap::new();
    let mut ll_unique = Vec::new();
    let mut ll_index = Vec::with_capacity(instances.len());
    let mut gen_map: HashMap<GenerateRequest, usize> = HashMap::new();
    let mut gen_unique = Vec::new();
    let mut gen_index = Vec::new();
    let mut requests = 0;
    for inst in &instances {
        match &inst.requests {
            DocRequests::Loglikelihood(reqs) => {
                requests += reqs.len();
                let idx: Vec<usize> = reqs
                    .iter()
                    .map(|r| {
                        *ll_map.entry(r.clone()).or_insert_with(|| {
                            ll_unique.push(r.clone());
                            ll_unique.len() - 1
                        })
                    })
                    .collect();
                ll_index.push(idx);
            }
            DocRequests::Generate(g) => {
                requests += 1;
                let i = *gen_map.entry(g.clone()).or_insert_with(|| {
                    gen_unique.push(g.clone());
                    gen_unique.len() - 1
                });
                gen_index.push(i);
            }
        }
    }
    // Longest context first; requests sharing a context stay adjacent.
    let mut order: Vec<usize> = (0..ll_unique.len()).collect();
    order.sort_by(|&a, &b| {
        let (ra, rb) = (&ll_unique[a], &ll_unique[b]);
        rb.context
            .len()
            .cmp(&ra.context.len())
            .then_with(|| ra.context.cmp(&rb.context))
            .then_with(|| rb.continuation.len().cmp(&ra.continuation.len()))
            .then_with(|| ra.continuation.cmp(&rb.continuation))
    });
    let mut new_pos = vec![0; order.len()];
    for (pos, &old) in order.iter().enumerate() {
        new_pos[old] = pos;
    }
    let ll_unique: Vec<LoglikelihoodRequest> =
        order.iter().map(|&i| ll_unique[i].clone()).collect();
    for idx in &mut ll_index {
        for i in idx.iter_mut() {
            *i = new_pos[*i];
        }
    }
    let mut gorder: Vec<usize> = (0..gen_unique.len()).collect();
    gorder.sort_by(|&a, &b| gen_unique[b].context.len().cmp(&gen_unique[a].context.len()));
    let mut gpos = vec![0; gorder.len()];
    for (pos, &old) in gorder.iter().enumerate() {
        gpos[old] = pos;
    }
    let gen_unique: Vec<GenerateRequest> = gorder.iter().map(|&i| gen_unique[i].clone()).collect();
    for i in &mut gen_index {
        *i = gpos[*i];
    }
    Ok(Plan { task, instances, ll_unique, ll_index, gen_unique, gen_index, requests })
}

/// Splits sorted requests into batches of at most `size`, ending batches at context boundaries
/// whenever a whole context group fits (a group larger than `size` is split).
fn context_batches(reqs: &[LoglikelihoodRequest], size: usize) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < reqs.len() {
        let mut j = i + 1;
        while j < reqs.len() && reqs[j].context == reqs[i].context {
            j += 1;
        }
        // group is i..j
        if j - start > size && i > start {
            out.push(start..i);
            start = i;
        }
        while j - start > size {
            out.push(start..start + size);
            start += size;
        }
        i = j;
    }
    if start < reqs.len() {
        out.push(start..reqs.len());
    }
    out
}

fn score(
    p: &Plan<'_>,
    lls: &[Loglikelihood],
    gens: &[Generation],
    forward_passes: Option<u64>,
    keep: bool,
) -> Result<(TaskResult, Vec<SampleRecord>)> {
    let task = p.task;
    check_finite(p, lls)?;
    let docs: Vec<&crate::task::Doc> = p.instances.iter().map(|i| &task.docs()[i.doc]).collect();
    let mut per_metric: BTreeMap<(String, String), Vec<f64>> = BTreeMap::new();
    let mut order: Vec<(String, String)> = Vec::new();
    let mut push = |m: &str, f: &str, v: f64, rec: &mut BTreeMap<String, f64>| {
        let key = (m.to_owned(), f.to_owned());
        if !per_metric.contains_key(&key) {
            order.push(key.clone());
        }
        per_metric.entry(key).or_default().push(v);
        rec.insert(format!("{m},{f}"), v);
    };
    let mut records = Vec::new();
    let mut invalid_gold = 0usize;
    let mut ll_i = 0usize;
    let mut gen_i = 0usize;
    for (inst, doc) in p.instances.iter().zip(docs) {
        let mut rec = SampleRecord {
            doc_id: inst.doc_index,
            doc: doc.id.clone(),
            prompt: inst.context.clone(),
            choices: doc.choices.clone(),
            target: doc.target.clone(),
            continuations: Vec::new(),
            loglikelihoods: Vec::new(),
            is_greedy: Vec::new(),
            generation: None,
            filtered: Vec::new(),
            prediction: None,
            prediction_norm: None,
            metrics: BTreeMap::new(),
        };
        match (task.scoring(), &inst.requests) {
            (Scoring::MultipleChoice { acc_norm }, DocRequests::Loglikelihood(reqs)) => {
                let idx = &p.ll_index[ll_i];
                ll_i += 1;
                let ll: Vec<f64> = idx.iter().map(|&i| lls[i].logprob).collect();
                rec.is_greedy = idx.iter().map(|&i| lls[i].is_greedy).collect();
                rec.continuations = reqs.iter().map(|r| r.continuation.clone()).collect();
                let pred = predict_choice(&ll, &doc.choices);
                let gold = match doc.target {
                    Target::Choice(g) if g < doc.choices.len() => Some(g),
                    _ => None,
                };
                if gold.is_none() {
                    invalid_gold += 1;
                }
                let hit = |x: Option<usize>| f64::from(u8::from(x.is_some() && x == gold));
                rec.prediction = pred.map(|p| p.pred);
                rec.prediction_norm = pred.map(|p| p.pred_norm);
                push("acc", "none", hit(rec.prediction), &mut rec.metrics);
                if *acc_norm {
                    push("acc_norm", "none", hit(rec.prediction_norm), &mut rec.metrics);
                }
                rec.loglikelihoods = ll;
            }
            (Scoring::Mc2(version), DocRequests::Loglikelihood(reqs)) => {
                let idx = &p.ll_index[ll_i];
                ll_i += 1;
                let ll: Vec<f64> = idx.iter().map(|&i| lls[i].logprob).collect();
                rec.is_greedy = idx.iter().map(|&i| lls[i].is_greedy).collect();
                rec.continuations = reqs.iter().map(|r| r.continuation.clone()).collect();
                rec.prediction = metrics::argmax(&ll);
                push("acc", "none", mc2(&ll, &doc.labels, *version), &mut rec.metrics);
                rec.loglikelihoods = ll;
            }
            (Scoring::Generate { filters, exact_match }, DocRequests::Generate(g)) => {
                let out = &gens[p.gen_index[gen_i]];
                gen_i += 1;
                let text = cut_at_stop(&out.text, &g.until);
                let gold = match &doc.target {
                    Target::Text(t) => t.as_str(),
                    Target::Choice(_) => "",
                };
                for (fname, f) in filters {
                    let filtered = f.apply(&text);
                    push(
                        "exact_match",
                        fname,
                        exact_match.score(&filtered, gold),
                        &mut rec.metrics,
                    );
                    rec.filtered.push((fname.clone(), filtered));
                }
                rec.generation = Some(text);
            }
            _ => {
                return Err(Error::config(format!(
                    "task {}: scoring rule does not match request kind",
                    task.name()
                )));
            }
        }
        if keep {
            records.push(rec);
        }
    }
    let metrics = order
        .iter()
        .map(|key| {
            let xs = &per_metric[key];
            MetricValue {
                metric: key.0.clone(),
                filter: key.1.clone(),
                value: metrics::mean(xs),
                stderr: metrics::mean_stderr(xs),
            }
        })
        .collect();
    let unique_contexts = {
        let mut c: Vec<&str> = p.ll_unique.iter().map(|r| r.context.as_str()).collect();
        c.extend(p.gen_unique.iter().map(|r| r.context.as_str()));
        c.sort_unstable();
        c.dedup();
        c.len()
    };
    let cfg = task.config();
    Ok((
        TaskResult {
            name: cfg.name.clone(),
            alias: cfg.alias.clone().unwrap_or_else(|| cfg.name.clone()),
            version: cfg.version.clone(),
            num_fewshot: cfg.num_fewshot,
            n_original: task.docs().len(),
            n_effective: p.instances.len(),
            metrics,
            requests: RequestStats {
                requests: p.requests,
                unique_requests: p.ll_unique.len() + p.gen_unique.len(),
                unique_contexts,
                forward_passes,
                scored_tokens: sum_tokens(lls.iter().map(|l| l.tokens)),
                generated_tokens: sum_tokens(gens.iter().map(|g| g.tokens)),
                truncated_requests: None,
            },
            invalid_gold,
            source: task.source().to_owned(),
            config: cfg.clone(),
        },
        records,
    ))
}

/// No score from a non-finite number: a NaN or infinite log-likelihood (a NaN compares false
/// with everything, so argmax would quietly pick the first choice) is an error naming the task,
/// the document and the request.
fn check_finite(p: &Plan<'_>, lls: &[Loglikelihood]) -> Result<()> {
    let Some(bad) = lls.iter().position(|l| !l.logprob.is_finite()) else { return Ok(()) };
    let req = &p.ll_unique[bad];
    let doc = p
        .instances
        .iter()
        .filter(|i| matches!(i.requests, DocRequests::Loglikelihood(_)))
        .zip(&p.ll_index)
        .find(|(_, idx)| idx.contains(&bad))
        .map_or_else(|| "?".to_owned(), |(inst, _)| p.task.docs()[inst.doc].id.clone());
    let tail: String = {
        let n = req.context.chars().count();
        req.context.chars().skip(n.saturating_sub(80)).collect()
    };
    Err(Error::NonFiniteLoglikelihood {
        task: p.task.name().to_owned(),
        doc,
        context: tail,
        continuation: req.continuation.clone(),
        value: lls[bad].logprob,
    })
}

/// The sum when every item has a count (`None` if any lacks one or there are none).
fn sum_tokens(xs: impl Iterator<Item = Option<u32>>) -> Option<u64> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn r(c: &str, k: &str) -> LoglikelihoodRequest {
        LoglikelihoodRequest::new(c, k)
    }

    #[test]
    fn batches_respect_context_groups() {
        let reqs =
            vec![r("a", "1"), r("a", "2"), r("a", "3"), r("b", "1"), r("b", "2"), r("c", "1")];
        assert_eq!(context_batches(&reqs, 4), vec![0..3, 3..6]);
        assert_eq!(context_batches(&reqs, 2), vec![0..2, 2..3, 3..5, 5..6]);
        assert_eq!(context_batches(&reqs, 100), vec![0..6]);
        assert!(context_batches(&[], 3).is_empty());
    }
}
