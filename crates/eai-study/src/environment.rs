//! Where a study ran: the environment block of its report (eai version and commit, CPU, GPUs
//! with driver, power limit and clocks, the CUDA libraries the process loaded), and the
//! hardware profile matched from the GPU's name.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

pub use eai_power::GpuEnvironment;

/// The machine and software a study ran on. Captured when the study starts (GPU clocks are
/// those of that instant); the CUDA libraries are read again after the first model is built.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Environment {
    /// eai's version.
    pub eai_version: String,
    /// The git commit eai was built from, when built from a checkout.
    pub git_commit: Option<String>,
    /// Operating system and kernel, e.g. `linux 6.8.0-49-generic`.
    pub os: String,
    /// CPU model, when the OS says (`/proc/cpuinfo`).
    pub cpu_model: Option<String>,
    /// Logical CPUs available to this process.
    pub cpu_threads: Option<usize>,
    /// Every GPU NVML sees, with its settings when the study started.
    pub gpus: Vec<GpuEnvironment>,
    /// Why there is no GPU information (no NVML, built without it), when there is none.
    pub gpu_unavailable: Option<String>,
    /// CUDA and NVIDIA libraries mapped into this process (file names carry their versions,
    /// e.g. `libcublas.so.13.0.2.14`), after the model was built.
    pub cuda_libraries: Vec<String>,
    /// The device that ran the model, as the engine reports it (e.g. `cuda:0 NVIDIA H100 80GB
    /// HBM3 (sm_90, 79 GiB)`, `cpu (...)`).
    pub model_device: Option<String>,
    /// The hardware label of the runs and how it was chosen.
    pub hardware: Option<HardwareChoice>,
}

/// How the study's hardware label was chosen.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct HardwareChoice {
    /// The label of the runs.
    pub label: String,
    /// `true` when it is a built-in hardware profile id (the advice's hardware checks run).
    pub profile: bool,
    /// How it was chosen, in words.
    pub how: String,
}

impl HardwareChoice {
    /// A label the user gave.
    pub(crate) fn given(label: &str) -> Self {
        let profile = eai_metrics::ProfileSet::builtin().is_ok_and(|s| s.get(label).is_ok());
        Self {
            label: label.to_string(),
            profile,
            how: if profile {
                "given (a built-in hardware profile)".into()
            } else {
                "given (not a built-in hardware profile: the advice skips the hardware checks)"
                    .into()
            },
        }
    }

    /// The label from the device that ran the model (the engine's device label), else from the
    /// first GPU among the power sources: the built-in profile its name matches, else the name
    /// itself; `cpu` for a model on the CPU.
    pub(crate) fn auto(model_device: Option<&str>, sources: &[eai_power::SourceInfo]) -> Self {
        let (name, whence) = match model_device {
            Some(d) if d.starts_with("cpu") => {
                return Self {
                    label: "cpu".into(),
                    profile: false,
                    how: "the model ran on the CPU".into(),
                };
            }
            Some(d) => match gpu_name_of_device(d) {
                Some(n) => (Some(n.to_string()), "the GPU that ran the model"),
                None => (None, ""),
            },
            None => (None, ""),
        };
        let (name, whence) = match name {
            Some(n) => (n, whence),
            None => match sources
                .iter()
                .find(|s| matches!(s.domain, eai_power::Domain::Gpu | eai_power::Domain::GpuModule))
            {
                Some(s) => (s.name.clone(), "the first GPU measured"),
                None => {
                    return Self {
                        label: "cpu".into(),
                        profile: false,
                        how: "no GPU was named by the engine or measured".into(),
                    };
                }
            },
        };
        match match_hardware_profile(&name) {
            Some(id) => Self {
                label: id.to_string(),
                profile: true,
                how: format!("profile matched from the name of {whence}, `{name}`"),
            },
            None => Self {
                label: name.clone(),
                profile: false,
                how: format!(
                    "the name of {whence}; no built-in profile matches `{name}`, so the advice \
                     skips the hardware checks (give `--hardware <profile>`)"
                ),
            },
        }
    }
}

impl Environment {
    /// What this process can tell about itself and its machine now.
    pub fn capture() -> Self {
        let (gpus, gpu_unavailable) = gpus();
        Self {
            eai_version: env!("CARGO_PKG_VERSION").to_string(),
            git_commit: option_env!("EAI_GIT_COMMIT").map(str::to_string),
            os: os(),
            cpu_model: cpu_model(),
            cpu_threads: std::thread::available_parallelism().ok().map(|n| n.get()),
            gpus,
            gpu_unavailable,
            cuda_libraries: cuda_libraries(),
            model_device: None,
            hardware: None,
        }
    }

    /// Reads the CUDA libraries mapped into this process again (after a model was built).
    pub fn refresh_libraries(&mut self) {
        self.cuda_libraries = cuda_libraries();
    }

    /// The environment block of a report, as Markdown.
    pub fn to_markdown(&self) -> String {
        let mut s = String::from("## Environment\n\n| | |\n|---|---|\n");
        let mut row = |k: &str, v: String| {
            let _ = writeln!(s, "| {k} | {} |", v.replace('|', "\\|"));
        };
        row(
            "eai",
            match &self.git_commit {
                Some(c) => format!("{} (commit {})", self.eai_version, &c[..c.len().min(12)]),
                None => format!("{} (not built from a git checkout)", self.eai_version),
            },
        );
        row("OS", self.os.clone());
        row(
            "CPU",
            format!(
                "{}{}",
                self.cpu_model.as_deref().unwrap_or("unknown"),
                self.cpu_threads.map_or(String::new(), |n| format!(", {n} threads"))
            ),
        );
        if let Some(d) = &self.model_device {
            row("Model ran on", d.clone());
        }
        if let Some(h) = &self.hardware {
            row("Hardware label", format!("`{}`: {}", h.label, h.how));
        }
        for g in &self.gpus {
            let opt = |x: Option<String>| x.unwrap_or_else(|| "unknown".into());
            row(
                &format!("GPU {}", g.nvml_index),
                format!(
                    "{} ({}), driver {}, CUDA (driver) {}, compute capability {}, {} memory",
                    g.name,
                    opt(g.uuid.clone()),
                    opt(g.driver.clone()),
                    opt(g.cuda_driver_version.clone()),
                    opt(g.compute_capability.clone()),
                    opt(g
                        .memory_total_bytes
                        .map(|b| format!("{:.0} GiB", b as f64 / (1u64 << 30) as f64)))
                ),
            );
            row(
                &format!("GPU {} power and clocks", g.nvml_index),
                format!(
                    "power limit {} (default {}), SM clock {} of {} MHz, memory clock {} of {} \
                     MHz{}, {}",
                    opt(g.power_limit_w.map(|w| format!("{w:.0} W"))),
                    opt(g.default_power_limit_w.map(|w| format!("{w:.0} W"))),
                    opt(g.sm_clock_mhz.map(|x| x.to_string())),
                    opt(g.max_sm_clock_mhz.map(|x| x.to_string())),
                    opt(g.memory_clock_mhz.map(|x| x.to_string())),
                    opt(g.max_memory_clock_mhz.map(|x| x.to_string())),
                    g.applications_sm_clock_mhz
                        .map_or(String::new(), |x| format!(", application SM clock {x} MHz")),
                    opt(g.performance_state.clone())
                ),
            );
        }
        if let Some(u) = &self.gpu_unavailable {
            row("GPUs", format!("no GPU information: {u}"));
        }
        if !self.cuda_libraries.is_empty() {
            row("CUDA libraries loaded", self.cuda_libraries.join(", "));
        }
        s.push('\n');
        s
    }
}

#[cfg(feature = "nvml")]
fn gpus() -> (Vec<GpuEnvironment>, Option<String>) {
    match eai_power::gpu_environment(&eai_power::nvml::NvmlOptions::new()) {
        Ok(g) if g.is_empty() => (g, Some("NVML found no GPU".into())),
        Ok(g) => (g, None),
        Err(e) => (Vec::new(), Some(e.to_string())),
    }
}

#[cfg(not(feature = "nvml"))]
fn gpus() -> (Vec<GpuEnvironment>, Option<String>) {
    (Vec::new(), Some("eai was built without the `nvml` feature".into()))
}

fn os() -> String {
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok();
    match kernel {
        Some(k) => format!("{} {}", std::env::consts::OS, k.trim()),
        None => std::env::consts::OS.to_string(),
    }
}

fn cpu_model() -> Option<String> {
    let text = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    text.lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim() == "model name")
        .map(|(_, v)| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// The distinct CUDA/NVIDIA shared libraries mapped into this process, by file name (which
/// carries the version: `libcublas.so.13.0.2.14`). Empty where `/proc/self/maps` is absent.
fn cuda_libraries() -> Vec<String> {
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else { return Vec::new() };
    cuda_libraries_in(&maps)
}

fn cuda_libraries_in(maps: &str) -> Vec<String> {
    const PREFIXES: [&str; 7] = [
        "libcuda.",
        "libcublas.",
        "libcublasLt.",
        "libnvrtc.",
        "libnvidia-ml.",
        "libcudart.",
        "libnvrtc-builtins.",
    ];
    let mut out: Vec<String> = maps
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .filter_map(|p| p.rsplit('/').next())
        .filter(|f| PREFIXES.iter().any(|x| f.starts_with(x)))
        .map(str::to_string)
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The built-in hardware profile (`eai_metrics::ProfileSet::builtin`) of a GPU, from the name
/// NVML or the CUDA driver gives it, or `None` when no profile fits for sure.
///
/// `NVIDIA H100 80GB HBM3` is the SXM5 board (`H100-SXM-80GB`); `NVIDIA H100 PCIe` the PCIe
/// board; `NVIDIA H100 NVL` (94 GB) and other variants without a profile are not matched
/// rather than matched to a near neighbour.
pub fn match_hardware_profile(gpu_name: &str) -> Option<&'static str> {
    let n = gpu_name.to_ascii_lowercase().replace(['-', '_'], " ");
    let has = |w: &str| n.split_whitespace().any(|t| t == w);
    let contains = |w: &str| n.contains(w);
    if has("h100") {
        return if has("nvl") {
            None
        } else if has("pcie") {
            Some("H100-PCIe-80GB")
        } else if has("hbm3") || contains("sxm") {
            Some("H100-SXM-80GB")
        } else {
            None
        };
    }
    if has("h200") {
        return (!has("nvl")).then_some("H200-SXM-141GB");
    }
    if has("a100") {
        return (has("pcie") && contains("40gb")).then_some("A100-PCIe-40GB");
    }
    if has("v100") {
        return (has("sxm2") && contains("32gb")).then_some("V100-SXM2-32GB");
    }
    if has("l40s") {
        return Some("L40S");
    }
    if has("rtx") {
        if has("4090") && !has("d") {
            return Some("RTX-4090");
        }
        if has("3090") {
            return Some(if has("ti") { "RTX-3090-Ti" } else { "RTX-3090" });
        }
        if has("4060") && has("ti") && contains("16gb") {
            return Some("RTX-4060-Ti-16GB");
        }
    }
    None
}

/// The GPU name in an engine's device label (`cuda:0 NVIDIA H100 80GB HBM3 (sm_90, …)`), or
/// `None` when the label is not a CUDA device's.
pub(crate) fn gpu_name_of_device(label: &str) -> Option<&str> {
    let rest = label.strip_prefix("cuda:")?;
    let rest = rest.split_once(' ')?.1;
    Some(rest.split(" (").next().unwrap_or(rest).trim()).filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hardware_profiles_match_nvml_names() {
        for (name, id) in [
            ("NVIDIA H100 80GB HBM3", Some("H100-SXM-80GB")),
            ("NVIDIA H100 PCIe", Some("H100-PCIe-80GB")),
            ("NVIDIA H100 NVL", None),
            ("NVIDIA H200", Some("H200-SXM-141GB")),
            ("NVIDIA H200 NVL", None),
            ("NVIDIA A100-PCIE-40GB", Some("A100-PCIe-40GB")),
            ("NVIDIA A100-SXM4-80GB", None),
            ("Tesla V100-SXM2-32GB", Some("V100-SXM2-32GB")),
            ("NVIDIA L40S", Some("L40S")),
            ("NVIDIA GeForce RTX 4090", Some("RTX-4090")),
            ("NVIDIA GeForce RTX 3090 Ti", Some("RTX-3090-Ti")),
            ("NVIDIA GeForce RTX 3090", Some("RTX-3090")),
            ("NVIDIA GeForce RTX 4060 Ti", None),
            ("cpu", None),
        ] {
            assert_eq!(match_hardware_profile(name), id, "{name}");
        }
        // Every id it can return is a built-in profile.
        let set = eai_metrics::ProfileSet::builtin().unwrap();
        for name in ["NVIDIA H100 80GB HBM3", "NVIDIA H100 PCIe", "NVIDIA H200", "NVIDIA L40S"] {
            assert!(set.get(match_hardware_profile(name).unwrap()).is_ok(), "{name}");
        }
    }

    #[test]
    fn hardware_label_from_the_device_that_ran_the_model() {
        let h = HardwareChoice::auto(Some("cuda:0 NVIDIA H100 80GB HBM3 (sm_90, 79 GiB)"), &[]);
        assert_eq!((h.label.as_str(), h.profile), ("H100-SXM-80GB", true));
        assert!(h.how.contains("`NVIDIA H100 80GB HBM3`"), "{}", h.how);
        let h = HardwareChoice::auto(Some("cuda:1 NVIDIA H100 NVL (sm_90, 94 GiB)"), &[]);
        assert_eq!((h.label.as_str(), h.profile), ("NVIDIA H100 NVL", false));
        assert!(h.how.contains("--hardware"), "{}", h.how);
        let h = HardwareChoice::auto(Some("cpu (bos)"), &[]);
        assert_eq!((h.label.as_str(), h.profile), ("cpu", false));
        // An engine that names no device: the first GPU measured.
        let gpu = eai_power::SourceInfo::new(
            "nvml/GPU-1",
            "NVIDIA H200",
            eai_power::Domain::Gpu,
            eai_power::Provenance::Measured,
        );
        let h = HardwareChoice::auto(None, &[gpu]);
        assert_eq!((h.label.as_str(), h.profile), ("H200-SXM-141GB", true));
        assert_eq!(HardwareChoice::auto(None, &[]).label, "cpu");
        assert!(HardwareChoice::given("H100-SXM-80GB").profile);
        assert!(!HardwareChoice::given("my-box").profile);
    }

    #[test]
    fn device_labels_and_libraries() {
        assert_eq!(
            gpu_name_of_device("cuda:0 NVIDIA H100 80GB HBM3 (sm_90, 79 GiB)"),
            Some("NVIDIA H100 80GB HBM3")
        );
        assert_eq!(gpu_name_of_device("cpu (bos)"), None);
        let maps = "7f00-7f01 r-xp 0 08:01 1 /usr/lib/x86_64-linux-gnu/libcuda.so.580.95.05\n\
                    7f01-7f02 r--p 0 08:01 2 /opt/cuda/lib/libcublasLt.so.13.0.2.14\n\
                    7f02-7f03 r-xp 0 08:01 2 /opt/cuda/lib/libcublasLt.so.13.0.2.14\n\
                    7f03-7f04 r-xp 0 08:01 3 /usr/lib/libc.so.6\n\
                    7f04-7f05 rw-p 0 00:00 0\n";
        assert_eq!(
            cuda_libraries_in(maps),
            vec!["libcublasLt.so.13.0.2.14".to_string(), "libcuda.so.580.95.05".to_string()]
        );
    }

    #[test]
    fn environment_block_names_what_it_knows() {
        let mut e = Environment::capture();
        assert_eq!(e.eai_version, env!("CARGO_PKG_VERSION"));
        let mut g = GpuEnvironment::default();
        g.name = "NVIDIA H100 80GB HBM3".into();
        g.driver = Some("580.95.05".into());
        g.power_limit_w = Some(700.0);
        e.gpus = vec![g];
        let md = e.to_markdown();
        assert!(md.contains("| eai | "), "{md}");
        assert!(md.contains("NVIDIA H100 80GB HBM3") && md.contains("driver 580.95.05"), "{md}");
        assert!(md.contains("power limit 700 W (default unknown)"), "{md}");
    }
}
