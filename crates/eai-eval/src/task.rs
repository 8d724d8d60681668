//! The task model: processed documents, prompt assembly, few-shot sampling and requests.
//!
//! A [`Task`] is plain data, the equivalent of one lm-eval `ConfigurableTask` after
//! `process_docs`: evaluation documents, a few-shot pool, a [`TaskConfig`] (description,
//! delimiters, shots, sampler, generation settings) and a [`Scoring`]. The benchmark
//! constructors in [`crate::tasks`] build them from the original files; you can build your own
//! from [`Doc`]s.

use eai_core::{GenerateRequest, LoglikelihoodRequest, RollingRequest};

use crate::metrics::{ExactMatch, RegexFilter};
use crate::pyrandom::PyRandom;
use crate::{Error, Result};

/// A document after the task's processing (`doc_to_text`, `doc_to_choice`, `doc_to_target`).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Doc {
    /// A stable identifier for per-sample records (the dataset's id, or `file:line`).
    pub id: String,
    /// `doc_to_text`: the rendered question, without the answer.
    pub text: String,
    /// `doc_to_choice`: the answer options (empty for generation tasks).
    pub choices: Vec<String>,
    /// `doc_to_target`.
    pub target: Target,
    /// Per-choice truth labels, for tasks scored over several true answers (TruthfulQA MC2).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<bool>,
}

/// One few-shot example of a rendered context: its index in the task's few-shot pool and its
/// document id.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct FewshotRef {
    /// Index into [`Task::fewshot_pool`].
    pub index: usize,
    /// The pool document's [`Doc::id`].
    pub id: String,
}

/// What `doc_to_target` yields.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(untagged)]
pub enum Target {
    /// An index into the choices (multiple choice). An index outside the choices is scored 0 and
    /// counted, as lm-eval does (it maps it to -100 and logs a warning).
    Choice(usize),
    /// A reference string (generation tasks; also the answer text of a few-shot example).
    Text(String),
}

impl Doc {
    /// A multiple-choice document.
    pub fn multiple_choice(
        id: impl Into<String>,
        text: impl Into<String>,
        choices: Vec<String>,
        gold: usize,
    ) -> Self {
        Self {
            id: id.into(),
            text: text.into(),
            choices,
            target: Target::Choice(gold),
            labels: Vec::new(),
        }
    }

    /// A generation document with its reference answer.
    pub fn generation(
        id: impl Into<String>,
        text: impl Into<String>,
        target: impl Into<String>,
    ) -> Self {
        Self {
            id: id.into(),
            text: text.into(),
            choices: Vec::new(),
            target: Target::Text(target.into()),
            labels: Vec::new(),
        }
    }

    /// The answer text appended after this document when it serves as a few-shot example:
    /// `choices[target]` for an index target, the string itself otherwise.
    pub fn answer_text(&self) -> Option<&str> {
        match &self.target {
            Target::Choice(i) => self.choices.get(*i).map(String::as_str),
            Target::Text(t) => Some(t),
        }
    }
}

/// How few-shot examples are chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "sampler")]
pub enum Sampler {
    /// lm-eval's default `ContextSampler`: one `random.Random(seed)` per task, one
    /// `sample(pool, k)` per evaluated document, in evaluation order.
    Random {
        /// `fewshot_random_seed` (lm-eval's default is 1234).
        seed: i64,
    },
    /// `first_n`: the first `k` pool documents in file order (MMLU, the CoT exemplars).
    FirstN,
}

impl Sampler {
    /// lm-eval's default few-shot seed.
    pub const DEFAULT_SEED: i64 = 1234;
}

/// How many evaluation documents to use (`--limit`).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Limit {
    /// The first `n` documents.
    Count(usize),
    /// The first `ceil(len * f)` documents, `0 < f < 1` (lm-eval's float `--limit`).
    Fraction(f64),
}

impl Limit {
    /// How many of `len` documents this limit keeps.
    pub fn apply(self, len: usize) -> usize {
        match self {
            Self::Count(n) => n.min(len),
            Self::Fraction(f) => {
                if f >= 1.0 {
                    len.min(f as usize)
                } else {
                    ((len as f64 * f).ceil() as usize).min(len)
                }
            }
        }
    }
}

/// How a task's documents are scored.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Scoring {
    /// One log-likelihood per choice; `acc` (argmax) and, if `acc_norm`, the argmax of the
    /// log-likelihood divided by the choice's length in characters.
    MultipleChoice {
        /// Report `acc_norm` too.
        acc_norm: bool,
    },
    /// TruthfulQA MC2: normalised probability mass on the true answers, reported as `acc`.
    Mc2(Mc2Version),
    /// Generation, filtered by each filter, then compared with the target.
    Generate {
        /// `(filter name, filter)`, e.g. `strict-match` and `flexible-extract`.
        filters: Vec<(String, RegexFilter)>,
        /// The `exact_match` settings.
        exact_match: ExactMatch,
    },
    /// Perplexity of the target text (lm-eval's `loglikelihood_rolling` with wikitext's
    /// `process_results`): `word_perplexity`, `byte_perplexity` and `bits_per_byte`, weighted by
    /// the text's words and UTF-8 bytes over the whole task (see [`crate::perplexity`]).
    Perplexity,
}

impl Scoring {
    /// The metrics this rule reports, as `(metric, filter)` in lm-eval's order: `acc` (and
    /// `acc_norm`) with filter `none`; `exact_match` per filter; or the three perplexities.
    ///
    /// ```
    /// use eai_eval::Scoring;
    /// let mc = Scoring::MultipleChoice { acc_norm: true };
    /// assert_eq!(mc.metric_keys(), [("acc".into(), "none".into()), ("acc_norm".into(), "none".into())]);
    /// assert_eq!(Scoring::Perplexity.metric_keys().len(), 3);
    /// ```
    pub fn metric_keys(&self) -> Vec<(String, String)> {
        let none = |m: &str| (m.to_owned(), "none".to_owned());
        match self {
            Self::MultipleChoice { acc_norm: true } => vec![none("acc"), none("acc_norm")],
            Self::MultipleChoice { acc_norm: false } | Self::Mc2(_) => vec![none("acc")],
            Self::Generate { filters, .. } => {
                filters.iter().map(|(f, _)| ("exact_match".to_owned(), f.clone())).collect()
            }
            Self::Perplexity => crate::perplexity::METRICS.iter().map(|m| none(m)).collect(),
        }
    }
}

/// Which definition of TruthfulQA MC2 to compute.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mc2Version {
    /// Task version 3.0 (lm-eval ≥ 0.4.9): sum the probability of every label-1 option.
    #[default]
    V3LabelMask,
    /// Task version 2.0 and older (lm-eval ≤ 0.4.8, Open LLM Leaderboard v1): treat the options
    /// before the first label 0 as the true ones.
    V2SplitAtFirstFalse,
}

/// The settings lm-eval keeps in a task's YAML, plus the run-time shot count and limit.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct TaskConfig {
    /// The task name (`arc_easy`, `mmlu_anatomy`, ...).
    pub name: String,
    /// A display alias (`anatomy` for `mmlu_anatomy`), when it differs from the name.
    pub alias: Option<String>,
    /// The task YAML's `metadata.version`.
    pub version: String,
    /// Prepended to every context, with no separator of its own (MMLU's ends in `"\n\n"`).
    pub description: String,
    /// Between a question and its answer (default `" "`); also prefixes every continuation.
    pub target_delimiter: String,
    /// After each few-shot answer (default `"\n\n"`).
    pub fewshot_delimiter: String,
    /// Number of few-shot examples.
    pub num_fewshot: usize,
    /// How the examples are chosen.
    pub sampler: Sampler,
    /// Draw `k + 1` examples and drop the evaluated document if it was drawn (then keep the
    /// first `k`). lm-eval does this whenever the task's few-shot split equals its test split,
    /// which includes the case where both are unset: HellaSwag (`test_split: null`, no
    /// `fewshot_split`) therefore draws `k + 1` from train, which shifts its random stream.
    pub exclude_eval_doc: bool,
    /// Stop strings for generation tasks.
    pub until: Vec<String>,
    /// Maximum new tokens for generation tasks.
    pub max_gen_toks: usize,
    /// Evaluate only a prefix of the documents.
    pub limit: Option<Limit>,
    /// Evaluate only these documents (indices into the task's documents), as lm-eval's
    /// `--samples` does: the listed documents in document order, each once; the limit is then
    /// ignored. Set it with [`Task::with_doc_indices`], which checks the indices.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub doc_indices: Option<Vec<usize>>,
    /// Reproduce the Open LLM Leaderboard v1 harness (lm-eval `b281b09`) instead: shuffle the
    /// evaluation documents with `random.Random(seed)` (it used 42), apply the limit after the
    /// shuffle (a fraction keeps `floor(len·f)`), and draw random shots from that same
    /// generator, `k` per document with no `k + 1` exclusion when the pool is a train split.
    pub legacy_shuffle_seed: Option<i64>,
}

impl TaskConfig {
    /// lm-eval's defaults: no description, `" "` and `"\n\n"` delimiters, 0 shots, random
    /// sampler with seed 1234, version `1.0`.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            alias: None,
            version: "1.0".into(),
            description: String::new(),
            target_delimiter: " ".into(),
            fewshot_delimiter: "\n\n".into(),
            num_fewshot: 0,
            sampler: Sampler::Random { seed: Sampler::DEFAULT_SEED },
            exclude_eval_doc: false,
            until: Vec::new(),
            max_gen_toks: GenerateRequest::DEFAULT_MAX_GEN_TOKS,
            limit: None,
            doc_indices: None,
            legacy_shuffle_seed: None,
        }
    }
}

/// One benchmark task: documents, few-shot pool, configuration and scoring.
#[derive(Clone, Debug)]
pub struct Task {
    config: TaskConfig,
    docs: Vec<Doc>,
    pool: Vec<Doc>,
    scoring: Scoring,
    source: String,
}

/// The requests one document produces.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum DocRequests {
    /// One log-likelihood request per choice, sharing the context.
    Loglikelihood(Vec<LoglikelihoodRequest>),
    /// One generation request.
    Generate(GenerateRequest),
    /// One rolling log-likelihood request over the document's target text (perplexity).
    Rolling(RollingRequest),
}

/// A document with its rendered context and requests.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Instance {
    /// Position in the (limited) evaluation order.
    pub doc_index: usize,
    /// Index of the document in [`Task::docs`] (differs from `doc_index` only when the
    /// documents are shuffled, as the Leaderboard-v1 harness did).
    pub doc: usize,
    /// The rendered context (description, shots, question).
    pub context: String,
    /// The few-shot examples in the context, in the order they appear: indices into
    /// [`Task::fewshot_pool`] (each pool document's [`Doc::id`] names it).
    pub fewshot: Vec<usize>,
    /// The requests to send.
    pub requests: DocRequests,
}

impl Instance {
    /// Number of requests the document makes (one per choice, or one).
    pub fn request_count(&self) -> usize {
        match &self.requests {
            DocRequests::Loglikelihood(r) => r.len(),
            DocRequests::Generate(_) | DocRequests::Rolling(_) => 1,
        }
    }
}

impl Task {
    /// Assembles a task.
    ///
    /// # Errors
    /// [`Error::Config`] when the shots cannot be drawn (more than the pool holds, or a pool
    /// document without an answer), when a multiple-choice document has no choices, or when a
    /// generation task has documents without a text target.
    pub fn new(
        config: TaskConfig,
        docs: Vec<Doc>,
        fewshot_pool: Vec<Doc>,
        scoring: Scoring,
    ) -> Result<Self> {
        let needed = config.num_fewshot + usize::from(config.exclude_eval_doc);
        if config.num_fewshot > 0 && fewshot_pool.len() < needed {
            return Err(Error::config(format!(
                "task {}: {} shots requested but the few-shot pool holds {} documents",
                config.name,
                config.num_fewshot,
                fewshot_pool.len()
            )));
        }
        if let Some(d) = fewshot_pool.iter().find(|d| d.answer_text().is_none())
            && config.num_fewshot > 0
        {
            return Err(Error::config(format!(
                "task {}: few-shot document {} has no answer text",
                config.name, d.id
            )));
        }
        let generative = matches!(scoring, Scoring::Generate { .. } | Scoring::Perplexity);
        if matches!(scoring, Scoring::Perplexity) && config.num_fewshot > 0 {
            return Err(Error::config(format!(
                "task {}: a perplexity task takes no few-shot examples ({} requested)",
                config.name, config.num_fewshot
            )));
        }
        if let Some(bad) = config.doc_indices.iter().flatten().find(|&&i| i >= docs.len()) {
            return Err(Error::config(format!(
                "task {}: document index {bad} is out of range (the task has {} documents)",
                config.name,
                docs.len()
            )));
        }
        for d in &docs {
            if !generative && d.choices.is_empty() {
                return Err(Error::config(format!(
                    "task {}: document {} has no choices",
                    config.name, d.id
                )));
            }
            if generative && !matches!(d.target, Target::Text(_)) {
                return Err(Error::config(format!(
                    "task {}: document {} has no reference text",
                    config.name, d.id
                )));
            }
            if matches!(scoring, Scoring::Mc2(_)) && d.labels.len() != d.choices.len() {
                return Err(Error::config(format!(
                    "task {}: document {} has {} labels for {} choices",
                    config.name,
                    d.id,
                    d.labels.len(),
                    d.choices.len()
                )));
            }
        }
        Ok(Self { config, docs, pool: fewshot_pool, scoring, source: String::new() })
    }

    /// Records where the data came from (shown in results).
    pub fn with_source(mut self, source: impl Into<String>) -> Self {
        self.source = source.into();
        self
    }

    /// Where the data came from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The task's name.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// The configuration.
    pub fn config(&self) -> &TaskConfig {
        &self.config
    }

    /// Changes the number of shots.
    ///
    /// # Errors
    /// As [`Task::new`], when the pool is too small.
    pub fn with_num_fewshot(mut self, k: usize) -> Result<Self> {
        self.config.num_fewshot = k;
        Self::new(self.config, self.docs, self.pool, self.scoring)
            .map(|t| t.with_source(self.source))
    }

    /// Evaluates only a prefix of the documents.
    pub fn with_limit(mut self, limit: Option<Limit>) -> Self {
        self.config.limit = limit;
        self
    }

    /// Evaluates only the documents at these indices into [`Task::docs`] (`None`: all, subject
    /// to the limit), as lm-eval's `--samples` does: in document order, each once, the limit
    /// ignored. Shots are drawn as for any run: one draw per evaluated document, in evaluation
    /// order, so a document's shots depend on the documents evaluated before it (as in
    /// lm-eval).
    ///
    /// ```
    /// let task = eai_eval::bundled::arc_easy()?.with_doc_indices(Some(vec![7, 2, 7]))?;
    /// let picked: Vec<&str> = task.eval_docs().iter().map(|d| d.id.as_str()).collect();
    /// assert_eq!(picked.len(), 2);
    /// assert_eq!(task.eval_docs()[0], &task.docs()[2]);
    /// assert!(eai_eval::bundled::arc_easy()?.with_doc_indices(Some(vec![40])).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Config`] when an index is not below `docs().len()`.
    pub fn with_doc_indices(mut self, indices: Option<Vec<usize>>) -> Result<Self> {
        self.config.doc_indices = indices;
        Self::new(self.config, self.docs, self.pool, self.scoring)
            .map(|t| t.with_source(self.source))
    }

    /// Switches the Leaderboard-v1 document shuffle on (`Some(42)` reproduces it) or off.
    pub fn with_legacy_shuffle(mut self, seed: Option<i64>) -> Self {
        self.config.legacy_shuffle_seed = seed;
        self
    }

    /// Changes the few-shot seed (random sampler only).
    pub fn with_fewshot_seed(mut self, seed: i64) -> Self {
        if let Sampler::Random { seed: s } = &mut self.config.sampler {
            *s = seed;
        }
        self
    }

    /// All evaluation documents (before the limit).
    pub fn docs(&self) -> &[Doc] {
        &self.docs
    }

    /// The documents that will be evaluated, in evaluation order (after shuffling, if the
    /// Leaderboard-v1 mode is on, and the limit).
    pub fn eval_docs(&self) -> Vec<&Doc> {
        self.eval_order().0.into_iter().map(|i| &self.docs[i]).collect()
    }

    /// Evaluation order as indices into [`Task::docs`], and the generator for the shots.
    fn eval_order(&self) -> (Vec<usize>, Option<PyRandom>) {
        let n = self.docs.len();
        let mut order: Vec<usize> = (0..n).collect();
        let selected = self.config.doc_indices.as_ref().map(|ix| {
            let mut keep = vec![false; n];
            for &i in ix.iter().filter(|&&i| i < n) {
                keep[i] = true;
            }
            keep
        });
        let rng = match (self.config.legacy_shuffle_seed, self.config.sampler) {
            (Some(seed), _) => {
                let mut r = PyRandom::new(seed);
                r.shuffle(&mut order);
                if let Some(keep) = &selected {
                    order.retain(|&i| keep[i]);
                } else {
                    let keep = match self.config.limit {
                        Some(Limit::Fraction(f)) if f < 1.0 => (n as f64 * f) as usize,
                        Some(l) => l.apply(n),
                        None => n,
                    };
                    order.truncate(keep);
                }
                Some(r)
            }
            (None, sampler) => {
                match &selected {
                    Some(keep) => order.retain(|&i| keep[i]),
                    None => order.truncate(self.config.limit.map_or(n, |l| l.apply(n))),
                }
                match sampler {
                    Sampler::Random { seed } => Some(PyRandom::new(seed)),
                    Sampler::FirstN => None,
                }
            }
        };
        let rng = if matches!(self.config.sampler, Sampler::FirstN) { None } else { rng };
        (order, rng)
    }

    /// The few-shot pool.
    pub fn fewshot_pool(&self) -> &[Doc] {
        &self.pool
    }

    /// The scoring rule.
    pub fn scoring(&self) -> &Scoring {
        &self.scoring
    }

    /// Renders every evaluated document's context, drawing shots exactly as lm-eval does: one
    /// generator per call (seeded anew, like `set_fewshot_seed` before `build_all_requests`),
    /// one draw per document in evaluation order.
    ///
    /// # Errors
    /// [`Error::Config`] when the pool cannot supply the shots.
    pub fn contexts(&self) -> Result<Vec<String>> {
        Ok(self.rendered()?.into_iter().map(|(c, _)| c).collect())
    }

    /// Every evaluated document's context and the pool indices of its shots.
    fn rendered(&self) -> Result<Vec<(String, Vec<usize>)>> {
        let (order, mut rng) = self.eval_order();
        order.into_iter().map(|i| self.render(&self.docs[i], rng.as_mut())).collect()
    }

    /// A task that evaluates nothing is an error, never an empty table that reads as a result.
    fn check_not_empty(&self, kept: usize) -> Result<()> {
        if kept > 0 {
            return Ok(());
        }
        let task = self.config.name.clone();
        let source =
            if self.source.is_empty() { String::new() } else { format!(" ({})", self.source) };
        let reason = match self.config.limit {
            _ if self.config.doc_indices.as_ref().is_some_and(Vec::is_empty) => {
                "its document selection is empty".to_owned()
            }
            Some(l) if !self.docs.is_empty() => {
                format!("the limit {l:?} keeps none of its {} documents", self.docs.len())
            }
            _ => format!("its data holds no documents{source}"),
        };
        Err(Error::NoDocuments { task, reason })
    }

    /// The shots for `doc`, as indices into the pool.
    fn shots(&self, doc: &Doc, rng: Option<&mut PyRandom>) -> Result<Vec<usize>> {
        let k = self.config.num_fewshot;
        if k == 0 {
            return Ok(Vec::new());
        }
        let exclude = self.config.exclude_eval_doc && self.config.legacy_shuffle_seed.is_none();
        match rng {
            Some(rng) => {
                let draw = if exclude { k + 1 } else { k };
                let idx = rng.sample_indices(self.pool.len(), draw)?;
                Ok(if exclude {
                    idx.into_iter().filter(|&i| self.pool[i] != *doc).take(k).collect()
                } else {
                    idx
                })
            }
            None => {
                let picked: Vec<usize> = (0..self.pool.len())
                    .filter(|&i| !exclude || self.pool[i] != *doc)
                    .take(k)
                    .collect();
                if picked.len() < k {
                    return Err(Error::config(format!(
                        "task {}: {k} shots requested, {} available",
                        self.config.name,
                        picked.len()
                    )));
                }
                Ok(picked)
            }
        }
    }

    fn render(&self, doc: &Doc, rng: Option<&mut PyRandom>) -> Result<(String, Vec<usize>)> {
        let c = &self.config;
        let mut out = String::new();
        out.push_str(&c.description);
        let shots = self.shots(doc, rng)?;
        for &i in &shots {
            let shot = &self.pool[i];
            let answer = shot.answer_text().unwrap_or_default();
            out.push_str(&shot.text);
            out.push_str(&c.target_delimiter);
            out.push_str(answer);
            out.push_str(&c.fewshot_delimiter);
        }
        out.push_str(&doc.text);
        Ok((out, shots))
    }

    /// Builds every evaluated document's context and requests, recording which few-shot
    /// examples each context holds ([`Instance::fewshot`]).
    ///
    /// Multiple choice: `(context, target_delimiter + choice)` per choice. Generation: one
    /// request with the task's stop strings and token limit. Perplexity: one rolling request
    /// over the target text.
    ///
    /// # Errors
    /// As [`Task::contexts`].
    pub fn instances(&self) -> Result<Vec<Instance>> {
        let contexts = self.rendered()?;
        let (order, _) = self.eval_order();
        self.check_not_empty(order.len())?;
        Ok(contexts
            .into_iter()
            .zip(order)
            .enumerate()
            .map(|(doc_index, ((context, fewshot), doc_i))| {
                let doc = &self.docs[doc_i];
                let requests = match self.scoring {
                    Scoring::Perplexity => DocRequests::Rolling(RollingRequest::new(
                        doc.answer_text().unwrap_or_default(),
                    )),
                    Scoring::Generate { .. } => DocRequests::Generate(
                        GenerateRequest::new(context.clone(), self.config.until.clone())
                            .max_gen_toks(self.config.max_gen_toks),
                    ),
                    _ => DocRequests::Loglikelihood(
                        doc.choices
                            .iter()
                            .map(|ch| {
                                LoglikelihoodRequest::new(
                                    context.clone(),
                                    format!("{}{ch}", self.config.target_delimiter),
                                )
                            })
                            .collect(),
                    ),
                };
                Instance { doc_index, doc: doc_i, context, fewshot, requests }
            })
            .collect())
    }
}

/// lm-eval's split of a request into context and continuation before tokenization: trailing
/// whitespace (Python's `str.isspace` set) moves from the end of the context to the front of
/// the continuation. Engines that tokenize call this first, then encode `context + continuation`
/// and `context`, and take the continuation as the tokens past `len(encode(context))`.
///
/// ```
/// let (ctx, cont) = eai_eval::split_whitespace("Roof: foo bar ", " is here.");
/// assert_eq!((ctx, cont.as_str()), ("Roof: foo bar", "  is here."));
/// ```
pub fn split_whitespace<'a>(context: &'a str, continuation: &str) -> (&'a str, String) {
    let trimmed = crate::text::py_rstrip(context);
    let moved = &context[trimmed.len()..];
    (trimmed, format!("{moved}{continuation}"))
}
