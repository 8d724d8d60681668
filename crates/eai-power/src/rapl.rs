//! Linux RAPL through powercap sysfs (`/sys/class/powercap/intel-rapl:*`): package, core,
//! uncore, dram and psys zones; counter wraparound through `max_energy_range_uj`; mirrored
//! zones de-duplicated; the root directory is configurable (tests use a fake tree).

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use eai_core::{Joules, Watts};

use crate::error::{Error, Result};
use crate::source::{
    Domain, PowerSource, Provenance, Reading, Signal, SignalSpec, SourceError, SourceInfo,
};

/// The standard powercap root.
pub const DEFAULT_POWERCAP_ROOT: &str = "/sys/class/powercap";

/// The fix for unreadable `energy_uj` files, named in every permission error.
pub const RAPL_PERMISSION_FIX: &str = "energy_uj is readable by root only since Linux 5.10 \
(CVE-2020-8694): run as root, or grant a group read access with a udev rule such as \
`ACTION==\"add\", SUBSYSTEM==\"powercap\", RUN+=\"/bin/chmod g+r /sys%p/energy_uj\", RUN+=\"/bin/chgrp power /sys%p/energy_uj\"`, \
or run a privileged daemon; in containers, mount /sys/class/powercap read-only with that access";

/// One RAPL zone as a [`PowerSource`] (energy counter only).
#[derive(Debug, Clone)]
pub struct RaplSource {
    dir: PathBuf,
    info: SourceInfo,
}

/// What [`discover_rapl`] found.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct RaplDiscovery {
    /// Readable, de-duplicated zones.
    pub zones: Vec<RaplSource>,
    /// Zones skipped, with the reason (permission with the fix, mirrored, malformed).
    pub skipped: Vec<(String, String)>,
}

/// Reads a small sysfs attribute. Anything but a regular file (a FIFO would block the reader
/// forever, a character device could stream without end) is refused before it is opened, and
/// at most 4 KiB are read (a sysfs attribute is one line).
fn read_trim(p: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let meta = std::fs::metadata(p)?;
    if !meta.file_type().is_file() {
        return Err(std::io::Error::new(
            ErrorKind::InvalidInput,
            format!("{} is not a regular file (a FIFO, socket or device?)", p.display()),
        ));
    }
    let mut s = String::new();
    std::fs::File::open(p)?.take(4096).read_to_string(&mut s)?;
    Ok(s.trim().to_string())
}

fn parse_u64(p: &Path) -> Result<u64> {
    let s = read_trim(p).map_err(|e| Error::Io { path: p.to_path_buf(), source: e })?;
    s.parse::<u64>()
        .map_err(|e| Error::Parse { what: p.display().to_string(), reason: format!("`{s}`: {e}") })
}

fn domain_of(name: &str, package: u32) -> Domain {
    if let Some(rest) = name.strip_prefix("package-") {
        let n = rest.split('-').next().and_then(|x| x.parse().ok()).unwrap_or(package);
        return Domain::CpuPackage { package: n };
    }
    match name {
        "core" => Domain::CpuCores { package },
        "uncore" => Domain::Uncore { package },
        "dram" => Domain::Dram { package },
        "psys" => Domain::Psys,
        other => Domain::Other { name: other.to_string() },
    }
}

/// Discovers RAPL zones under `root` (normally [`DEFAULT_POWERCAP_ROOT`]).
///
/// # Errors
///
/// [`Error::Unavailable`] when the root does not exist or holds no RAPL zone, or when every
/// zone is unreadable (the reason then names the permission fix).
pub fn discover_rapl(root: &Path) -> Result<RaplDiscovery> {
    let rd = std::fs::read_dir(root).map_err(|e| Error::Unavailable {
        backend: "rapl",
        reason: format!("cannot list {}: {e}", root.display()),
        hint: Some(
            "RAPL needs Linux with the intel_rapl (or AMD rapl) powercap driver loaded".into(),
        ),
    })?;
    let mut dirs: Vec<(String, PathBuf)> = rd
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().to_string();
            (n.starts_with("intel-rapl") && n.contains(':')).then(|| (n, e.path()))
        })
        .filter(|(_, p)| p.join("energy_uj").exists())
        .collect();
    // MSR zones before their MMIO twins, so the twin is the one skipped as a mirror.
    dirs.sort_by(|a, b| (a.0.contains("mmio"), &a.0).cmp(&(b.0.contains("mmio"), &b.0)));
    let mut out = RaplDiscovery::default();
    let mut seen: Vec<(u64, Option<u64>, String)> = Vec::new();
    for (dname, dir) in dirs {
        let package = dname.split(':').nth(1).and_then(|x| x.parse().ok()).unwrap_or(0);
        let name = match read_trim(&dir.join("name")) {
            Ok(n) => n,
            Err(e) => {
                out.skipped.push((dname, format!("cannot read name: {e}")));
                continue;
            }
        };
        let energy = match read_trim(&dir.join("energy_uj")) {
            Ok(s) => match s.parse::<u64>() {
                Ok(v) => v,
                Err(e) => {
                    out.skipped.push((dname, format!("energy_uj `{s}` is not a counter: {e}")));
                    continue;
                }
            },
            Err(e) if e.kind() == ErrorKind::PermissionDenied => {
                out.skipped.push((dname, format!("permission denied; fix: {RAPL_PERMISSION_FIX}")));
                continue;
            }
            Err(e) => {
                out.skipped.push((dname, format!("cannot read energy_uj: {e}")));
                continue;
            }
        };
        let range = parse_u64(&dir.join("max_energy_range_uj")).ok();
        // Mirrored zones (multi-die packages, MMIO twins of MSR zones) expose the same counter.
        if let Some((_, _, other)) =
            seen.iter().find(|(e, r, _)| *e == energy && *r == range && energy != 0)
        {
            out.skipped
                .push((dname.clone(), format!("mirrors {other} (same counter); not summed twice")));
            continue;
        }
        seen.push((energy, range, dname.clone()));
        let max_power = parse_u64(&dir.join("constraint_0_max_power_uw"))
            .ok()
            .map(|uw| Watts(uw as f64 / 1e6))
            .filter(|w| w.0 > 0.0);
        let mut spec = SignalSpec::new(Signal::EnergyCounter);
        if let Some(r) = range {
            spec = spec.wrap_at(Joules::from_microjoules(r));
        }
        if let Some(p) = max_power {
            spec = spec.max_power(p);
        }
        let mut info = SourceInfo::new(
            format!("rapl/{dname}"),
            name.clone(),
            domain_of(&name, package),
            Provenance::Measured,
        )
        .with_signal(spec)
        .with_meta("sysfs", dir.display().to_string());
        if range.is_none() {
            info.meta.push((
                "warning".into(),
                "no max_energy_range_uj: wraps are treated as resets".into(),
            ));
        }
        out.zones.push(RaplSource { dir, info });
    }
    if out.zones.is_empty() {
        let why = if out.skipped.is_empty() {
            format!("no intel-rapl zone under {}", root.display())
        } else {
            out.skipped.iter().map(|(z, r)| format!("{z}: {r}")).collect::<Vec<_>>().join("; ")
        };
        let perm = out.skipped.iter().any(|(_, r)| r.starts_with("permission"));
        return Err(Error::Unavailable {
            backend: "rapl",
            reason: why,
            hint: perm.then(|| RAPL_PERMISSION_FIX.to_string()),
        });
    }
    Ok(out)
}

impl RaplSource {
    /// The zone's sysfs directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Maps an I/O error on a sensor file to a [`SourceError`] (permission with the fix; a
/// vanished file is a lost device).
pub fn classify_io_error(e: &std::io::Error) -> SourceError {
    match e.kind() {
        ErrorKind::PermissionDenied => {
            SourceError::Permission { fix: RAPL_PERMISSION_FIX.to_string() }
        }
        ErrorKind::NotFound => SourceError::DeviceLost(format!("zone vanished: {e}")),
        _ => SourceError::Transient(e.to_string()),
    }
}

impl PowerSource for RaplSource {
    fn info(&self) -> SourceInfo {
        self.info.clone()
    }

    fn read(&self, signal: Signal) -> Result<Reading, SourceError> {
        if signal != Signal::EnergyCounter {
            return Err(SourceError::NotSupported("RAPL zones only have an energy counter".into()));
        }
        let s = read_trim(&self.dir.join("energy_uj")).map_err(|e| classify_io_error(&e))?;
        let uj = s
            .parse::<u64>()
            .map_err(|e| SourceError::Transient(format!("energy_uj `{s}`: {e}")))?;
        Ok(Reading::Energy(Joules::from_microjoules(uj)))
    }
}
