//! The `eai` command line.
//!
//! `eai measure -- <command> [args]` runs any command and prints its energy per device
//! (`perf stat` for joules). `eai study`, `eai eval` and `eai recommend` run the co-evaluation
//! pipeline (`eai-study`); see `docs/pipeline.md`.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use eai::core::Watts;
use eai::power::{CommandControl, CommandOptions, MeterConfig, measure_command_with};

#[cfg(target_os = "linux")]
#[path = "eai/signals.rs"]
mod signals;

/// `eai measure`'s own failures (usage, sensors, outputs): distinct from anything the measured
/// command is likely to return, as `env`, `nice` and `timeout` do. The command's own status
/// is passed through and is also in the JSON report.
const MEASURE_FAILED: u8 = 125;

/// Energy-aware LLM deployment.
#[derive(Debug, Parser)]
#[command(name = "eai", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a command and report the energy it used, per GPU and CPU package.
    Measure(MeasureArgs),
    /// The whole pipeline: every scheme × task × repetition in energy windows, then Table 2,
    /// intervals, Pareto front, advice, plots, written to a folder.
    Study(eai_cli::cli::StudyArgs),
    /// Score a model under one scheme on tasks (lm-eval's tables and files; no energy).
    Eval(eai_cli::cli::EvalArgs),
    /// Write a quantized (or FP16/BF16) copy of a safetensors checkpoint.
    Quantize(eai_cli::cli::QuantizeArgs),
    /// Rank schemes (and hardware) for deployment from measured runs.
    Recommend(eai_cli::cli::RecommendArgs),
    /// Sample this node's GPUs and CPUs and serve energy windows over HTTP (cluster energy).
    #[cfg(feature = "cluster")]
    Agent(eai_cli::agent_cli::AgentArgs),
    /// Energy per response of a served model under load (open or closed loop), at steady state.
    Load(eai_cli::cli::LoadArgs),
}

#[derive(Debug, Args)]
struct MeasureArgs {
    /// Write the recorded trace (every sample) to this file: `.csv` or `.json`.
    #[arg(long, value_name = "FILE")]
    trace: Option<PathBuf>,
    /// Write the report as JSON to this file.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Measure an idle baseline for this many seconds before the command.
    #[arg(long, value_name = "SECONDS")]
    baseline: Option<f64>,
    /// Subtract the idle baseline from the result (needs --baseline; never done silently).
    #[arg(long, requires = "baseline")]
    subtract_baseline: bool,
    /// Only the GPUs in CUDA_VISIBLE_DEVICES (default: every GPU of the machine).
    #[arg(long)]
    cuda_visible_only: bool,
    /// Do not measure GPUs.
    #[arg(long)]
    no_gpu: bool,
    /// Do not measure CPU packages (RAPL).
    #[arg(long)]
    no_cpu: bool,
    /// Powercap sysfs root for RAPL.
    #[arg(long, value_name = "DIR", default_value = eai::power::DEFAULT_POWERCAP_ROOT)]
    rapl_root: PathBuf,
    /// Add a constant source of this many watts (labelled as not measured; for trying the tool).
    #[arg(long, value_name = "WATTS", value_parser = parse_watts)]
    constant: Option<f64>,
    /// Replay a recorded trace instead of reading sensors (labelled as replayed).
    #[arg(long, value_name = "FILE")]
    replay: Option<PathBuf>,
    /// Instant-power sampling rate (0.1 to 10000).
    #[arg(long, value_name = "HZ", default_value_t = 100.0, value_parser = parse_hz)]
    hz: f64,
    /// Energy-counter sampling rate (0.1 to 10000).
    #[arg(long, value_name = "HZ", default_value_t = 20.0, value_parser = parse_hz)]
    counter_hz: f64,
    /// Close the window when the command exits, without waiting for processes it left
    /// running (they are still named in the report and a warning).
    #[arg(long)]
    no_wait: bool,
    /// Measure on `eai agent`s instead of this machine's sensors.
    #[cfg(feature = "cluster")]
    #[command(flatten)]
    agents: eai_cli::agent_cli::AgentTargets,
    /// The command and its arguments (after `--`).
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "COMMAND"
    )]
    command: Vec<OsString>,
}

fn parse_number(s: &str) -> Result<f64, String> {
    s.trim().parse::<f64>().map_err(|_| format!("`{s}` is not a number"))
}

/// A sampling rate: between one sample per 10 s and 10 kHz.
fn parse_hz(s: &str) -> Result<f64, String> {
    let hz = parse_number(s)?;
    if !(0.1..=10_000.0).contains(&hz) {
        return Err(format!("{hz} Hz is not a sampling rate between 0.1 and 10000 Hz"));
    }
    Ok(hz)
}

/// A constant power: finite, not negative, at most a megawatt.
fn parse_watts(s: &str) -> Result<f64, String> {
    let w = parse_number(s)?;
    if !(0.0..=1e6).contains(&w) {
        return Err(format!("{w} W is not a power between 0 and 1000000 W"));
    }
    Ok(w)
}

fn measure(
    a: MeasureArgs,
    control: &CommandControl,
) -> Result<ExitCode, Box<dyn std::error::Error>> {
    #[cfg(feature = "cluster")]
    if !a.agents.agents.is_empty() {
        return eai_cli::agent_cli::measure_on_agents(&a.agents, &a.command, a.json.as_deref());
    }
    let mut opts = CommandOptions::default();
    opts.meter = MeterConfig::new().instant_hz(a.hz).counter_hz(a.counter_hz);
    opts.gpus = !a.no_gpu;
    opts.cpu = !a.no_cpu;
    opts.cuda_visible_only = a.cuda_visible_only;
    opts.rapl_root = a.rapl_root;
    opts.constant = a.constant.map(Watts);
    opts.wait_for_descendants = !a.no_wait;
    // On a terminal the command keeps eai's process group (and so the terminal).
    opts.process_group = !std::io::IsTerminal::is_terminal(&std::io::stdin());
    if let Some(s) = a.baseline {
        opts.baseline =
            Some(Duration::try_from_secs_f64(s).map_err(|e| format!("--baseline {s}: {e}"))?);
    }
    opts.subtract_baseline = a.subtract_baseline;
    let (program, args) = a.command.split_first().ok_or("no command given")?;
    // Every output is checked (and its temporary file created) before the command runs.
    let (trace, json) = {
        use eai::outputs::OutputFile;
        let mut inputs: Vec<(&str, &std::path::Path)> = Vec::new();
        if let Some(r) = &a.replay {
            inputs.push(("--replay trace", r));
        }
        let trace = a.trace.as_deref().map(|p| OutputFile::reserve("--trace", p, &inputs));
        let trace = trace.transpose()?;
        if let Some(t) = &a.trace {
            inputs.push(("--trace output", t));
        }
        let json = a.json.as_deref().map(|p| OutputFile::reserve("--json", p, &inputs));
        (trace, json.transpose()?)
    };
    opts.replay = a.replay;
    let (report, session) = measure_command_with(program, args, &opts, control)?;
    eprint!("{report}");
    {
        if let Some(o) = trace {
            session.timeline.save(o.tmp())?;
            let p = o.path().to_path_buf();
            o.commit()?;
            eprintln!(" trace written to {}", p.display());
        }
        if let Some(o) = json {
            report.save_json(o.tmp())?;
            let p = o.path().to_path_buf();
            o.commit()?;
            eprintln!(" report written to {}", p.display());
        }
    }
    if let Some(s) = report.interrupted {
        return Ok(ExitCode::from(u8::try_from(128 + s).unwrap_or(MEASURE_FAILED)));
    }
    Ok(match (report.exit_code, report.signal) {
        (Some(c), _) => ExitCode::from(u8::try_from(c).unwrap_or(1)),
        (None, Some(s)) => ExitCode::from(u8::try_from(128 + s).unwrap_or(1)),
        _ => ExitCode::FAILURE,
    })
}

/// The error and its causes, on one line.
fn error_line(e: &dyn std::error::Error) -> String {
    let mut line = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        let m = s.to_string();
        if !line.contains(&m) {
            line.push_str(": ");
            line.push_str(&m);
        }
        src = s.source();
    }
    line.replace('\n', " ")
}

fn main() -> ExitCode {
    let measuring = std::env::args_os().nth(1).is_some_and(|a| a == "measure");
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return match (e.use_stderr(), measuring) {
                (false, _) => ExitCode::SUCCESS,
                (true, true) => ExitCode::from(MEASURE_FAILED),
                (true, false) => ExitCode::from(2),
            };
        }
    };
    #[cfg(target_os = "linux")]
    signals::install(measuring, measuring && std::io::IsTerminal::is_terminal(&std::io::stdin()));
    #[cfg(target_os = "linux")]
    let control = &signals::CONTROL;
    #[cfg(not(target_os = "linux"))]
    let control = &CommandControl::new();
    let r = match cli.command {
        Command::Measure(a) => measure(a, control),
        Command::Study(a) => {
            eai_cli::cli::study(&a).map(|()| ExitCode::SUCCESS).map_err(Into::into)
        }
        Command::Eval(a) => eai_cli::cli::eval(&a).map(|()| ExitCode::SUCCESS).map_err(Into::into),
        Command::Quantize(a) => {
            eai_cli::cli::quantize(&a).map(|()| ExitCode::SUCCESS).map_err(Into::into)
        }
        Command::Recommend(a) => {
            eai_cli::cli::recommend(&a).map(|()| ExitCode::SUCCESS).map_err(Into::into)
        }
        #[cfg(feature = "cluster")]
        Command::Agent(a) => eai_cli::agent_cli::agent(&a).map(|()| ExitCode::SUCCESS),
        Command::Load(a) => eai_cli::cli::load(&a).map(|()| ExitCode::SUCCESS).map_err(Into::into),
    };
    r.unwrap_or_else(|e| {
        eprintln!("eai: error: {}", error_line(&*e));
        ExitCode::from(if measuring { MEASURE_FAILED } else { 2 })
    })
}
