//! The command-line side of served models: `--endpoint` options for `eai eval` / `eai study`,
//! and `eai load` (energy per response under load).

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use eai_serve::{Arrival, Endpoint, GenerationRoute, LoadConfig, ServeOptions, Tokenization};

use eai_study::Scheme;
use eai_study::serve::{EndpointLoader, LoadStudy, ServerGpus};
use eai_study::{Error, Result};

/// Options for scoring an OpenAI-compatible server instead of a local model.
#[derive(Debug, Clone, Args, Default, serde::Serialize, serde::Deserialize)]
pub struct ServeArgs {
    /// Score an OpenAI-compatible server (vLLM, SGLang, TGI, llama.cpp) instead of `--model`:
    /// `URL`, or `LABEL=URL` where the label is the scheme of that deployment (`fp16`, `bf16`,
    /// `int8`, `dynamic`, …). Repeat in `eai study` to compare deployments.
    #[arg(long = "endpoint", value_name = "[LABEL=]URL")]
    pub endpoints: Vec<String>,
    /// The model name the server serves (`GET /v1/models`).
    #[arg(long, value_name = "NAME")]
    pub served_model: Option<String>,
    /// The served model's tokenizer (a GGUF file, a `tokenizer.json` or its folder): the
    /// client tokenizes and sends token ids, as lm-eval does by default. Without it the server
    /// tokenizes the text and the context/continuation split is read from `text_offset`.
    #[arg(long, value_name = "PATH")]
    pub tokenizer: Option<PathBuf>,
    /// Environment variable holding the API key (sent as a bearer token).
    #[arg(long, value_name = "VAR")]
    pub api_key_env: Option<String>,
    /// HTTP requests in flight at once.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Prompts per scoring request (vLLM and SGLang accept lists; llama.cpp one).
    #[arg(long, default_value_t = 1)]
    pub prompts_per_request: usize,
    /// Longest prompt in tokens (left-truncated beyond, as lm-eval's API models do).
    #[arg(long, default_value_t = 2048)]
    pub max_length: usize,
    /// Whole-request timeout, seconds.
    #[arg(long, default_value_t = 600.0)]
    pub timeout: f64,
    /// Attempts per request (429, 5xx, timeouts and dropped connections are retried).
    #[arg(long, default_value_t = 3)]
    pub attempts: u32,
    /// Generate through `/v1/chat/completions` (the server's chat template) instead of
    /// `/v1/completions`.
    #[arg(long)]
    pub chat: bool,
}

fn secs(x: f64, field: &'static str) -> Result<Duration> {
    Duration::try_from_secs_f64(x)
        .map_err(|_| Error::Config { field, reason: format!("{x} is not a number of seconds") })
}

impl ServeArgs {
    /// Whether an endpoint was given.
    pub fn active(&self) -> bool {
        !self.endpoints.is_empty()
    }

    /// `(label, endpoint)` per `--endpoint`.
    ///
    /// # Errors
    /// [`Error::Config`] for a missing `--served-model`, an unset key variable, a bad URL.
    pub fn endpoints(&self) -> Result<Vec<(Option<String>, Endpoint)>> {
        let model = self.served_model.clone().ok_or_else(|| Error::Config {
            field: "--served-model",
            reason: "name the model the server serves (see GET /v1/models)".into(),
        })?;
        let key = match &self.api_key_env {
            Some(var) => Some(std::env::var(var).map_err(|_| Error::Config {
                field: "--api-key-env",
                reason: format!("the environment variable {var} is not set"),
            })?),
            None => None,
        };
        let timeout = secs(self.timeout, "--timeout")?;
        let mut out = Vec::new();
        for spec in &self.endpoints {
            let (label, url) = match spec.split_once('=') {
                Some((l, u)) if !l.contains('/') && !l.contains(':') => {
                    (Some(l.trim().to_string()), u)
                }
                _ => (None, spec.as_str()),
            };
            let mut ep = Endpoint::new(url, model.clone())
                .timeout(timeout)
                .retries(self.attempts, Duration::from_secs(1));
            if let Some(k) = &key {
                ep = ep.api_key(k.clone());
            }
            ep.validate()
                .map_err(|e| Error::Config { field: "--endpoint", reason: e.to_string() })?;
            out.push((label, ep));
        }
        Ok(out)
    }

    /// The request options (tokenizer loaded when given).
    ///
    /// # Errors
    /// [`Error::Config`] for an unreadable tokenizer.
    pub fn options(&self) -> Result<ServeOptions> {
        let tok = match &self.tokenizer {
            Some(p) => eai_study::serve::client_tokenization(eai_study::serve::load_tokenizer(p)?),
            None => Tokenization::Server,
        };
        let mut o = ServeOptions::new(tok);
        o.concurrency = self.concurrency.max(1);
        o.batch_size = self.prompts_per_request.max(1);
        o.max_length = self.max_length;
        if self.chat {
            o.generation = GenerationRoute::Chat;
        }
        Ok(o)
    }

    /// The model behind the single `--endpoint` of `eai eval`, and its label.
    ///
    /// # Errors
    /// As [`ServeArgs::endpoints`]; more than one endpoint.
    pub fn model(&self, scheme_label: &str) -> Result<(eai_serve::OpenAiModel, String)> {
        let mut eps = self.endpoints()?;
        if eps.len() != 1 {
            return Err(Error::Config {
                field: "--endpoint",
                reason: "`eai eval` scores one endpoint (compare several with `eai study`)".into(),
            });
        }
        let (label, ep) = eps.remove(0);
        let label = label.unwrap_or_else(|| scheme_label.to_string());
        let mut o = self.options()?;
        o.label = Some(label.clone());
        let m = eai_serve::OpenAiModel::new(ep, o)
            .map_err(|e| Error::Config { field: "--endpoint", reason: e.to_string() })?;
        Ok((m, label))
    }

    /// The study loader: one scheme per endpoint label (unlabelled endpoints take the schemes
    /// of `--schemes` in order).
    ///
    /// # Errors
    /// As [`ServeArgs::endpoints`]; a label that is not a scheme; duplicate schemes.
    pub fn loader(&self, fallback: &[Scheme]) -> Result<EndpointLoader> {
        let eps = self.endpoints()?;
        let mut pairs: Vec<(Scheme, Endpoint)> = Vec::new();
        for (i, (label, ep)) in eps.into_iter().enumerate() {
            let s = match label {
                Some(l) => l.parse::<Scheme>().map_err(|_| Error::Config {
                    field: "--endpoint",
                    reason: format!(
                        "label `{l}` is not a scheme ({}); a study compares deployments as schemes",
                        Scheme::ALL.iter().map(|s| s.label()).collect::<Vec<_>>().join(", ")
                    ),
                })?,
                None => *fallback.get(i).ok_or_else(|| Error::Config {
                    field: "--endpoint",
                    reason: "label each endpoint (`fp16=http://…`) or list as many --schemes"
                        .into(),
                })?,
            };
            if pairs.iter().any(|(x, _)| *x == s) {
                return Err(Error::Config {
                    field: "--endpoint",
                    reason: format!("two endpoints are labelled {}", s.label()),
                });
            }
            pairs.push((s, ep));
        }
        let name = self.served_model.clone().unwrap_or_default();
        Ok(EndpointLoader::new(name, pairs, self.options()?))
    }
}

/// `eai load`: energy per response of a served model under load.
#[derive(Debug, Clone, Args)]
pub struct LoadArgs {
    /// The server (root or `/v1` URL).
    #[arg(long)]
    pub endpoint: String,
    /// The model name the server serves.
    #[arg(long, value_name = "NAME")]
    pub served_model: String,
    /// Environment variable holding the API key.
    #[arg(long, value_name = "VAR")]
    pub api_key_env: Option<String>,
    /// Open loop: Poisson arrivals at these rates, requests/s (comma-separated levels).
    #[arg(long, value_name = "R[,R…]", conflicts_with = "clients")]
    pub rate: Option<String>,
    /// Closed loop: this many concurrent clients (comma-separated levels).
    #[arg(long, value_name = "N[,N…]")]
    pub clients: Option<String>,
    /// Prompts: a task (`arc_easy`, `gsm8k:100`, … as `--task`; with `--data` for the full
    /// sets) or a file with one prompt per line (`.txt`) or JSON lines with a `prompt` field.
    #[arg(long, default_value = "arc_easy")]
    pub prompts: String,
    /// A data root laid out like `shared/data` for task prompts.
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Output tokens per request (`max_tokens`).
    #[arg(long, default_value_t = 128)]
    pub max_tokens: usize,
    /// Ask the server to ignore end-of-sequence so every response is `--max-tokens` long (vLLM).
    #[arg(long)]
    pub ignore_eos: bool,
    /// Ramp-up excluded from the figures, seconds.
    #[arg(long, default_value_t = 10.0)]
    pub warmup: f64,
    /// The steady window measured, seconds (≥ 5 for NVML).
    #[arg(long, default_value_t = 30.0)]
    pub measure: f64,
    /// Idle baseline of the same GPUs before the load, seconds (0: none).
    #[arg(long, default_value_t = 10.0)]
    pub idle: f64,
    /// Pause between load levels, seconds.
    #[arg(long, default_value_t = 5.0)]
    pub pause: f64,
    /// The server's process id(s): only the GPUs running them (or their children) count.
    #[arg(long = "server-pid", value_name = "PID")]
    pub server_pids: Vec<u32>,
    /// The server's GPUs by UUID (its CUDA_VISIBLE_DEVICES), when its PIDs are not visible.
    #[arg(long = "server-gpu", value_name = "UUID")]
    pub server_gpus: Vec<String>,
    /// Generate through `/v1/chat/completions`.
    #[arg(long)]
    pub chat: bool,
    /// Replay a recorded power trace instead of reading sensors (labelled as replayed).
    #[arg(long, value_name = "TRACE")]
    pub replay: Option<PathBuf>,
    /// Measure no energy (latency and throughput only).
    #[arg(long, conflicts_with = "replay")]
    pub no_power: bool,
    /// Whole-request timeout, seconds.
    #[arg(long, default_value_t = 600.0)]
    pub timeout: f64,
    /// Output folder (load.json, load.md, load.svg).
    #[arg(long, default_value = "eai-load")]
    pub out: PathBuf,
    /// Seed of the Poisson arrivals.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

fn levels(list: &str, field: &'static str) -> Result<Vec<f64>> {
    list.split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| {
            s.trim().parse::<f64>().ok().filter(|x| x.is_finite() && *x > 0.0).ok_or_else(|| {
                Error::Config { field, reason: format!("`{s}` is not a positive number") }
            })
        })
        .collect()
}

/// Prompts from a task or a file.
///
/// # Errors
/// Unreadable files, unknown tasks.
pub fn load_prompts(spec: &str, data: Option<&PathBuf>) -> Result<Vec<String>> {
    let p = PathBuf::from(spec);
    if p.is_file() {
        let text = std::fs::read_to_string(&p).map_err(|e| Error::io(&p, e))?;
        let mut out = Vec::new();
        for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            if p.extension().is_some_and(|e| e == "jsonl" || e == "json") {
                let v: serde_json::Value = serde_json::from_str(line)
                    .map_err(|e| Error::format(format!("{}:{}", p.display(), i + 1), e))?;
                let s = v.get("prompt").and_then(|x| x.as_str()).ok_or_else(|| Error::Format {
                    what: format!("{}:{}", p.display(), i + 1),
                    reason: "no string field `prompt`".into(),
                })?;
                out.push(s.to_string());
            } else {
                out.push(line.replace("\\n", "\n"));
            }
        }
        return Ok(out);
    }
    let t = crate::cli::TaskArgs { tasks: vec![spec.to_string()], data: data.cloned() };
    let mut out = Vec::new();
    for st in t.build()? {
        for task in &st.suite().tasks {
            let ctx = task.contexts().map_err(|e| Error::Eval {
                task: task.name().to_string(),
                scheme: "-".into(),
                source: Box::new(e),
            })?;
            out.extend(ctx);
        }
    }
    Ok(out)
}

/// Runs `eai load`.
///
/// # Errors
/// Bad settings, an unreachable server, meter failures.
pub fn load(a: &LoadArgs) -> Result<()> {
    let mut ep = Endpoint::new(&a.endpoint, a.served_model.clone())
        .timeout(secs(a.timeout, "--timeout")?)
        .retries(1, Duration::ZERO);
    if let Some(var) = &a.api_key_env {
        ep = ep.api_key(std::env::var(var).map_err(|_| Error::Config {
            field: "--api-key-env",
            reason: format!("the environment variable {var} is not set"),
        })?);
    }
    let arrivals: Vec<Arrival> = match (&a.rate, &a.clients) {
        (Some(r), None) => levels(r, "--rate")?
            .into_iter()
            .map(|rate| Arrival::Poisson { rate, seed: a.seed })
            .collect(),
        (None, Some(c)) => levels(c, "--clients")?
            .into_iter()
            .map(|n| Arrival::Closed { clients: n.round().max(1.0) as usize })
            .collect(),
        _ => {
            return Err(Error::Config {
                field: "--rate/--clients",
                reason: "give one of them".into(),
            });
        }
    };
    let cfgs: Vec<LoadConfig> = arrivals
        .into_iter()
        .map(|arr| {
            let mut c = LoadConfig::new(arr);
            c.warmup = secs(a.warmup, "--warmup")?;
            c.measure = secs(a.measure, "--measure")?;
            c.max_tokens = a.max_tokens;
            c.ignore_eos = a.ignore_eos;
            if a.chat {
                c.route = GenerationRoute::Chat;
            }
            Ok(c)
        })
        .collect::<Result<_>>()?;
    let prompts = load_prompts(&a.prompts, a.data.as_ref())?;
    let sources = if a.no_power {
        None
    } else {
        let mut o = eai_power::CommandOptions::default();
        o.cpu = false;
        o.replay = a.replay.clone();
        let (s, unavailable, warnings) =
            eai_power::discover(&o).map_err(|e| Error::power("power sources", e))?;
        for u in unavailable {
            eprintln!("unavailable: {u}");
        }
        for w in warnings {
            eprintln!("warning: {w}");
        }
        if s.is_empty() {
            eprintln!("no GPU power source: latency and throughput only (use --replay to try)");
            None
        } else {
            Some(s)
        }
    };
    let mut server = ServerGpus::default();
    server.pids.clone_from(&a.server_pids);
    server.visible_uuids.clone_from(&a.server_gpus);
    let report = LoadStudy::new(ep, prompts, cfgs)
        .idle(secs(a.idle, "--idle")?)
        .pause(secs(a.pause, "--pause")?)
        .run(sources, &server, true)?;
    report.write(&a.out)?;
    println!("\n{}", report.table());
    println!("report: {}", a.out.join("load.md").display());
    Ok(())
}
