//! Processes a measured command left behind: found through `/proc` (Linux), so that
//! `eai measure` can wait for them (their energy belongs to the command) or name them.

use std::collections::HashMap;

/// A process still running, found by [`descendants`].
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct ProcessInfo {
    /// Its process id.
    pub pid: u32,
    /// Its name (`/proc/PID/comm`).
    pub name: String,
    /// Its process group.
    pub group: u32,
}

impl std::fmt::Display for ProcessInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.pid, self.name)
    }
}

/// One `/proc/PID/stat` line: pid, name, state, parent, process group.
fn stat(pid: u32) -> Option<(String, char, u32, u32)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid pgrp …`; comm may hold spaces and parentheses.
    let open = s.find('(')?;
    let close = s.rfind(')')?;
    let name = s.get(open + 1..close)?.to_string();
    let mut rest = s.get(close + 1..)?.split_whitespace();
    let state = rest.next()?.chars().next()?;
    let ppid = rest.next()?.parse().ok()?;
    let pgrp = rest.next()?.parse().ok()?;
    Some((name, state, ppid, pgrp))
}

/// The live processes (zombies excluded) that are in process group `pgid` or descend from
/// this process, other than this process. A descendant whose parent exited is re-parented to
/// the nearest subreaper (`eai measure` makes itself one on Linux, so such orphans stay its
/// descendants) or to init; one that left the group and was re-parented to init is not seen.
///
/// Empty where `/proc` is not readable (other systems): nothing is claimed then.
pub fn descendants(pgid: Option<u32>) -> Vec<ProcessInfo> {
    let me = std::process::id();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut all: HashMap<u32, (String, char, u32, u32)> = HashMap::new();
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        if let Some(st) = stat(pid) {
            all.insert(pid, st);
        }
    }
    let descends = |mut pid: u32| {
        // Bounded walk up the parent chain (a cycle is impossible, but /proc is read racily).
        for _ in 0..4096 {
            match all.get(&pid) {
                Some(&(_, _, ppid, _)) if ppid == me => return true,
                Some(&(_, _, ppid, _)) if ppid > 1 => pid = ppid,
                _ => return false,
            }
        }
        false
    };
    let mut out: Vec<ProcessInfo> = all
        .iter()
        .filter(|&(&pid, (_, state, _, pgrp))| {
            pid != me && *state != 'Z' && *state != 'X' && (Some(*pgrp) == pgid || descends(pid))
        })
        .map(|(&pid, (name, _, _, pgrp))| ProcessInfo { pid, name: name.clone(), group: *pgrp })
        .collect();
    out.sort_by_key(|p| p.pid);
    out
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn a_child_is_a_descendant_until_it_exits() {
        let mut c = std::process::Command::new("sleep").arg("5").spawn().unwrap();
        let d = descendants(None);
        assert!(d.iter().any(|p| p.pid == c.id() && p.name == "sleep"), "{d:?}");
        c.kill().unwrap();
        c.wait().unwrap();
        assert!(!descendants(None).iter().any(|p| p.pid == c.id()));
    }
}
