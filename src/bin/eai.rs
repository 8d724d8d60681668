//! The `eai` command line.
//!
//! `eai measure -- <command> [args]` runs any command and prints its energy per device
//! (`perf stat` for joules). `eai study`, `eai eval` and `eai recommend` (feature `cli`, on by
//! default) run the co-evaluation pipeline; see `docs/pipeline.md`.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use eai::core::Watts;
use eai::power::{CommandOptions, MeterConfig, measure_command};

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
    #[cfg(feature = "cli")]
    Study(eai::cli::StudyArgs),
    /// Score a model under one scheme on tasks (lm-eval's tables and files; no energy).
    #[cfg(feature = "cli")]
    Eval(eai::cli::EvalArgs),
    /// Write a quantized (or FP16/BF16) copy of a safetensors checkpoint.
    #[cfg(feature = "cli")]
    Quantize(eai::cli::QuantizeArgs),
    /// Rank schemes (and hardware) for deployment from measured runs.
    #[cfg(feature = "cli")]
    Recommend(eai::cli::RecommendArgs),
    /// Energy per response of a served model under load (open or closed loop), at steady state.
    #[cfg(feature = "cli")]
    Load(eai::cli::LoadArgs),
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
    #[arg(long, value_name = "WATTS")]
    constant: Option<f64>,
    /// Replay a recorded trace instead of reading sensors (labelled as replayed).
    #[arg(long, value_name = "FILE")]
    replay: Option<PathBuf>,
    /// Instant-power sampling rate.
    #[arg(long, value_name = "HZ", default_value_t = 100.0)]
    hz: f64,
    /// Energy-counter sampling rate.
    #[arg(long, value_name = "HZ", default_value_t = 20.0)]
    counter_hz: f64,
    /// The command and its arguments (after `--`).
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "COMMAND"
    )]
    command: Vec<OsString>,
}

fn measure(a: MeasureArgs) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let mut opts = CommandOptions::default();
    opts.meter = MeterConfig::new().instant_hz(a.hz).counter_hz(a.counter_hz);
    opts.gpus = !a.no_gpu;
    opts.cpu = !a.no_cpu;
    opts.cuda_visible_only = a.cuda_visible_only;
    opts.rapl_root = a.rapl_root;
    opts.constant = a.constant.map(Watts);
    opts.replay = a.replay;
    if let Some(s) = a.baseline {
        opts.baseline =
            Some(Duration::try_from_secs_f64(s).map_err(|e| format!("--baseline {s}: {e}"))?);
    }
    opts.subtract_baseline = a.subtract_baseline;
    let (program, args) = a.command.split_first().ok_or("no command given")?;
    let (report, session) = measure_command(program, args, &opts)?;
    eprint!("{report}");
    if let Some(p) = &a.trace {
        session.timeline.save(p)?;
        eprintln!(" trace written to {}", p.display());
    }
    if let Some(p) = &a.json {
        report.save_json(p)?;
        eprintln!(" report written to {}", p.display());
    }
    Ok(match (report.exit_code, report.signal) {
        (Some(c), _) => ExitCode::from(u8::try_from(c).unwrap_or(1)),
        (None, Some(s)) => ExitCode::from(u8::try_from(128 + s).unwrap_or(1)),
        _ => ExitCode::FAILURE,
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let r = match cli.command {
        Command::Measure(a) => measure(a),
        #[cfg(feature = "cli")]
        Command::Study(a) => eai::cli::study(&a).map(|()| ExitCode::SUCCESS).map_err(Into::into),
        #[cfg(feature = "cli")]
        Command::Eval(a) => eai::cli::eval(&a).map(|()| ExitCode::SUCCESS).map_err(Into::into),
        #[cfg(feature = "cli")]
        Command::Quantize(a) => {
            eai::cli::quantize(&a).map(|()| ExitCode::SUCCESS).map_err(Into::into)
        }
        #[cfg(feature = "cli")]
        Command::Recommend(a) => {
            eai::cli::recommend(&a).map(|()| ExitCode::SUCCESS).map_err(Into::into)
        }
        #[cfg(feature = "cli")]
        Command::Load(a) => eai::cli::load(&a).map(|()| ExitCode::SUCCESS).map_err(Into::into),
    };
    r.unwrap_or_else(|e| {
        // One line: the error and its causes.
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
        eprintln!("eai: error: {}", line.replace('\n', " "));
        ExitCode::from(2)
    })
}
