//! `eai measure -- <command>`: run any command inside one window and report its energy per
//! device (the library half; the binary is a thin clap wrapper in the `eai` facade).

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use eai_core::Watts;
use serde::{Deserialize, Serialize};

use crate::constant::ConstantSource;
use crate::descendants::{ProcessInfo, descendants};
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
    /// Start the command in a process group of its own (Unix; default true), so that a
    /// signal can be forwarded to it and everything it starts ([`CommandControl`]).
    pub process_group: bool,
    /// Keep the window open until every process the command started has exited (default
    /// true: their energy is the command's). Either way, those that outlived the command are
    /// named in [`CommandReport::outlived`] and a warning.
    pub wait_for_descendants: bool,
    /// After an interruption, how long to wait for the command's processes to exit before
    /// closing the window and naming those still running (default 10 s).
    pub interrupt_grace: Duration,
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
            process_group: true,
            wait_for_descendants: true,
            interrupt_grace: Duration::from_secs(10),
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
    /// Warnings (device mapping, skipped zones, processes left running).
    pub warnings: Vec<String>,
    /// The signal that interrupted the measurement (received by the caller and forwarded to
    /// the command), if any: the window ends when the command stopped.
    #[serde(default)]
    pub interrupted: Option<i32>,
    /// Processes the command started that were still running when it exited (waited for
    /// unless [`CommandOptions::wait_for_descendants`] is off).
    #[serde(default)]
    pub outlived: Vec<ProcessInfo>,
    /// Those still running when the window closed (not waited for, or still there after an
    /// interruption's grace period): their energy after that point is not in the window.
    #[serde(default)]
    pub left_running: Vec<ProcessInfo>,
}

/// Shared between [`measure_command_with`] and its caller while the command runs: the
/// command's process id once started (its process group too, with
/// [`CommandOptions::process_group`]), and a signal the caller received and forwarded, which
/// flags the report [`crate::Flag::Interrupted`]. The caller does the forwarding (signal
/// handling is the program's business, not a library's).
#[derive(Debug, Default)]
pub struct CommandControl {
    child: AtomicU32,
    interrupted: AtomicI32,
}

impl CommandControl {
    /// Nothing started, nothing received.
    pub const fn new() -> Self {
        Self { child: AtomicU32::new(0), interrupted: AtomicI32::new(0) }
    }

    /// The command's process id (and process group id) once started.
    pub fn child(&self) -> Option<u32> {
        match self.child.load(Ordering::SeqCst) {
            0 => None,
            p => Some(p),
        }
    }

    /// Records that `signal` was received (and forwarded); the first one is kept.
    pub fn interrupt(&self, signal: i32) {
        let _ = self.interrupted.compare_exchange(0, signal, Ordering::SeqCst, Ordering::SeqCst);
    }

    /// The signal recorded by [`CommandControl::interrupt`], if any.
    pub fn interrupted(&self) -> Option<i32> {
        match self.interrupted.load(Ordering::SeqCst) {
            0 => None,
            s => Some(s),
        }
    }
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
        if let Some(s) = self.interrupted {
            writeln!(f, " INTERRUPTED by signal {s} (forwarded to the command): partial window")?;
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
    measure_command_with(program, args, opts, &CommandControl::new())
}

/// [`measure_command`], sharing the command's process id and any interruption with the caller
/// through `control` (see [`CommandControl`]). The window stays open until the command and,
/// with [`CommandOptions::wait_for_descendants`], every process it left running have exited.
///
/// # Errors
///
/// As [`measure_command`].
pub fn measure_command_with(
    program: &OsString,
    args: &[OsString],
    opts: &CommandOptions,
    control: &CommandControl,
) -> Result<(CommandReport, Session)> {
    let (sources, unavailable, mut warnings) = discover(opts)?;
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
    let mut cmd = std::process::Command::new(program);
    cmd.args(args);
    #[cfg(unix)]
    if opts.process_group {
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    }
    let status = cmd.spawn().and_then(|mut child| {
        meter.add_own_pid(child.id());
        control.child.store(child.id(), Ordering::SeqCst);
        child.wait()
    });
    let pgid = if opts.process_group { control.child() } else { None };
    let (outlived, left_running) = match &status {
        Ok(_) => wait_descendants(pgid, opts, control),
        Err(_) => (Vec::new(), Vec::new()),
    };
    meter.end(id)?;
    let status = status.map_err(|e| Error::Command { command: command[0].clone(), source: e })?;
    let mut measurement = meter.measurement(id)?;
    if let (true, Some(b)) = (opts.subtract_baseline, &baseline) {
        measurement.subtract_baseline(b);
    }
    let mut session = meter.stop()?;
    let interrupted = control.interrupted();
    if let Some(signal) = interrupted {
        for d in &mut measurement.devices {
            d.flags.push(crate::Flag::Interrupted { signal });
        }
        for w in session.windows.iter_mut().filter(|w| w.id == measurement.id) {
            *w = measurement.clone();
        }
        let t_ns = session.timeline.end_ns();
        session.timeline.events.push(crate::timeline::Event::new(
            t_ns,
            0,
            None,
            crate::timeline::EventKind::Interrupted { signal },
        ));
    }
    if !outlived.is_empty() {
        warnings.push(format!(
            "{} process(es) started by the command outlived it: {}{}",
            outlived.len(),
            list(&outlived),
            if opts.wait_for_descendants {
                " (waited for them: the window includes them)"
            } else {
                ""
            }
        ));
    }
    if !left_running.is_empty() {
        warnings.push(format!(
            "still running when the window closed (their later energy is not counted): {}",
            list(&left_running)
        ));
    }
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
            interrupted,
            outlived,
            left_running,
        },
        session,
    ))
}

fn list(ps: &[ProcessInfo]) -> String {
    const SHOWN: usize = 8;
    let mut s = ps.iter().take(SHOWN).map(ToString::to_string).collect::<Vec<_>>().join(", ");
    if ps.len() > SHOWN {
        s.push_str(&format!(" and {} more", ps.len() - SHOWN));
    }
    s
}

/// After the command exited: the processes it left (all seen), and those still running when
/// we stopped waiting.
fn wait_descendants(
    pgid: Option<u32>,
    opts: &CommandOptions,
    control: &CommandControl,
) -> (Vec<ProcessInfo>, Vec<ProcessInfo>) {
    let mut seen = descendants(pgid);
    if seen.is_empty() || !opts.wait_for_descendants {
        return (seen.clone(), seen);
    }
    let mut since_interrupt: Option<Instant> = None;
    loop {
        std::thread::sleep(Duration::from_millis(20));
        let now = descendants(pgid);
        for p in &now {
            // A pid seen before may have exec'd since (`sh` → `sleep`): keep the latest name.
            match seen.iter_mut().find(|q| q.pid == p.pid) {
                Some(q) => *q = p.clone(),
                None => seen.push(p.clone()),
            }
        }
        if now.is_empty() {
            return (seen, Vec::new());
        }
        if control.interrupted().is_some() {
            let t = *since_interrupt.get_or_insert_with(Instant::now);
            if t.elapsed() >= opts.interrupt_grace {
                return (seen, now);
            }
        }
    }
}
