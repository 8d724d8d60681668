//! `eai agent` and `eai measure --agent URL …`: the command-line half of `eai-cluster`
//! (see `docs/cluster-energy.md`).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use eai_cluster::{Agent, AgentConfig, AgentSpec, Coordinator, DcgmConfig, discover_dcgm};
use eai_core::Watts;
use eai_power::{CommandOptions, MeterConfig, PowerSource, discover};

type BoxError = Box<dyn std::error::Error>;

/// `eai agent`: sample this node and serve its windows over HTTP.
#[derive(Debug, Clone, Args)]
pub struct AgentArgs {
    /// Address to listen on.
    #[arg(long, value_name = "ADDR:PORT", default_value = "0.0.0.0:9464")]
    pub listen: String,
    /// File holding the bearer token clients must present (or set `EAI_AGENT_TOKEN`).
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Serve without a token (only on a trusted, isolated network).
    #[arg(long)]
    pub insecure_no_token: bool,
    /// The name this node reports (default: the host name).
    #[arg(long, value_name = "NAME")]
    pub node_name: Option<String>,
    /// Do not measure GPUs through NVML.
    #[arg(long)]
    pub no_gpu: bool,
    /// Do not measure CPU packages (RAPL).
    #[arg(long)]
    pub no_cpu: bool,
    /// Only the GPUs in CUDA_VISIBLE_DEVICES.
    #[arg(long)]
    pub cuda_visible_only: bool,
    /// Powercap sysfs root for RAPL.
    #[arg(long, value_name = "DIR", default_value = eai_power::DEFAULT_POWERCAP_ROOT)]
    pub rapl_root: PathBuf,
    /// Read this node's GPUs from a DCGM exporter endpoint instead of NVML.
    #[arg(long, value_name = "URL")]
    pub dcgm: Option<String>,
    /// Bearer token file for the DCGM endpoint.
    #[arg(long, value_name = "FILE")]
    pub dcgm_token_file: Option<PathBuf>,
    /// DCGM scrape interval in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 1.0)]
    pub dcgm_interval: f64,
    /// Replay a recorded trace instead of reading sensors (labelled as replayed).
    #[arg(long, value_name = "FILE")]
    pub replay: Option<PathBuf>,
    /// Add a constant source of this many watts (labelled as not measured).
    #[arg(long, value_name = "WATTS")]
    pub constant: Option<f64>,
    /// Background energy-counter rate (windows by time range are interpolated between these
    /// reads; windows by name get their own edge reads).
    #[arg(long, value_name = "HZ", default_value_t = 0.5)]
    pub counter_hz: f64,
    /// Shift this agent's clock by this many milliseconds (tests of offset estimation).
    #[arg(long, value_name = "MS", default_value_t = 0, allow_hyphen_values = true, hide = true)]
    pub clock_shift_ms: i64,
}

fn read_token(file: Option<&Path>, env: &str) -> Result<Option<String>, BoxError> {
    if let Some(p) = file {
        let t =
            std::fs::read_to_string(p).map_err(|e| format!("token file {}: {e}", p.display()))?;
        let t = t.trim().to_string();
        if t.is_empty() {
            return Err(format!("token file {} is empty", p.display()).into());
        }
        return Ok(Some(t));
    }
    Ok(std::env::var(env).ok().map(|t| t.trim().to_string()).filter(|t| !t.is_empty()))
}

/// Runs `eai agent` until the process is stopped.
///
/// # Errors
///
/// A missing token (unless `--insecure-no-token`), no usable source, bind errors.
pub fn agent(a: &AgentArgs) -> Result<(), BoxError> {
    let token = read_token(a.token_file.as_deref(), "EAI_AGENT_TOKEN")?;
    if token.is_none() && !a.insecure_no_token {
        return Err("eai agent needs a bearer token: --token-file FILE or EAI_AGENT_TOKEN (or --insecure-no-token on an isolated network)".into());
    }
    let mut opts = CommandOptions::default();
    opts.gpus = !a.no_gpu && a.dcgm.is_none();
    opts.cpu = !a.no_cpu;
    opts.cuda_visible_only = a.cuda_visible_only;
    opts.rapl_root = a.rapl_root.clone();
    opts.constant = a.constant.map(Watts);
    opts.replay = a.replay.clone();
    let (mut sources, unavailable, warnings) = discover(&opts)?;
    let mut meter = MeterConfig::new().counter_hz(a.counter_hz);
    if let Some(url) = &a.dcgm {
        let mut c = DcgmConfig::new(url.clone()).interval(
            Duration::try_from_secs_f64(a.dcgm_interval)
                .map_err(|e| format!("--dcgm-interval: {e}"))?,
        );
        if let Some(t) = read_token(a.dcgm_token_file.as_deref(), "EAI_DCGM_TOKEN")? {
            c = c.token(t);
        }
        let gpus = discover_dcgm(&c)?;
        meter = c.meter_config();
        sources.extend(gpus.into_iter().map(|g| Box::new(g) as Box<dyn PowerSource>));
    }
    for u in &unavailable {
        eprintln!("eai agent: unavailable: {u}");
    }
    for w in &warnings {
        eprintln!("eai agent: warning: {w}");
    }
    if sources.is_empty() {
        return Err(format!("no power source to sample ({})", unavailable.join("; ")).into());
    }
    let mut cfg = AgentConfig::new(token).listen(a.listen.clone()).meter(meter);
    if let Some(n) = &a.node_name {
        cfg = cfg.host(n.clone());
    }
    cfg = cfg.clock_shift_ns(a.clock_shift_ms.saturating_mul(1_000_000));
    let agent = Agent::start(sources, cfg)?;
    // One line on stdout that scripts (and tests) wait for.
    println!("eai agent: listening on http://{}", agent.addr());
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    loop {
        std::thread::park();
    }
}

/// `eai measure --agent URL …`: the agents to measure on instead of local sensors.
#[derive(Debug, Clone, Default, Args)]
pub struct AgentTargets {
    /// Measure on these `eai agent`s (repeatable) instead of this machine's sensors.
    #[arg(long = "agent", value_name = "URL")]
    pub agents: Vec<String>,
    /// File holding the agents' bearer token (or set `EAI_AGENT_TOKEN`).
    #[arg(long, value_name = "FILE")]
    pub agent_token_file: Option<PathBuf>,
}

/// Runs `command` inside one window opened on every agent and prints the cluster window
/// (clock offsets, per-agent energy, agents lost). Polls the agents every second so that an
/// agent lost mid-run still contributes its energy up to the last poll.
///
/// # Errors
///
/// Token or command errors; agent failures are reported in the result, not as errors.
pub fn measure_on_agents(
    t: &AgentTargets,
    command: &[OsString],
    json: Option<&Path>,
) -> Result<std::process::ExitCode, BoxError> {
    let token = read_token(t.agent_token_file.as_deref(), "EAI_AGENT_TOKEN")?;
    let coord = Coordinator::new(
        t.agents.iter().map(|u| AgentSpec::new(u.clone(), token.clone())).collect(),
    );
    for (u, r) in t.agents.iter().zip(coord.sync(8)) {
        if let Err(e) = r {
            eprintln!("eai measure: agent {u}: no clock offset: {e}");
        }
    }
    let (program, args) = command.split_first().ok_or("no command given")?;
    let name = command.iter().map(|s| s.to_string_lossy()).collect::<Vec<_>>().join(" ");
    for (u, r) in t.agents.iter().zip(coord.begin(&name)) {
        if let Err(e) = r {
            eprintln!("eai measure: agent {u}: window did not begin: {e}");
        }
    }
    let mut child = std::process::Command::new(program)
        .args(args)
        .spawn()
        .map_err(|e| format!("cannot run `{}`: {e}", program.to_string_lossy()))?;
    let mut polled = std::time::Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break s;
        }
        std::thread::sleep(Duration::from_millis(50));
        if polled.elapsed() >= Duration::from_secs(1) {
            coord.heartbeat(&name);
            polled = std::time::Instant::now();
        }
    };
    let w = coord.end(&name);
    eprint!("{w}");
    if let Some(p) = json {
        std::fs::write(p, serde_json::to_vec_pretty(&w)?)
            .map_err(|e| format!("{}: {e}", p.display()))?;
        eprintln!(" report written to {}", p.display());
    }
    Ok(match status.code() {
        Some(c) => std::process::ExitCode::from(u8::try_from(c).unwrap_or(1)),
        None => std::process::ExitCode::FAILURE,
    })
}
