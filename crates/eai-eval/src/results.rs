//! Results: per-task metrics with stderr, group aggregates, per-sample records, and their JSON
//! form, laid out like lm-evaluation-harness's `results.json` and `samples_<task>.jsonl`.

use std::collections::BTreeMap;
use std::path::Path;

use eai_core::ModelInfo;
use serde_json::{Value, json};

use crate::task::{Target, TaskConfig};
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RequestStats {
    /// Requests the task produced (one per choice, or one per generation).
    pub requests: usize,
    /// Distinct requests actually sent.
    pub unique_requests: usize,
    /// Distinct contexts among them: the forward-pass count of an engine that scores all
    /// single-token continuations of a context together (MMLU: one per question).
    pub unique_contexts: usize,
    /// Forward passes the engine reports having run for this task, when it counts them.
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
    /// Per-document metric values by lm-eval key.
    pub metrics: BTreeMap<String, f64>,
}

impl SampleRecord {
    /// The record in the shape of a line of lm-eval's `samples_<task>.jsonl`, plus the
    /// rendered prompt and predictions.
    pub fn to_json(&self) -> Value {
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
        m.insert("prediction".into(), json!(self.prediction));
        m.insert("prediction_norm".into(), json!(self.prediction_norm));
        for (k, v) in &self.metrics {
            m.insert(k.clone(), json!(v));
        }
        Value::Object(m)
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
    /// Requests per model call.
    pub batch_size: usize,
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
                "batch_size": self.batch_size,
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
