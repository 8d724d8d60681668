//! Several devices: every source's energy per task (charged or shown apart, with its flags)
//! and the scaling of one study over several device sets (`eai study --cuda 0 --cuda 0,1`).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::scheme::Scheme;
use crate::study::{Accounting, StudyResults, TaskRecord};

/// Mean energy of one source over a (scheme, task)'s repetitions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SourceEnergy {
    /// Source id (`nvml/0`, `rapl/package-0`, …).
    pub source: String,
    /// Mean energy per pass, joules (`None`: no data in any window).
    pub energy_j: Option<f64>,
    /// Charged to the task (`false`: a GPU the model did not use, shown apart).
    pub charged: bool,
    /// Each flag with the number of windows that carried it (e.g. `shared`: 2).
    pub flags: BTreeMap<String, u32>,
}

/// Every source's energy in one (scheme, task), over its repetitions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DeviceEnergy {
    /// The scheme.
    pub scheme: Scheme,
    /// The task.
    pub task: String,
    /// Windows (repetitions) averaged.
    pub windows: u32,
    /// Per source.
    pub sources: Vec<SourceEnergy>,
    /// Mean charged energy as stored in the task records (`TaskRecord::energy`), joules.
    pub total_j: Option<f64>,
    /// Largest |Σ charged sources − stored total| over the windows, relative to the total
    /// (0 up to float rounding: the total is that sum, every source read around the same window
    /// edges).
    pub max_sum_error: Option<f64>,
}

fn groups(tasks: &[TaskRecord]) -> Vec<((Scheme, String), Vec<&TaskRecord>)> {
    let mut out: Vec<((Scheme, String), Vec<&TaskRecord>)> = Vec::new();
    for t in tasks {
        match out.iter_mut().find(|(k, _)| k.0 == t.scheme && k.1 == t.task) {
            Some((_, v)) => v.push(t),
            None => out.push(((t.scheme, t.task.clone()), vec![t])),
        }
    }
    out
}

fn mean(xs: &[f64]) -> Option<f64> {
    (!xs.is_empty()).then(|| xs.iter().sum::<f64>() / xs.len() as f64)
}

/// Per (scheme, task): every source's mean energy, whether it is charged, its flags, and the
/// check that the charged sources add up to the stored total.
pub fn device_energy(r: &StudyResults) -> Vec<DeviceEnergy> {
    groups(&r.tasks)
        .into_iter()
        .map(|((scheme, task), recs)| {
            let mut ids: Vec<String> = Vec::new();
            for t in &recs {
                for d in &t.devices {
                    if !ids.contains(&d.source) {
                        ids.push(d.source.clone());
                    }
                }
            }
            let sources = ids
                .into_iter()
                .map(|id| {
                    let mut xs = Vec::new();
                    let mut charged = true;
                    let mut flags: BTreeMap<String, u32> = BTreeMap::new();
                    for t in &recs {
                        for d in t.devices.iter().filter(|d| d.source == id) {
                            xs.extend(d.energy.map(|e| e.0));
                            charged &= d.charged;
                            for f in &d.flags {
                                *flags.entry(f.clone()).or_default() += 1;
                            }
                        }
                    }
                    SourceEnergy { source: id, energy_j: mean(&xs), charged, flags }
                })
                .collect();
            let totals: Vec<f64> = recs.iter().filter_map(|t| t.energy.map(|e| e.0)).collect();
            let errs: Vec<f64> = recs
                .iter()
                .filter_map(|t| {
                    let total = t.energy?.0;
                    let sum: f64 = t
                        .devices
                        .iter()
                        .filter(|d| d.charged)
                        .filter_map(|d| match r.energy.accounting {
                            Accounting::Total => d.energy.map(|e| e.0),
                            _ => d.above_idle.or(d.energy).map(|e| e.0),
                        })
                        .sum();
                    (total > 0.0).then(|| (sum - total).abs() / total)
                })
                .collect();
            DeviceEnergy {
                scheme,
                task,
                windows: recs.len() as u32,
                sources,
                total_j: mean(&totals),
                max_sum_error: errs.into_iter().reduce(f64::max),
            }
        })
        .collect()
}

/// The "Energy per device" section of a report (empty without energy figures).
pub fn device_energy_markdown(r: &StudyResults) -> String {
    let rows = device_energy(r);
    if rows.iter().all(|g| g.sources.is_empty()) {
        return String::new();
    }
    let mut s = String::from(
        "## Energy per device\n\nMean energy per pass of every source sampled, over the \
         repetitions. Charged sources add up to the task's energy (the check column: the largest \
         relative difference over the windows; every source's counter is read around the same \
         window edges). GPUs the model did not run on are measured and shown apart, not \
         charged. `shared` marks a window in which another process used that GPU.\n\n\
         | Scheme | Task | Source | Energy (J) | Charged | Flags (windows) |\n\
         |---|---|---|---:|---|---|\n",
    );
    for g in &rows {
        for src in &g.sources {
            let flags: Vec<String> =
                src.flags.iter().map(|(f, n)| format!("{f} ({n}/{})", g.windows)).collect();
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} |",
                g.scheme.display_name(),
                g.task,
                src.source,
                src.energy_j.map_or_else(|| "–".into(), |e| format!("{e:.2}")),
                if src.charged { "yes" } else { "no (not used by the model)" },
                flags.join(", ")
            );
        }
        let _ = writeln!(
            s,
            "| {} | {} | **total charged** | {} | | Σ check: {} |",
            g.scheme.display_name(),
            g.task,
            g.total_j.map_or_else(|| "–".into(), |e| format!("{e:.2}")),
            g.max_sum_error.map_or_else(|| "–".into(), |x| format!("{:.1e}", x))
        );
    }
    s.push('\n');
    s
}

/// One device set of a multi-set study: its label (`cuda0-1`), number of devices, results.
#[derive(Clone, Copy, Debug)]
pub struct DeviceSet<'a> {
    /// Label (the sub-folder's name).
    pub label: &'a str,
    /// Devices (replicas) in the set.
    pub devices: usize,
    /// The set's study.
    pub results: &'a StudyResults,
}

/// One (device set, scheme, task) of a scaling comparison.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ScalingRow {
    /// Device set label.
    pub device_set: String,
    /// Devices in the set.
    pub devices: usize,
    /// The scheme.
    pub scheme: Scheme,
    /// The task.
    pub task: String,
    /// Score of the first repetition.
    pub score: f64,
    /// Whether the score equals the one-device set's (`None`: no such set).
    pub same_score: Option<bool>,
    /// Mean requests per second of a pass (requests sent ÷ wall time per pass).
    pub requests_per_s: f64,
    /// Mean charged joules per request.
    pub j_per_request: Option<f64>,
    /// `requests_per_s` over the one-device set's.
    pub speedup: Option<f64>,
    /// `speedup ÷ devices`: 1.0 is perfect scaling.
    pub efficiency: Option<f64>,
    /// `j_per_request` over the one-device set's.
    pub j_per_request_ratio: Option<f64>,
    /// Mean energy per pass of each charged GPU (source id, joules).
    pub gpu_j: Vec<(String, f64)>,
}

/// Scaling of the same study over device sets: req/s, J/request and scores of each set, against
/// the first set of one device (scaling efficiency = req/s on N devices ÷ (N × one-device req/s)).
pub fn scaling(sets: &[DeviceSet<'_>]) -> Vec<ScalingRow> {
    let mut rows = Vec::new();
    for set in sets {
        for ((scheme, task), recs) in groups(&set.results.tasks) {
            let rps: Vec<f64> = recs
                .iter()
                .filter(|t| t.wall.0 > 0.0)
                .map(|t| t.requests as f64 / t.wall.0)
                .collect();
            let jpr: Vec<f64> = recs.iter().filter_map(|t| t.joules_per_request()).collect();
            let de = device_energy(set.results);
            let gpu_j = de
                .iter()
                .find(|g| g.scheme == scheme && g.task == task)
                .map(|g| {
                    g.sources
                        .iter()
                        .filter(|s| s.charged && s.source.starts_with("nvml"))
                        .filter_map(|s| Some((s.source.clone(), s.energy_j?)))
                        .collect()
                })
                .unwrap_or_default();
            rows.push(ScalingRow {
                device_set: set.label.to_string(),
                devices: set.devices,
                scheme,
                task,
                score: recs.first().map_or(f64::NAN, |t| t.score),
                same_score: None,
                requests_per_s: mean(&rps).unwrap_or(0.0),
                j_per_request: mean(&jpr),
                speedup: None,
                efficiency: None,
                j_per_request_ratio: None,
                gpu_j,
            });
        }
    }
    let Some(base_label) = sets.iter().find(|s| s.devices == 1).map(|s| s.label) else {
        return rows;
    };
    let base: Vec<ScalingRow> =
        rows.iter().filter(|r| r.device_set == base_label).cloned().collect();
    for r in &mut rows {
        let Some(b) = base.iter().find(|b| b.scheme == r.scheme && b.task == r.task) else {
            continue;
        };
        r.same_score = Some(r.score == b.score);
        if b.requests_per_s > 0.0 {
            let sp = r.requests_per_s / b.requests_per_s;
            r.speedup = Some(sp);
            r.efficiency = Some(sp / r.devices.max(1) as f64);
        }
        r.j_per_request_ratio = match (r.j_per_request, b.j_per_request) {
            (Some(x), Some(y)) if y > 0.0 => Some(x / y),
            _ => None,
        };
    }
    rows
}

/// The scaling table in Markdown.
pub fn scaling_markdown(rows: &[ScalingRow]) -> String {
    let f = |x: Option<f64>, d: usize| x.map_or_else(|| "–".to_string(), |v| format!("{v:.d$}"));
    let mut s = String::from(
        "# Scaling over device sets\n\nThe same study on each device set (one replica of the \
         model per GPU, requests split by token load). Speed-up and efficiency are against the \
         one-device set (efficiency = req/s on N devices ÷ (N × one-device req/s)); J/request \
         counts the GPUs the model ran on (and the CPU packages).\n\n\
         | Device set | Devices | Scheme | Task | Score | Same score | req/s | Speed-up | \
         Efficiency | J/request | J/request ÷ 1 device | Energy per GPU (J) |\n\
         |---|---:|---|---|---:|---|---:|---:|---:|---:|---:|---|\n",
    );
    for r in rows {
        let gpus: Vec<String> = r.gpu_j.iter().map(|(k, v)| format!("{k}: {v:.1}")).collect();
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {:.4} | {} | {:.2} | {} | {} | {} | {} | {} |",
            r.device_set,
            r.devices,
            r.scheme.display_name(),
            r.task,
            r.score,
            r.same_score.map_or("–", |x| if x { "yes" } else { "NO" }),
            r.requests_per_s,
            f(r.speedup, 3),
            f(r.efficiency, 3),
            f(r.j_per_request, 4),
            f(r.j_per_request_ratio, 3),
            gpus.join(", ")
        );
    }
    if !rows.iter().any(|r| r.devices == 1) {
        s.push_str("\nNo one-device set: add one (`--cuda 0`) for speed-up and efficiency.\n");
    }
    s
}
