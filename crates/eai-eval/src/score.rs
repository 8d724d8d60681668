//! Scoring: a task's answers into lm-eval's metrics and per-sample records; group aggregates.

use std::collections::{BTreeMap, HashMap};

use eai_core::{Generation, Loglikelihood};

use crate::metrics::{self, cut_at_stop, mc2, predict_choice};
use crate::prepare::PreparedTask;
use crate::results::{
    GroupResult, MetricValue, RequestStats, SampleRecord, TaskResult, TaskTiming,
};
use crate::task::{DocRequests, Scoring, Target};
use crate::tasks::Group;
use crate::{Error, Result};

/// Scores one task from the model's answers to its distinct requests (`lls` in `ll_unique`
/// order, `gens` in `gen_unique` order). The timing is left at zero for the caller to fill.
pub(crate) fn score(
    p: &PreparedTask,
    lls: &[Loglikelihood],
    gens: &[Generation],
    forward_passes: Option<u64>,
    keep: bool,
) -> Result<(TaskResult, Vec<SampleRecord>)> {
    let task = &p.task;
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
                unique_contexts: p.unique_contexts,
                forward_passes,
                scored_tokens: sum_tokens(lls.iter().map(|l| l.tokens)),
                generated_tokens: sum_tokens(gens.iter().map(|g| g.tokens)),
                truncated_requests: None,
            },
            timing: TaskTiming::default(),
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
fn check_finite(p: &PreparedTask, lls: &[Loglikelihood]) -> Result<()> {
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
