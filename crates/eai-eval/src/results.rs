//! Results: per-task metrics with stderr, group aggregates, per-sample records, and their JSON
//! form, laid out like lm-evaluation-harness's `results.json` and `samples_<task>.jsonl`.

use std::collections::BTreeMap;
use std::path::Path;

use eai_core::{ModelInfo, Seconds};
use serde_json::{Value, json};

use crate::perplexity::PerplexitySample;
use crate::task::{FewshotRef, Target, TaskConfig};
use crate::tasks::Group;
use crate::{Error, Result};

/// One aggregated metric: `value` and its standard error (`None` is lm-eval's `"N/A"`).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct MetricValue {
    /// `acc`, `acc_norm` or `exact_match`.
    pub metric: String,
    /// `none`, or the filter name (`strict-match`, `flexible-extract`).
    pub filter: String,
    /// The mean over documents (or the group aggregate).
    pub value: f64,
    /// Standard error of the mean (pooled for groups).
    pub stderr: Option<f64>,
}

impl MetricValue {
    /// lm-eval's key, e.g. `acc,none` or `exact_match,strict-match`.
    pub fn key(&self) -> String {
        format!("{},{}", self.metric, self.filter)
    }
}

/// Requests versus forward passes for one task.
///
/// `requests` is the count lm-evaluation-harness builds and reports (one per choice, one per
/// generation); `unique_requests` the count actually sent to the model, after identical
/// `(context, continuation)` pairs are merged. They differ when a task repeats a question with
/// the same choices: full ARC-Easy (test, 0-shot) has 9,501 requests and 9,496 unique ones (two
/// questions appear twice with the same choices, five pairs in all).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RequestStats {
    /// Requests the task produced (one per choice, or one per generation): lm-eval's count.
    pub requests: usize,
    /// Distinct requests actually sent (per pass).
    pub unique_requests: usize,
    /// Distinct contexts among them: the forward-pass count of an engine that scores all
    /// single-token continuations of a context together (MMLU: one per question).
    pub unique_contexts: usize,
    /// Forward passes the engine reports having run for this task (first pass over its
    /// requests), when it counts them.
    pub forward_passes: Option<u64>,
    /// Continuation tokens scored over the distinct log-likelihood requests, when the engine
    /// reported a count for every one ([`eai_core::Loglikelihood::tokens`]).
    pub scored_tokens: Option<u64>,
    /// Tokens generated over the distinct generation requests, when the engine reported a count
    /// for every one ([`eai_core::Generation::tokens`]).
    pub generated_tokens: Option<u64>,
    /// Requests whose input exceeded the engine's context and was left-truncated to it (as
    /// lm-eval does), when the engine counts them
    /// ([`LanguageModel::truncated_requests`](eai_core::LanguageModel::truncated_requests)).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truncated_requests: Option<u64>,
}

/// Where one task's time went in one run, in wall-clock seconds of the evaluating thread.
///
/// `total = prepare + engine + scoring + bookkeeping`. Engine time is measured around each call
/// to the model; `tokenize` is the part of it the engine reports spending on tokenization
/// ([`eai_core::LanguageModel::engine_time`]), when it reports it. When a run repeats the task's
/// model calls (`Evaluator::run_prepared_passes`), `engine`, `tokenize`, `bookkeeping`, `calls`
/// and `total` cover all `passes`; `prepare` and `scoring` happen once.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
#[non_exhaustive]
pub struct TaskTiming {
    /// Rendering prompts and building, merging and sorting requests, when this run did it (zero
    /// when it ran a plan prepared earlier: see `Prepared::prepare_time`).
    pub prepare: Seconds,
    /// Inside the model's calls.
    pub engine: Seconds,
    /// Of `engine`: tokenization, as the engine reports it (`None`: it does not say).
    pub tokenize: Option<Seconds>,
    /// Turning answers into metrics and per-sample records.
    pub scoring: Seconds,
    /// Everything else: splitting work into calls, checking and storing answers, progress.
    pub bookkeeping: Seconds,
    /// The task's wall-clock time in this run.
    pub total: Seconds,
    /// Passes over the task's requests (1 unless repeated to fill a measuring window).
    pub passes: usize,
    /// Calls made to the model, over all passes.
    pub calls: usize,
    /// An untimed warm-up pass over the same requests before the timed ones
    /// (`Evaluator::warmup`: the engine's tokenizer cache, device buffers and clocks warmed up),
    /// not part of any figure above; zero when none ran.
    pub warmup: Seconds,
}

impl TaskTiming {
    /// `engine / total`: the share of the task's time the model was working (0 when nothing
    /// was timed).
    pub fn engine_share(&self) -> f64 {
        if self.total.0 > 0.0 { (self.engine.0 / self.total.0).clamp(0.0, 1.0) } else { 0.0 }
    }

    /// The engine's time outside tokenization (`engine − tokenize`, or `engine` when tokenize
    /// time is unknown).
    pub fn compute(&self) -> Seconds {
        Seconds((self.engine.0 - self.tokenize.map_or(0.0, |t| t.0)).max(0.0))
    }
}

/// Where a run's per-call request limits came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum BatchSource {
    /// Set by the caller (`Evaluator::batch_size`).
    Override,
    /// The model's own answer ([`eai_core::LanguageModel::batch_hint`]).
    Engine,
    /// The model did not say; the evaluator's default (`Evaluator::DEFAULT_BATCH_SIZE`).
    Default,
}

/// How a run split each task's requests into calls to the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct Batching {
    /// Most log-likelihood requests per call (`None`: a task's requests in one call).
    pub loglikelihood_requests: Option<usize>,
    /// Most generation requests per call (`None`: a task's requests in one call).
    pub generate_requests: Option<usize>,
    /// Where these limits came from.
    pub source: BatchSource,
}

impl Batching {
    /// The log-likelihood limit as lm-eval's `config.batch_size` would show it: the number, or
    /// `"all"` for no limit.
    pub fn label(&self) -> String {
        self.loglikelihood_requests.map_or_else(|| "all".to_owned(), |n| n.to_string())
    }
}

/// One task's results.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct TaskResult {
    /// Task name.
    pub name: String,
    /// Display alias.
    pub alias: String,
    /// Task version (the YAML's `metadata.version`).
    pub version: String,
    /// Shots used.
    pub num_fewshot: usize,
    /// Documents in the evaluation split.
    pub n_original: usize,
    /// Documents evaluated (after the limit).
    pub n_effective: usize,
    /// Metrics in lm-eval's order.
    pub metrics: Vec<MetricValue>,
    /// Request and forward-pass counts.
    pub requests: RequestStats,
    /// Where the task's time went in this run.
    pub timing: TaskTiming,
    /// Documents whose gold index was outside the choices (scored 0, as lm-eval does).
    pub invalid_gold: usize,
    /// Where the data came from.
    pub source: String,
    /// The task configuration used.
    pub config: TaskConfig,
}

impl TaskResult {
    /// The value of a metric by lm-eval key (`acc,none`).
    pub fn metric(&self, key: &str) -> Option<&MetricValue> {
        self.metrics.iter().find(|m| m.key() == key)
    }
}

/// One group's aggregate.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct GroupResult {
    /// Group name.
    pub name: String,
    /// Display alias.
    pub alias: String,
    /// Documents over all leaf tasks.
    pub n: usize,
    /// Number of leaf tasks found.
    pub leaf_tasks: usize,
    /// Aggregated metrics.
    pub metrics: Vec<MetricValue>,
}

impl GroupResult {
    /// The value of a metric by lm-eval key (`acc,none`).
    pub fn metric(&self, key: &str) -> Option<&MetricValue> {
        self.metrics.iter().find(|m| m.key() == key)
    }
}

/// What happened to one document.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct SampleRecord {
    /// Position in evaluation order.
    pub doc_id: usize,
    /// The document's identifier.
    pub doc: String,
    /// The rendered context.
    pub prompt: String,
    /// The choices (multiple choice).
    pub choices: Vec<String>,
    /// The gold target.
    pub target: Target,
    /// The few-shot examples in the prompt, in order (pool index and document id).
    pub fewshot: Vec<FewshotRef>,
    /// The continuations sent (multiple choice).
    pub continuations: Vec<String>,
    /// Per-choice log-likelihoods.
    pub loglikelihoods: Vec<f64>,
    /// Per-choice greedy flags.
    pub is_greedy: Vec<bool>,
    /// The generated text, cut at the stop strings (generation).
    pub generation: Option<String>,
    /// `(filter, extracted answer)` per filter (generation).
    pub filtered: Vec<(String, String)>,
    /// `argmax(ll)`.
    pub prediction: Option<usize>,
    /// `argmax(ll / chars)`.
    pub prediction_norm: Option<usize>,
    /// The rolling log-likelihood and the word and byte counts it is divided by (perplexity
    /// tasks).
    pub perplexity: Option<PerplexitySample>,
    /// Per-document metric values by lm-eval key (perplexity tasks aggregate over documents and
    /// have none).
    pub metrics: BTreeMap<String, f64>,
}

impl SampleRecord {
    /// The record in the shape of a line of lm-eval's `samples_<task>.jsonl`, plus the
    /// rendered prompt, predictions and the few-shot examples used (`fewshot`: pool index and
    /// id of each, in prompt order; lm-eval shows them only inside the prompt).
    pub fn to_json(&self) -> Value {
        if let Some(p) = &self.perplexity {
            return self.perplexity_json(p);
        }
        let arguments: Value = if self.generation.is_some() {
            json!([[self.prompt]])
        } else {
            Value::Array(self.continuations.iter().map(|c| json!([self.prompt, c])).collect())
        };
        let resps: Value = match &self.generation {
            Some(g) => json!([[g]]),
            None => Value::Array(
                self.loglikelihoods
                    .iter()
                    .zip(&self.is_greedy)
                    .map(|(l, g)| json!([[l.to_string(), g.to_string()]]))
                    .collect(),
            ),
        };
        let mut m = serde_json::Map::new();
        m.insert("doc_id".into(), json!(self.doc_id));
        m.insert("doc".into(), json!({"id": self.doc, "choices": self.choices}));
        m.insert("target".into(), json!(self.target));
        m.insert("arguments".into(), arguments);
        m.insert("resps".into(), resps);
        if self.generation.is_some() {
            m.insert(
                "filtered_resps".into(),
                Value::Object(self.filtered.iter().map(|(f, s)| (f.clone(), json!(s))).collect()),
            );
        } else {
            m.insert(
                "filtered_resps".into(),
                Value::Array(
                    self.loglikelihoods
                        .iter()
                        .zip(&self.is_greedy)
                        .map(|(l, g)| json!([l.to_string(), g.to_string()]))
                        .collect(),
                ),
            );
            m.insert("loglikelihoods".into(), json!(self.loglikelihoods));
        }
        m.insert("prompt".into(), json!(self.prompt));
        m.insert("fewshot".into(), json!(self.fewshot));
        m.insert("prediction".into(), json!(self.prediction));
        m.insert("prediction_norm".into(), json!(self.prediction_norm));
        for (k, v) in &self.metrics {
            m.insert(k.clone(), json!(v));
        }
        Value::Object(m)
    }

    /// A perplexity document as lm-eval logs one: the text as the argument, the rolling
    /// log-likelihood as the response, and per metric the `[loglikelihood, weight]` pair that
    /// the task aggregates.
    fn perplexity_json(&self, p: &PerplexitySample) -> Value {
        let text = match &self.target {
            Target::Text(t) => t.as_str(),
            Target::Choice(_) => "",
        };
        json!({
            "doc_id": self.doc_id,
            "doc": {"id": self.doc},
            "target": self.target,
            "arguments": [[text]],
            "resps": [[p.logprob]],
            "filtered_resps": [p.logprob],
            "word_perplexity,none": [p.logprob, p.words],
            "byte_perplexity,none": [p.logprob, p.bytes],
            "bits_per_byte,none": [p.logprob, p.bytes],
            "tokens": p.tokens,
            "fewshot": self.fewshot,
        })
    }
}

/// Everything an evaluation produced.
#[derive(Clone, Debug)]
pub struct EvalResults {
    /// What the model said about itself.
    pub model: ModelInfo,
    /// Per-task results, in run order.
    pub tasks: Vec<TaskResult>,
    /// Group aggregates.
    pub groups: Vec<GroupResult>,
    /// The group definitions.
    pub group_tree: Vec<Group>,
    /// Per-sample records by task (empty when not kept).
    pub samples: BTreeMap<String, Vec<SampleRecord>>,
    /// How requests were split into calls to the model.
    pub batching: Batching,
}

fn stderr_json(se: Option<f64>) -> Value {
    se.map_or_else(|| json!("N/A"), |v| json!(v))
}

impl EvalResults {
    /// A task's result by name.
    pub fn task(&self, name: &str) -> Option<&TaskResult> {
        self.tasks.iter().find(|t| t.name == name)
    }

    /// A group's result by name.
    pub fn group(&self, name: &str) -> Option<&GroupResult> {
        self.groups.iter().find(|g| g.name == name)
    }

    /// The results in the layout of lm-eval's `results.json` (`results`, `groups`,
    /// `group_subtasks`, `configs`, `versions`, `n-shot`, `higher_is_better`, `n-samples`,
    /// `config`), plus an `eai` section with request and forward-pass counts. Keys are sorted.
    pub fn to_json(&self) -> Value {
        let mut results = serde_json::Map::new();
        let mut groups = serde_json::Map::new();
        for g in &self.groups {
            let mut o = serde_json::Map::new();
            o.insert("alias".into(), json!(g.alias));
            o.insert("sample_len".into(), json!(g.n));
            for m in &g.metrics {
                o.insert(m.key(), json!(m.value));
                o.insert(format!("{}_stderr,{}", m.metric, m.filter), stderr_json(m.stderr));
            }
            results.insert(g.name.clone(), Value::Object(o.clone()));
            groups.insert(g.name.clone(), Value::Object(o));
        }
        let (mut configs, mut versions, mut nshot, mut hib, mut nsamples, mut eai) = (
            serde_json::Map::new(),
            serde_json::Map::new(),
            serde_json::Map::new(),
            serde_json::Map::new(),
            serde_json::Map::new(),
            serde_json::Map::new(),
        );
        for t in &self.tasks {
            let mut o = serde_json::Map::new();
            o.insert("alias".into(), json!(t.alias));
            for m in &t.metrics {
                o.insert(m.key(), json!(m.value));
                o.insert(format!("{}_stderr,{}", m.metric, m.filter), stderr_json(m.stderr));
            }
            results.insert(t.name.clone(), Value::Object(o));
            let c = &t.config;
            let mut cfg = json!({
                "task": c.name,
                "description": c.description,
                "target_delimiter": c.target_delimiter,
                "fewshot_delimiter": c.fewshot_delimiter,
                "num_fewshot": c.num_fewshot,
                "fewshot_config": c.sampler,
                "metadata": {"version": c.version},
            });
            if !c.until.is_empty() {
                cfg["generation_kwargs"] = json!({
                    "until": c.until, "max_gen_toks": c.max_gen_toks,
                    "do_sample": false, "temperature": 0.0,
                });
            }
            if let Some(a) = &c.alias {
                cfg["task_alias"] = json!(a);
            }
            configs.insert(t.name.clone(), cfg);
            versions.insert(t.name.clone(), json!(t.version));
            nshot.insert(t.name.clone(), json!(t.num_fewshot));
            hib.insert(
                t.name.clone(),
                Value::Object(t.metrics.iter().map(|m| (m.metric.clone(), json!(true))).collect()),
            );
            nsamples.insert(
                t.name.clone(),
                json!({"original": t.n_original, "effective": t.n_effective}),
            );
            eai.insert(
                t.name.clone(),
                json!({
                    "requests": t.requests.requests,
                    "unique_requests": t.requests.unique_requests,
                    "unique_contexts": t.requests.unique_contexts,
                    "forward_passes": t.requests.forward_passes,
                    "scored_tokens": t.requests.scored_tokens,
                    "generated_tokens": t.requests.generated_tokens,
                    "timing": t.timing,
                    "invalid_gold": t.invalid_gold,
                    "source": t.source,
                }),
            );
        }
        let group_subtasks: serde_json::Map<String, Value> =
            self.group_tree.iter().map(|g| (g.name.clone(), json!(g.children))).collect();
        json!({
            "results": results,
            "groups": groups,
            "group_subtasks": group_subtasks,
            "configs": configs,
            "versions": versions,
            "n-shot": nshot,
            "higher_is_better": hib,
            "n-samples": nsamples,
            "config": {
                "model": self.model.name,
                "model_scheme": self.model.scheme,
                "model_device": self.model.device,
                "max_context": self.model.max_context,
                "add_bos_token": self.model.add_bos_token,
                "batch_size": match self.batching.loglikelihood_requests {
                    Some(n) => json!(n),
                    None => json!("all"),
                },
                "eai_batching": self.batching,
                "bootstrap_iters": 0,
            },
            "eai": eai,
        })
    }

    /// Writes `results.json` and one `samples_<task>.jsonl` per task into `dir` (created if
    /// needed).
    ///
    /// # Errors
    /// I/O and serialization errors, naming the path.
    pub fn write_dir(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let p = dir.join("results.json");
        let text = serde_json::to_string_pretty(&self.to_json()).map_err(Error::Serialize)?;
        std::fs::write(&p, text).map_err(|e| Error::io(&p, e))?;
        for (task, recs) in &self.samples {
            let p = dir.join(format!("samples_{task}.jsonl"));
            let mut out = String::new();
            for r in recs {
                out.push_str(&serde_json::to_string(&r.to_json()).map_err(Error::Serialize)?);
                out.push('\n');
            }
            std::fs::write(&p, out).map_err(|e| Error::io(&p, e))?;
        }
        Ok(())
    }

    /// A plain-text table like lm-eval's (task, version, filter, n-shot, metric, value, stderr).
    pub fn table(&self) -> String {
        let mut s = String::from(
            "|Tasks|Version|Filter|n-shot|Metric|Value|Stderr|\n|---|---|---|---|---|---|---|\n",
        );
        let se = |x: Option<f64>| x.map_or_else(|| "N/A".to_owned(), |v| format!("{v:.4}"));
        for t in &self.tasks {
            for m in &t.metrics {
                s.push_str(&format!(
                    "|{}|{}|{}|{}|{}|{:.4}|± {}|\n",
                    t.alias,
                    t.version,
                    m.filter,
                    t.num_fewshot,
                    m.metric,
                    m.value,
                    se(m.stderr)
                ));
            }
        }
        for g in &self.groups {
            for m in &g.metrics {
                s.push_str(&format!(
                    "|{}| |{}| |{}|{:.4}|± {}|\n",
                    g.alias,
                    m.filter,
                    m.metric,
                    m.value,
                    se(m.stderr)
                ));
            }
        }
        s
    }
}
