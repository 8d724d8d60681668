//! `eai measure -- <command>`: run any command inside one window and report its energy per
//! device (the library half; the binary is a thin clap wrapper in the `eai` facade).

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use eai_core::Watts;
use serde::{Deserialize, Serialize};

use crate::constant::ConstantSource;
use crate::error::{Error, Result};
use crate::measurement::{Baseline, Measurement};
use crate::meter::{Meter, MeterConfig, Session};
use crate::rapl::{DEFAULT_POWERCAP_ROOT, discover_rapl};
use crate::replay::ReplaySource;
use crate::source::PowerSource;
use crate::timeline::Timeline;

/// Which sources to use and how to measure.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct CommandOptions {
    /// Sampler rates and thresholds.
    pub meter: MeterConfig,
    /// Measure NVIDIA GPUs (needs the `nvml` feature; default true).
    pub gpus: bool,
    /// Only the GPUs in `CUDA_VISIBLE_DEVICES` (default: all GPUs of the machine).
    pub cuda_visible_only: bool,
    /// Measure CPU packages through RAPL (default true; skipped with a reason when unreadable).
    pub cpu: bool,
    /// Powercap root (default `/sys/class/powercap`).
    pub rapl_root: PathBuf,
    /// Add a constant source (labelled, not measured), e.g. for trying the tool without sensors.
    pub constant: Option<Watts>,
    /// Replay a recorded trace as the sources (labelled).
    pub replay: Option<PathBuf>,
    /// Measure an idle baseline of this length before the command.
    pub baseline: Option<Duration>,
    /// Subtract the baseline from the result (never done silently).
    pub subtract_baseline: bool,
}

impl Default for CommandOptions {
    fn default() -> Self {
        Self {
            meter: MeterConfig::new(),
            gpus: true,
            cuda_visible_only: false,
            cpu: true,
            rapl_root: PathBuf::from(DEFAULT_POWERCAP_ROOT),
            constant: None,
            replay: None,
            baseline: None,
            subtract_baseline: false,
        }
    }
}

/// The result of [`measure_command`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CommandReport {
    /// The command line.
    pub command: Vec<String>,
    /// Its exit code (`None` when killed by a signal).
    pub exit_code: Option<i32>,
    /// The signal that killed it, if any.
    pub signal: Option<i32>,
    /// The window around the command.
    pub measurement: Measurement,
    /// The idle baseline, when measured.
    pub baseline: Option<Baseline>,
    /// Backends that were unavailable, with the reason (never silently skipped).
    pub unavailable: Vec<String>,
    /// Warnings (device mapping, skipped zones).
    pub warnings: Vec<String>,
}

impl CommandReport {
    /// Writes the report as JSON.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] naming the file, [`Error::Serde`].
    pub fn save_json(&self, path: &std::path::Path) -> Result<()> {
        let f = std::fs::File::create(path)
            .map_err(|e| Error::Io { path: path.to_path_buf(), source: e })?;
        serde_json::to_writer_pretty(std::io::BufWriter::new(f), self)
            .map_err(|e| Error::Serde { what: "command report".into(), source: e.into() })
    }
}

impl std::fmt::Display for CommandReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "\n eai measure: {}", self.command.join(" "))?;
        match (self.exit_code, self.signal) {
            (Some(c), _) => writeln!(f, " exit code {c}")?,
            (None, Some(s)) => writeln!(f, " killed by signal {s}")?,
            _ => {}
        }
        write!(f, "{}", self.measurement)?;
        if let Some(e) = self.measurement.energy() {
            writeln!(
                f,
                " total {:.3} J ({:.6} Wh) over {:.3} s",
                e.0,
                e.to_watt_hours(),
                self.measurement.duration.0
            )?;
        }
        if let Some(b) = &self.baseline {
            for d in &b.devices {
                writeln!(
                    f,
                    " idle baseline {}: {:.2} W ± {:.2} W ({} × 1 s)",
                    d.source, d.mean.0, d.std.0, d.bins
                )?;
            }
        }
        for u in &self.unavailable {
            writeln!(f, " unavailable: {u}")?;
        }
        for w in &self.warnings {
            writeln!(f, " warning: {w}")?;
        }
        Ok(())
    }
}

/// Sources, unavailable backends (with reasons) and warnings, from [`discover`].
pub type Discovered = (Vec<Box<dyn PowerSource>>, Vec<String>, Vec<String>);

/// Builds the sources described by `opts`: replay, or GPUs (NVML) + CPU (RAPL) + constant.
/// Returns the sources, the unavailable backends with reasons, and warnings.
pub fn discover(opts: &CommandOptions) -> Result<Discovered> {
    let mut sources: Vec<Box<dyn PowerSource>> = Vec::new();
    let mut unavailable = Vec::new();
    let mut warnings = Vec::new();
    if let Some(p) = &opts.replay {
        let tl = Timeline::load(p)?;
        let replay = ReplaySource::all(&tl).map_err(|e| match e {
            Error::Config { field, reason } => {
                Error::Config { field, reason: format!("{}: {reason}", p.display()) }
            }
            e => e,
        })?;
        for s in replay {
            sources.push(Box::new(s));
        }
        return Ok((sources, unavailable, warnings));
    }
    if opts.gpus {
        #[cfg(feature = "nvml")]
        {
            let sel = if opts.cuda_visible_only {
                crate::nvml::GpuSelection::CudaVisible
            } else {
                crate::nvml::GpuSelection::All
            };
            match crate::nvml::discover_nvml(&crate::nvml::NvmlOptions::new().selection(sel)) {
                Ok(d) => {
                    if d.gpus.is_empty() {
                        unavailable.push("nvml: no GPU found".to_string());
                    }
                    warnings.extend(d.warnings);
                    for g in d.gpus {
                        sources.push(Box::new(g));
                    }
                }
                Err(e) => unavailable.push(e.to_string()),
            }
        }
        #[cfg(not(feature = "nvml"))]
        unavailable.push("nvml: built without the `nvml` feature".to_string());
    }
    if opts.cpu {
        match discover_rapl(&opts.rapl_root) {
            Ok(d) => {
                for (z, why) in d.skipped {
                    warnings.push(format!("rapl {z}: {why}"));
                }
                for z in d.zones {
                    sources.push(Box::new(z));
                }
            }
            Err(e) => unavailable.push(e.to_string()),
        }
    }
    if let Some(w) = opts.constant {
        sources.push(Box::new(ConstantSource::new(w)));
    }
    Ok((sources, unavailable, warnings))
}

/// Runs `program args…` inside one measurement window (stdio inherited) and returns the report
/// and the whole session (timeline included, for writing a trace).
///
/// # Errors
///
/// [`Error::NoSources`] when no backend is usable (the reasons are listed),
/// [`Error::Command`] when the program cannot be started, meter errors.
pub fn measure_command(
    program: &OsString,
    args: &[OsString],
    opts: &CommandOptions,
) -> Result<(CommandReport, Session)> {
    let (sources, unavailable, warnings) = discover(opts)?;
    if sources.is_empty() {
        return Err(Error::NoSources { why: unavailable.join("; ") });
    }
    let meter = Meter::start(sources, opts.meter)?;
    let baseline = match opts.baseline {
        Some(d) => Some(meter.measure_baseline(d)?),
        None => None,
    };
    let command: Vec<String> = std::iter::once(program)
        .chain(args.iter())
        .map(|s| s.to_string_lossy().into_owned())
        .collect();
    let name = command.join(" ");
    let id = meter.begin(&name);
    let status = std::process::Command::new(program).args(args).spawn().and_then(|mut child| {
        meter.add_own_pid(child.id());
        child.wait()
    });
    meter.end(id)?;
    let status = status.map_err(|e| Error::Command { command: command[0].clone(), source: e })?;
    let mut measurement = meter.measurement(id)?;
    if let (true, Some(b)) = (opts.subtract_baseline, &baseline) {
        measurement.subtract_baseline(b);
    }
    let session = meter.stop()?;
    #[cfg(unix)]
    let signal = std::os::unix::process::ExitStatusExt::signal(&status);
    #[cfg(not(unix))]
    let signal = None;
    Ok((
        CommandReport {
            command,
            exit_code: status.code(),
            signal,
            measurement,
            baseline,
            unavailable,
            warnings,
        },
        session,
    ))
}
