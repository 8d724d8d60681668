//! Which GPUs a server uses, from plain data: each GPU's compute processes (NVML's running
//! process list, as `eai_power::DeviceStatus::processes` reports it) and the server's process
//! tree, or the server's `CUDA_VISIBLE_DEVICES`. Only those GPUs' energy belongs to the
//! server; the others are shown apart (they idle, or serve someone else).

use serde::{Deserialize, Serialize};

/// One GPU as the meter sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct GpuProcesses {
    /// The power source id (e.g. `nvml/0`).
    pub source: String,
    /// The GPU's UUID, when known.
    pub uuid: Option<String>,
    /// Process ids with a compute context on it; `None` when the driver does not say
    /// (containers without the host PID namespace often get an empty or partial list).
    pub pids: Option<Vec<u32>>,
}

impl GpuProcesses {
    /// A GPU entry.
    pub fn new(source: impl Into<String>, uuid: Option<String>, pids: Option<Vec<u32>>) -> Self {
        Self { source: source.into(), uuid, pids }
    }
}

/// How the server's GPUs were chosen.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SelectionBasis {
    /// GPUs running one of the server's processes (its PID or a descendant).
    ServerProcesses,
    /// GPUs named by UUID (the server's `CUDA_VISIBLE_DEVICES`).
    VisibleDevices,
    /// Every GPU: nothing narrower was known (stated in the report).
    All,
}

/// The GPUs that count for a server, and those shown apart.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct GpuSelection {
    /// Source ids whose energy is the server's.
    pub server: Vec<String>,
    /// Source ids shown apart.
    pub others: Vec<String>,
    /// How they were chosen.
    pub basis: SelectionBasis,
    /// What the reader should know (no process list, a PID on no GPU…).
    pub notes: Vec<String>,
}

/// Chooses the server's GPUs.
///
/// - With `server_pids`: GPUs whose process list holds one of them or a descendant
///   (`is_descendant(pid, root)`, e.g. vLLM's engine core and tensor-parallel workers are
///   children of the API server). If no GPU lists one, falls back to the next rule.
/// - With `visible_uuids` (the server's `CUDA_VISIBLE_DEVICES` as UUIDs or prefixes): those.
/// - Otherwise every GPU, with a note.
pub fn select_gpus(
    gpus: &[GpuProcesses],
    server_pids: &[u32],
    visible_uuids: &[String],
    is_descendant: &dyn Fn(u32, u32) -> bool,
) -> GpuSelection {
    let all: Vec<String> = gpus.iter().map(|g| g.source.clone()).collect();
    let mut notes = Vec::new();
    if !server_pids.is_empty() {
        let mut server = Vec::new();
        let mut unknown = Vec::new();
        for g in gpus {
            match &g.pids {
                None => unknown.push(g.source.clone()),
                Some(p) => {
                    if p.iter()
                        .any(|&pid| server_pids.iter().any(|&r| pid == r || is_descendant(pid, r)))
                    {
                        server.push(g.source.clone());
                    }
                }
            }
        }
        if !unknown.is_empty() {
            notes.push(format!("no process list from {}", unknown.join(", ")));
        }
        if !server.is_empty() {
            let others = all.iter().filter(|s| !server.contains(s)).cloned().collect();
            return GpuSelection { server, others, basis: SelectionBasis::ServerProcesses, notes };
        }
        notes.push(format!(
            "no GPU lists server process {server_pids:?} or a child (another PID namespace?)"
        ));
    }
    if !visible_uuids.is_empty() {
        let server: Vec<String> = gpus
            .iter()
            .filter(|g| {
                g.uuid
                    .as_ref()
                    .is_some_and(|u| visible_uuids.iter().any(|v| u.starts_with(v.as_str())))
            })
            .map(|g| g.source.clone())
            .collect();
        if !server.is_empty() {
            let others = all.iter().filter(|s| !server.contains(s)).cloned().collect();
            return GpuSelection { server, others, basis: SelectionBasis::VisibleDevices, notes };
        }
        notes.push(format!("no GPU matches the visible devices {visible_uuids:?}"));
    }
    notes.push("all GPUs counted: the server's GPUs could not be narrowed down".into());
    GpuSelection { server: all, others: Vec::new(), basis: SelectionBasis::All, notes }
}

/// Whether `pid` is `ancestor` or descends from it (Linux `/proc/<pid>/stat`; false elsewhere
/// or when a process has gone).
pub fn proc_is_descendant(pid: u32, ancestor: u32) -> bool {
    let mut p = pid;
    for _ in 0..64 {
        if p == ancestor {
            return true;
        }
        if p <= 1 {
            return false;
        }
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else { return false };
        // The command name is parenthesised and may hold spaces: read after the last ')'.
        let Some(rest) = stat.rsplit_once(')').map(|x| x.1) else { return false };
        let Some(ppid) = rest.split_whitespace().nth(1).and_then(|x| x.parse::<u32>().ok()) else {
            return false;
        };
        p = ppid;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gpus() -> Vec<GpuProcesses> {
        vec![
            GpuProcesses::new("nvml/0", Some("GPU-aaa".into()), Some(vec![100, 555])),
            GpuProcesses::new("nvml/1", Some("GPU-bbb".into()), Some(vec![201])),
            GpuProcesses::new("nvml/2", Some("GPU-ccc".into()), Some(vec![])),
        ]
    }

    #[test]
    fn by_pid_tree_then_visible_then_all() {
        // 201 is a child of the server 200 (a tensor-parallel worker).
        let tree = |pid: u32, root: u32| pid == 201 && root == 200;
        let s = select_gpus(&gpus(), &[200], &[], &tree);
        assert_eq!(s.server, vec!["nvml/1"]);
        assert_eq!(s.others, vec!["nvml/0", "nvml/2"]);
        assert_eq!(s.basis, SelectionBasis::ServerProcesses);
        let s = select_gpus(&gpus(), &[999], &["GPU-cc".into()], &tree);
        assert_eq!(
            (s.server.clone(), s.basis.clone()),
            (vec!["nvml/2".into()], SelectionBasis::VisibleDevices)
        );
        assert!(s.notes[0].contains("999"));
        let s = select_gpus(&gpus(), &[], &[], &tree);
        assert_eq!(s.server.len(), 3);
        assert_eq!(s.basis, SelectionBasis::All);
    }

    #[test]
    fn own_process_is_its_own_descendant() {
        let me = std::process::id();
        assert!(proc_is_descendant(me, me));
        if std::path::Path::new("/proc/self/stat").exists() {
            assert!(proc_is_descendant(me, 1) || !std::path::Path::new("/proc/1").exists());
        }
    }
}
