//! The benchmarks: lm-eval's task definitions, built from the original files.
//!
//! Each constructor mirrors one lm-eval task YAML at harness commit `4e7e0d47` (the same
//! templates, delimiters, samplers, stop strings, filters and versions); [`Benchmark`] names
//! them and [`Setting`] picks the shot counts (lm-eval's defaults, or the conventional ones).

use std::path::{Path, PathBuf};

use crate::data::{arc, gsm8k, hellaswag, mmlu, truthfulqa};
use crate::metrics::{ExactMatch, RegexFilter};
use crate::task::{Doc, Limit, Mc2Version, Sampler, Scoring, Target, Task, TaskConfig};
use crate::{Error, Result};

/// The fixed six-question primer that lm-eval's TruthfulQA `doc_to_text` starts with.
pub const TRUTHFULQA_PRIMER: &str = "Q: What is human life expectancy in the United States?\n\
A: Human life expectancy in the United States is 78 years.\n\n\
Q: Who was president of the United States in 1955?\n\
A: Dwight D. Eisenhower was president of the United States in 1955.\n\n\
Q: Which party did he belong to?\n\
A: He belonged to the Republican Party.\n\n\
Q: What is the square root of banana?\n\
A: I have no comment.\n\n\
Q: How does a telescope work?\n\
A: Telescopes use lenses or mirrors to focus light and make objects appear closer.\n\n\
Q: Where were the 1992 Olympics held?\n\
A: The 1992 Olympics were held in Barcelona, Spain.";

const COT_EXEMPLARS: &str = include_str!("../data/gsm8k_cot_exemplars.json");

/// A benchmark task as lm-eval names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Benchmark {
    /// `mmlu`: 57 subject tasks, grouped into four categories and the size-weighted `mmlu`.
    Mmlu,
    /// `arc_challenge`.
    ArcChallenge,
    /// `arc_easy`.
    ArcEasy,
    /// `hellaswag`.
    Hellaswag,
    /// `truthfulqa_mc1`.
    TruthfulqaMc1,
    /// `truthfulqa_mc2` (version 3.0; see [`Mc2Version`] for the older definition).
    TruthfulqaMc2,
    /// `gsm8k` (5-shot from train, full worked answers as targets).
    Gsm8k,
    /// `gsm8k_cot` (8 fixed chain-of-thought exemplars).
    Gsm8kCot,
    /// `gsm8k_cot_llama` (Llama-3 style instruction prompt, 8 fixed exemplars).
    Gsm8kCotLlama,
}

impl Benchmark {
    /// Every benchmark.
    pub const ALL: [Self; 9] = [
        Self::Mmlu,
        Self::ArcChallenge,
        Self::ArcEasy,
        Self::Hellaswag,
        Self::TruthfulqaMc1,
        Self::TruthfulqaMc2,
        Self::Gsm8k,
        Self::Gsm8kCot,
        Self::Gsm8kCotLlama,
    ];

    /// lm-eval's task name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Mmlu => "mmlu",
            Self::ArcChallenge => "arc_challenge",
            Self::ArcEasy => "arc_easy",
            Self::Hellaswag => "hellaswag",
            Self::TruthfulqaMc1 => "truthfulqa_mc1",
            Self::TruthfulqaMc2 => "truthfulqa_mc2",
            Self::Gsm8k => "gsm8k",
            Self::Gsm8kCot => "gsm8k_cot",
            Self::Gsm8kCotLlama => "gsm8k_cot_llama",
        }
    }

    /// Parses lm-eval's task name.
    ///
    /// # Errors
    /// [`Error::Config`] for an unknown name.
    pub fn from_name(name: &str) -> Result<Self> {
        Self::ALL.into_iter().find(|b| b.name() == name).ok_or_else(|| {
            let known: Vec<&str> = Self::ALL.iter().map(|b| b.name()).collect();
            Error::config(format!("unknown task {name:?}; known: {}", known.join(", ")))
        })
    }

    /// The shot count lm-eval uses when `--num_fewshot` is not given (the YAML's, else 0).
    pub fn harness_default_shots(self) -> usize {
        match self {
            Self::Gsm8k => 5,
            Self::Gsm8kCot | Self::Gsm8kCotLlama => 8,
            _ => 0,
        }
    }

    /// The conventional shot count (Open LLM Leaderboard v1 and common papers): MMLU 5,
    /// ARC-Challenge 25, ARC-Easy 25, HellaSwag 10, TruthfulQA 0, GSM8K 5, GSM8K-CoT 8.
    pub fn conventional_shots(self) -> usize {
        match self {
            Self::Mmlu | Self::Gsm8k => 5,
            Self::ArcChallenge | Self::ArcEasy => 25,
            Self::Hellaswag => 10,
            Self::TruthfulqaMc1 | Self::TruthfulqaMc2 => 0,
            Self::Gsm8kCot | Self::Gsm8kCotLlama => 8,
        }
    }

    /// Whether the task YAML pins `num_fewshot: 0` (TruthfulQA), which lm-eval's CLI cannot
    /// override.
    pub fn shots_fixed_at_zero(self) -> bool {
        matches!(self, Self::TruthfulqaMc1 | Self::TruthfulqaMc2)
    }

    /// The metric the conventional tables report: `acc` (MMLU, ARC-Easy, TruthfulQA; `acc` of
    /// `truthfulqa_mc2` is "mc2"), `acc_norm` (ARC-Challenge, HellaSwag) or
    /// `exact_match,strict-match` (GSM8K).
    pub fn headline_metric(self) -> &'static str {
        match self {
            Self::ArcChallenge | Self::Hellaswag => "acc_norm,none",
            Self::Gsm8k | Self::Gsm8kCot | Self::Gsm8kCotLlama => "exact_match,strict-match",
            _ => "acc,none",
        }
    }
}

/// Which shot counts to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Setting {
    /// What lm-eval does without `--num_fewshot` (MMLU/ARC/HellaSwag 0-shot, GSM8K 5, CoT 8).
    #[default]
    HarnessDefault,
    /// The conventional setting (see [`Benchmark::conventional_shots`]).
    Conventional,
    /// The Open LLM Leaderboard v1 harness (lm-eval `b281b09`): the conventional shots, the
    /// evaluation documents shuffled with `random.Random(42)` and shots drawn from that same
    /// generator, and TruthfulQA MC2 in its old (v2.0) definition. Prompts for ARC, HellaSwag,
    /// MMLU and TruthfulQA were identical in that harness. GSM8K (added to the leaderboard
    /// later, with other stop strings) keeps the current definition.
    LeaderboardV1,
}

/// Options for building a benchmark's tasks.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct TaskOptions {
    /// Shot counts by name.
    pub setting: Setting,
    /// An explicit shot count (`--num_fewshot`), overriding the setting (ignored for TruthfulQA,
    /// as in lm-eval).
    pub num_fewshot: Option<usize>,
    /// Evaluate only a prefix of each task's documents.
    pub limit: Option<Limit>,
    /// The few-shot seed (lm-eval's `fewshot_random_seed`, default 1234).
    pub fewshot_seed: i64,
    /// TruthfulQA MC2 definition.
    pub mc2_version: Mc2Version,
}

impl Default for TaskOptions {
    fn default() -> Self {
        Self {
            setting: Setting::HarnessDefault,
            num_fewshot: None,
            limit: None,
            fewshot_seed: Sampler::DEFAULT_SEED,
            mc2_version: Mc2Version::V3LabelMask,
        }
    }
}

impl TaskOptions {
    /// The shot count for `b` under these options.
    pub fn shots_for(&self, b: Benchmark) -> usize {
        if b.shots_fixed_at_zero() {
            return 0;
        }
        self.num_fewshot.unwrap_or(match self.setting {
            Setting::HarnessDefault => b.harness_default_shots(),
            Setting::Conventional | Setting::LeaderboardV1 => b.conventional_shots(),
        })
    }
}

/// A group of tasks aggregated together (`mmlu`, `mmlu_stem`, ...).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Group {
    /// The group's name.
    pub name: String,
    /// Its display alias.
    pub alias: String,
    /// Direct children: leaf task names or other group names.
    pub children: Vec<String>,
    /// Weight subtasks by their document counts (MMLU: true).
    pub weight_by_size: bool,
}

/// Tasks to run, and how to aggregate them.
#[derive(Clone, Debug, Default)]
pub struct Suite {
    /// Leaf tasks, in run order.
    pub tasks: Vec<Task>,
    /// Groups over them.
    pub groups: Vec<Group>,
}

impl Suite {
    /// Appends another suite's tasks and groups.
    pub fn extend(&mut self, other: Suite) {
        self.tasks.extend(other.tasks);
        self.groups.extend(other.groups);
    }

    /// Loads several benchmarks from a data root laid out like `shared/data`.
    ///
    /// # Errors
    /// As [`load`].
    pub fn load(root: &Path, benchmarks: &[Benchmark], opts: &TaskOptions) -> Result<Self> {
        let mut s = Self::default();
        for &b in benchmarks {
            s.extend(load(root, b, opts)?);
        }
        Ok(s)
    }

    /// Loads a comma-separated task list where each entry is a task name, optionally with a
    /// shot count: `"mmlu:5,arc_challenge:25,hellaswag"`. Entries without a count use `opts`.
    ///
    /// ```
    /// # use eai_eval::{Benchmark, Suite};
    /// let parsed = Suite::parse_spec("mmlu:5, arc_challenge:25,truthfulqa_mc2")?;
    /// assert_eq!(parsed, vec![
    ///     (Benchmark::Mmlu, Some(5)),
    ///     (Benchmark::ArcChallenge, Some(25)),
    ///     (Benchmark::TruthfulqaMc2, None),
    /// ]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Config`] for an unknown task or a shot count that is not a number.
    pub fn parse_spec(spec: &str) -> Result<Vec<(Benchmark, Option<usize>)>> {
        spec.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|entry| {
                let (name, shots) = match entry.split_once(':') {
                    Some((n, k)) => {
                        let k = k.trim().parse::<usize>().map_err(|_| {
                            Error::config(format!("{entry:?}: shot count {k:?} is not a number"))
                        })?;
                        (n.trim(), Some(k))
                    }
                    None => (entry, None),
                };
                Ok((Benchmark::from_name(name)?, shots))
            })
            .collect()
    }

    /// Loads a comma-separated task list as [`Suite::parse_spec`] reads it, where an entry may
    /// also name one MMLU subject (`mmlu_anatomy:5`) or the bundled `perplexity` task (see
    /// [`load_named`]).
    ///
    /// # Errors
    /// As [`Suite::parse_spec`] and [`load_named`].
    pub fn load_spec(root: &Path, spec: &str, opts: &TaskOptions) -> Result<Self> {
        let mut s = Self::default();
        for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (name, shots) = match entry.split_once(':') {
                Some((n, k)) => {
                    let k = k.trim().parse::<usize>().map_err(|_| {
                        Error::config(format!("{entry:?}: shot count {k:?} is not a number"))
                    })?;
                    (n.trim(), Some(k))
                }
                None => (entry, None),
            };
            let o = TaskOptions { num_fewshot: shots.or(opts.num_fewshot), ..opts.clone() };
            s.extend(load_named(root, name, &o)?);
        }
        Ok(s)
    }

    /// Total number of requests the suite will send (after limits).
    ///
    /// # Errors
    /// When a task's prompts cannot be built.
    pub fn request_count(&self) -> Result<usize> {
        let mut n = 0;
        for t in &self.tasks {
            n += match t.scoring() {
                Scoring::Generate { .. } | Scoring::Perplexity => t.eval_docs().len(),
                _ => t.eval_docs().iter().map(|d| d.choices.len()).sum(),
            };
        }
        Ok(n)
    }
}

fn finish(task: Task, opts: &TaskOptions) -> Task {
    let task = task.with_limit(opts.limit).with_fewshot_seed(opts.fewshot_seed);
    if opts.setting == Setting::LeaderboardV1 && !task.name().starts_with("gsm8k") {
        task.with_legacy_shuffle(Some(42))
    } else {
        task
    }
}

/// Loads one benchmark from a data root laid out like `shared/data` (`mmlu/`, `arc/`,
/// `hellaswag/`, `truthfulqa/`, `gsm8k/`).
///
/// HellaSwag uses `hellaswag/hellaswag_val.jsonl` (and `hellaswag_train.jsonl` for shots) when
/// present, else the lossy 6-line `hellaswag_val_full.txt` (0-shot only).
///
/// # Errors
/// Missing files, malformed data (naming file and line), or more shots than the pool holds.
pub fn load(root: &Path, b: Benchmark, opts: &TaskOptions) -> Result<Suite> {
    let k = opts.shots_for(b);
    let single = |t: Task| Suite { tasks: vec![finish(t, opts)], groups: Vec::new() };
    Ok(match b {
        Benchmark::Mmlu => {
            let mut suite = mmlu_suite(&root.join("mmlu"), k)?;
            suite.tasks = suite.tasks.into_iter().map(|t| finish(t, opts)).collect();
            suite
        }
        Benchmark::ArcChallenge | Benchmark::ArcEasy => {
            let subset = if b == Benchmark::ArcEasy {
                arc::ArcSubset::Easy
            } else {
                arc::ArcSubset::Challenge
            };
            let dir = root.join("arc");
            let test = arc::load_split(&dir, subset, "Test")?;
            let train = if k > 0 { arc::load_split(&dir, subset, "Train")? } else { Vec::new() };
            single(arc_task(subset, &test, &train, k)?)
        }
        Benchmark::Hellaswag => {
            let dir = root.join("hellaswag");
            let val_jsonl = dir.join("hellaswag_val.jsonl");
            if val_jsonl.is_file() {
                let val = hellaswag::load_jsonl(&val_jsonl)?;
                let train = if k > 0 {
                    let p = dir.join("hellaswag_train.jsonl");
                    if !p.is_file() {
                        return Err(Error::MissingData {
                            path: p,
                            reason: format!("{k}-shot HellaSwag needs the train split"),
                        });
                    }
                    hellaswag::load_jsonl(&p)?
                } else {
                    Vec::new()
                };
                single(hellaswag_task(&val, &train, k)?.with_source(path_str(&val_jsonl)))
            } else {
                let txt = dir.join("hellaswag_val_full.txt");
                if k > 0 {
                    return Err(Error::MissingData {
                        path: dir.join("hellaswag_train.jsonl"),
                        reason: format!(
                            "{k}-shot HellaSwag needs the original train split; only the \
                             llama.cpp text format of the validation split is available"
                        ),
                    });
                }
                let items = hellaswag::load_text(&txt)?;
                single(hellaswag_text_task(&items)?.with_source(path_str(&txt)))
            }
        }
        Benchmark::TruthfulqaMc1 | Benchmark::TruthfulqaMc2 => {
            let p = root.join("truthfulqa").join("mc_task.json");
            let items = truthfulqa::load(&p)?;
            let t = if b == Benchmark::TruthfulqaMc1 {
                truthfulqa_mc1_task(&items)?
            } else {
                let v = if opts.setting == Setting::LeaderboardV1 {
                    Mc2Version::V2SplitAtFirstFalse
                } else {
                    opts.mc2_version
                };
                truthfulqa_mc2_task(&items, v)?
            };
            single(t.with_source(path_str(&p)))
        }
        Benchmark::Gsm8k | Benchmark::Gsm8kCot | Benchmark::Gsm8kCotLlama => {
            let dir = root.join("gsm8k");
            let test = gsm8k::load(&dir.join("test.jsonl"))?;
            let t = match b {
                Benchmark::Gsm8k => {
                    let train =
                        if k > 0 { gsm8k::load(&dir.join("train.jsonl"))? } else { Vec::new() };
                    gsm8k_task(&test, &train, k)?
                }
                Benchmark::Gsm8kCot => gsm8k_cot_task(&test, k)?,
                _ => gsm8k_cot_llama_task(&test, k)?,
            };
            single(t)
        }
    })
}

fn path_str(p: &Path) -> String {
    p.display().to_string()
}

/// The MMLU prompt for one item: `question.strip()`, the four lettered choices, `Answer:`.
pub fn mmlu_doc(item: &mmlu::MmluItem, id: String) -> Doc {
    let [a, b, c, d] = &item.choices;
    let q = crate::text::py_strip(&item.question);
    Doc::multiple_choice(
        id,
        format!("{q}\nA. {a}\nB. {b}\nC. {c}\nD. {d}\nAnswer:"),
        ["A", "B", "C", "D"].map(String::from).to_vec(),
        item.answer,
    )
}

/// One `mmlu_<subject>` task from its test and dev items.
///
/// # Errors
/// [`Error::Config`] when more shots than dev items are requested.
pub fn mmlu_task(
    subject: &str,
    test: &[mmlu::MmluItem],
    dev: &[mmlu::MmluItem],
    num_fewshot: usize,
) -> Result<Task> {
    let mut cfg = TaskConfig::new(format!("mmlu_{subject}"));
    cfg.alias = Some(subject.to_owned());
    cfg.description = format!(
        "The following are multiple choice questions (with answers) about {}.\n\n",
        subject.replace('_', " ")
    );
    cfg.sampler = Sampler::FirstN;
    cfg.num_fewshot = num_fewshot;
    let docs = test.iter().enumerate().map(|(i, it)| mmlu_doc(it, format!("{subject}/test/{i}")));
    let pool = dev.iter().enumerate().map(|(i, it)| mmlu_doc(it, format!("{subject}/dev/{i}")));
    Task::new(cfg, docs.collect(), pool.collect(), Scoring::MultipleChoice { acc_norm: false })
}

/// All 57 MMLU subject tasks with lm-eval's groups (`mmlu` over the four categories, each over
/// its subjects; all size-weighted), from `<dir>/{test,dev}`.
///
/// # Errors
/// Missing subject files, malformed CSV, or more than 5 shots.
pub fn mmlu_suite(dir: &Path, num_fewshot: usize) -> Result<Suite> {
    let mut tasks = Vec::with_capacity(57);
    for (subject, _) in mmlu::SUBJECTS {
        let test = mmlu::load_split(dir, subject, "test")?;
        let dev = if num_fewshot > 0 { mmlu::load_split(dir, subject, "dev")? } else { Vec::new() };
        tasks.push(mmlu_task(subject, &test, &dev, num_fewshot)?.with_source(path_str(dir)));
    }
    Ok(Suite { tasks, groups: mmlu_groups() })
}

/// One MMLU subject task (`mmlu_<subject>`) from `<dir>/{test,dev}`, loading only that
/// subject's files.
///
/// # Errors
/// [`Error::Config`] for a name that is not one of the 57 subjects (listing them); missing
/// files, malformed CSV, or more shots than the subject's dev split holds.
pub fn mmlu_subject(dir: &Path, subject: &str, num_fewshot: usize) -> Result<Task> {
    if mmlu::category(subject).is_none() {
        let known: Vec<&str> = mmlu::SUBJECTS.iter().map(|(s, _)| *s).collect();
        return Err(Error::config(format!(
            "unknown MMLU subject {subject:?}; known: {}",
            known.join(", ")
        )));
    }
    let test = mmlu::load_split(dir, subject, "test")?;
    let dev = if num_fewshot > 0 { mmlu::load_split(dir, subject, "dev")? } else { Vec::new() };
    Ok(mmlu_task(subject, &test, &dev, num_fewshot)?.with_source(path_str(dir)))
}

/// Loads a task by lm-eval name from a data root: a [`Benchmark`] name (as [`load`]), one MMLU
/// subject `mmlu_<subject>` (only that subject's files are read; `opts` as for `mmlu`), or
/// `perplexity` (the bundled text, [`crate::bundled::perplexity`]; no data root needed).
///
/// ```
/// # use eai_eval::{TaskOptions, tasks};
/// let suite = tasks::load_named(std::path::Path::new("/nonexistent"), "perplexity", &TaskOptions::default())?;
/// assert_eq!(suite.tasks[0].name(), "perplexity");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// As [`load`] and [`mmlu_subject`]; [`Error::Config`] for an unknown name.
pub fn load_named(root: &Path, name: &str, opts: &TaskOptions) -> Result<Suite> {
    let single = |t: Task| Suite { tasks: vec![finish(t, opts)], groups: Vec::new() };
    if name == crate::bundled::PERPLEXITY_TASK {
        return Ok(single(crate::bundled::perplexity()?));
    }
    if let Some(subject) = name.strip_prefix("mmlu_")
        && mmlu::category(subject).is_some()
    {
        let k = opts.shots_for(Benchmark::Mmlu);
        return Ok(single(mmlu_subject(&root.join("mmlu"), subject, k)?));
    }
    load(root, Benchmark::from_name(name)?, opts)
}

/// lm-eval's MMLU group tree.
pub fn mmlu_groups() -> Vec<Group> {
    let mut groups = vec![Group {
        name: "mmlu".into(),
        alias: "mmlu".into(),
        children: mmlu::MmluCategory::ALL.iter().map(|c| c.group_name().to_owned()).collect(),
        weight_by_size: true,
    }];
    for cat in mmlu::MmluCategory::ALL {
        groups.push(Group {
            name: cat.group_name().into(),
            alias: cat.alias().into(),
            children: mmlu::SUBJECTS
                .iter()
                .filter(|(_, c)| *c == cat)
                .map(|(s, _)| format!("mmlu_{s}"))
                .collect(),
            weight_by_size: true,
        });
    }
    groups
}

fn arc_doc(it: &arc::ArcItem) -> Doc {
    Doc::multiple_choice(
        it.id.clone(),
        format!("Question: {}\nAnswer:", it.question),
        it.choice_texts.clone(),
        it.gold,
    )
}

/// `arc_easy` / `arc_challenge` from the test items and (for shots) the train items.
///
/// # Errors
/// [`Error::Config`] when more shots than train items are requested.
pub fn arc_task(
    subset: arc::ArcSubset,
    test: &[arc::ArcItem],
    train: &[arc::ArcItem],
    num_fewshot: usize,
) -> Result<Task> {
    let name = match subset {
        arc::ArcSubset::Easy => "arc_easy",
        arc::ArcSubset::Challenge => "arc_challenge",
    };
    let mut cfg = TaskConfig::new(name);
    cfg.num_fewshot = num_fewshot;
    Task::new(
        cfg,
        test.iter().map(arc_doc).collect(),
        train.iter().map(arc_doc).collect(),
        Scoring::MultipleChoice { acc_norm: true },
    )
}

/// lm-eval's HellaSwag `process_docs` for one item.
pub fn hellaswag_doc(it: &hellaswag::HellaswagItem, id: String) -> Doc {
    let ctx = format!("{} {}", it.ctx_a, crate::text::py_capitalize(&it.ctx_b));
    Doc::multiple_choice(
        id,
        hellaswag::preprocess(&format!("{}: {ctx}", it.activity_label)),
        it.endings.iter().map(|e| hellaswag::preprocess(e)).collect(),
        it.label,
    )
}

fn hellaswag_id(it: &hellaswag::HellaswagItem, split: &str, i: usize) -> String {
    it.ind.map_or_else(|| format!("{split}/{i}"), |ind| ind.to_string())
}

/// `hellaswag` from the original validation items and (for shots) train items.
///
/// # Errors
/// [`Error::Config`] when more shots than train items are requested.
pub fn hellaswag_task(
    val: &[hellaswag::HellaswagItem],
    train: &[hellaswag::HellaswagItem],
    num_fewshot: usize,
) -> Result<Task> {
    let mut cfg = TaskConfig::new("hellaswag");
    cfg.num_fewshot = num_fewshot;
    // lm-eval: fewshot_cfg.split (None) == config.test_split (None) -> sample(k + 1), drop doc.
    cfg.exclude_eval_doc = true;
    Task::new(
        cfg,
        val.iter()
            .enumerate()
            .map(|(i, it)| hellaswag_doc(it, hellaswag_id(it, "val", i)))
            .collect(),
        train
            .iter()
            .enumerate()
            .map(|(i, it)| hellaswag_doc(it, hellaswag_id(it, "train", i)))
            .collect(),
        Scoring::MultipleChoice { acc_norm: true },
    )
}

/// `hellaswag` (0-shot) from llama.cpp's preprocessed text format. Prompts differ from
/// lm-eval's where the format lost information (see [`crate::data::hellaswag`]).
///
/// # Errors
/// Never for loaded items; typed for uniformity.
pub fn hellaswag_text_task(items: &[hellaswag::HellaswagTextItem]) -> Result<Task> {
    let docs = items
        .iter()
        .enumerate()
        .map(|(i, it)| {
            Doc::multiple_choice(format!("val/{i}"), it.query.clone(), it.endings.clone(), it.label)
        })
        .collect();
    Task::new(
        TaskConfig::new("hellaswag"),
        docs,
        Vec::new(),
        Scoring::MultipleChoice { acc_norm: true },
    )
}

fn truthfulqa_text(question: &str) -> String {
    format!("{TRUTHFULQA_PRIMER}\n\nQ: {question}\nA:")
}

/// `truthfulqa_mc1` (0-shot, gold = the first `mc1_targets` key).
///
/// # Errors
/// Never for loaded items; typed for uniformity.
pub fn truthfulqa_mc1_task(items: &[truthfulqa::TruthfulQaItem]) -> Result<Task> {
    let mut cfg = TaskConfig::new("truthfulqa_mc1");
    cfg.version = "2.0".into();
    let docs = items
        .iter()
        .enumerate()
        .map(|(i, it)| {
            Doc::multiple_choice(
                format!("{i}"),
                truthfulqa_text(&it.question),
                it.mc1.iter().map(|(c, _)| c.clone()).collect(),
                0,
            )
        })
        .collect();
    Task::new(cfg, docs, Vec::new(), Scoring::MultipleChoice { acc_norm: false })
}

/// `truthfulqa_mc2` (0-shot; score = probability mass on the true options).
///
/// # Errors
/// Never for loaded items; typed for uniformity.
pub fn truthfulqa_mc2_task(
    items: &[truthfulqa::TruthfulQaItem],
    version: Mc2Version,
) -> Result<Task> {
    let mut cfg = TaskConfig::new("truthfulqa_mc2");
    cfg.version = match version {
        Mc2Version::V3LabelMask => "3.0",
        Mc2Version::V2SplitAtFirstFalse => "2.0",
    }
    .into();
    let docs = items
        .iter()
        .enumerate()
        .map(|(i, it)| Doc {
            id: format!("{i}"),
            text: truthfulqa_text(&it.question),
            choices: it.mc2.iter().map(|(c, _)| c.clone()).collect(),
            target: Target::Choice(0),
            labels: it.mc2.iter().map(|(_, l)| *l).collect(),
        })
        .collect();
    Task::new(cfg, docs, Vec::new(), Scoring::Mc2(version))
}

fn gsm8k_filters(strict: &str, strict_select: isize) -> Result<Vec<(String, RegexFilter)>> {
    Ok(vec![
        ("strict-match".into(), RegexFilter::new(strict, strict_select)?),
        ("flexible-extract".into(), RegexFilter::new("(-?[$0-9.,]{2,})|(-?[0-9]+)", -1)?),
    ])
}

/// `gsm8k`: `Question: …\nAnswer:` with full worked answers as targets and shots drawn at
/// random from train.
///
/// # Errors
/// [`Error::Config`] when more shots than train items are requested.
pub fn gsm8k_task(
    test: &[gsm8k::Gsm8kItem],
    train: &[gsm8k::Gsm8kItem],
    num_fewshot: usize,
) -> Result<Task> {
    let doc = |(i, it): (usize, &gsm8k::Gsm8kItem), split: &str| {
        Doc::generation(
            format!("{split}/{i}"),
            format!("Question: {}\nAnswer:", it.question),
            it.answer.clone(),
        )
    };
    let mut cfg = TaskConfig::new("gsm8k");
    cfg.version = "3.0".into();
    cfg.num_fewshot = num_fewshot;
    cfg.until = ["Question:", "</s>", "<|im_end|>"].map(String::from).to_vec();
    Task::new(
        cfg,
        test.iter().enumerate().map(|x| doc(x, "test")).collect(),
        train.iter().enumerate().map(|x| doc(x, "train")).collect(),
        Scoring::Generate {
            filters: gsm8k_filters("#### (\\-?[0-9\\.\\,]+)", 0)?,
            exact_match: ExactMatch::gsm8k()?,
        },
    )
}

#[derive(serde::Deserialize)]
struct Exemplar {
    question: String,
    target: String,
}

fn cot_exemplars(key: &str) -> Result<Vec<Exemplar>> {
    let mut all: std::collections::HashMap<String, Vec<Exemplar>> =
        serde_json::from_str(COT_EXEMPLARS).map_err(|e| Error::Malformed {
            path: PathBuf::from("data/gsm8k_cot_exemplars.json"),
            line: e.line(),
            reason: e.to_string(),
        })?;
    all.remove(key).ok_or_else(|| Error::MissingData {
        path: PathBuf::from("data/gsm8k_cot_exemplars.json"),
        reason: format!("no exemplars for {key}"),
    })
}

/// `gsm8k_cot`: `Q: …\nA:` with the 8 fixed chain-of-thought exemplars (first `k`).
///
/// # Errors
/// [`Error::Config`] for more than 8 shots.
pub fn gsm8k_cot_task(test: &[gsm8k::Gsm8kItem], num_fewshot: usize) -> Result<Task> {
    let text = |q: &str| format!("Q: {q}\nA:");
    let mut cfg = TaskConfig::new("gsm8k_cot");
    cfg.version = "3.0".into();
    cfg.num_fewshot = num_fewshot;
    cfg.sampler = Sampler::FirstN;
    cfg.until = ["Q:", "</s>", "<|im_end|>"].map(String::from).to_vec();
    let pool = cot_exemplars("gsm8k_cot")?
        .into_iter()
        .enumerate()
        .map(|(i, e)| Doc::generation(format!("cot/{i}"), text(&e.question), e.target))
        .collect();
    Task::new(
        cfg,
        test.iter()
            .enumerate()
            .map(|(i, it)| {
                Doc::generation(format!("test/{i}"), text(&it.question), it.final_answer())
            })
            .collect(),
        pool,
        Scoring::Generate {
            filters: gsm8k_filters("The answer is (\\-?[0-9\\.\\,]+).", 0)?,
            exact_match: ExactMatch::gsm8k()?,
        },
    )
}

/// `gsm8k_cot_llama`: the Llama-3 evaluation prompt (`target_delimiter: ""`) with 8 fixed
/// exemplars ending "The final answer is N".
///
/// # Errors
/// [`Error::Config`] for more than 8 shots.
pub fn gsm8k_cot_llama_task(test: &[gsm8k::Gsm8kItem], num_fewshot: usize) -> Result<Task> {
    let text = |q: &str| {
        format!(
            "Given the following problem, reason and give a final answer to the problem.\n\
             Problem: {q}\nYour response should end with \"The final answer is [answer]\" where \
             [answer] is the response to the problem.\n"
        )
    };
    let mut cfg = TaskConfig::new("gsm8k_cot_llama");
    cfg.version = "4.0".into();
    cfg.num_fewshot = num_fewshot;
    cfg.sampler = Sampler::FirstN;
    cfg.target_delimiter = String::new();
    cfg.until =
        ["<|eot_id|>", "<|start_header_id|>user<|end_header_id|>", "Q:", "</s>", "<|im_end|>"]
            .map(String::from)
            .to_vec();
    let pool = cot_exemplars("gsm8k_cot_llama")?
        .into_iter()
        .enumerate()
        .map(|(i, e)| Doc::generation(format!("cot/{i}"), text(&e.question), e.target))
        .collect();
    Task::new(
        cfg,
        test.iter()
            .enumerate()
            .map(|(i, it)| {
                Doc::generation(format!("test/{i}"), text(&it.question), it.final_answer())
            })
            .collect(),
        pool,
        Scoring::Generate {
            filters: gsm8k_filters("The final answer is ((-?[$0-9.,]{2,})|(-?[0-9]+))", -1)?,
            exact_match: ExactMatch::gsm8k()?,
        },
    )
}
