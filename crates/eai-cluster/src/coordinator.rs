//! The coordinator: talks to many agents, estimates each one's clock offset, opens and closes
//! windows on all of them, sums their energy, and flags (never drops) an agent that is lost.
//!
//! Clock offsets are estimated as NTP does: the coordinator sends at `t0`, the agent stamps
//! receipt `t1` and reply `t2` on its clock, the coordinator receives at `t3`; offset
//! `θ = ((t1 − t0) + (t2 − t3)) / 2`, round-trip delay `δ = (t3 − t0) − (t2 − t1)`. Whatever
//! the asymmetry of the two legs, the true offset lies within `δ / 2` of `θ`, so `δ / 2` is
//! the stated uncertainty; of several probes the one with the smallest `δ` is kept.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use eai_core::Joules;
use serde::{Deserialize, Serialize};

use crate::agent::{AgentHealth, AgentTrace, AgentWindow, TimeStamps, WindowBegin};
use crate::error::{Error, Result};
use crate::http::{self, percent_encode};

/// An agent to talk to.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AgentSpec {
    /// Base URL, e.g. `http://node-1:9464`.
    pub url: String,
    /// Its bearer token.
    pub token: Option<String>,
}

impl AgentSpec {
    /// An agent at `url` with `token`.
    pub fn new(url: impl Into<String>, token: Option<String>) -> Self {
        Self { url: url.into().trim_end_matches('/').to_string(), token }
    }
}

/// An agent clock's offset from the coordinator's: `agent = coordinator + offset_ns`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ClockOffset {
    /// Estimated offset, ns.
    pub offset_ns: i64,
    /// Half the round-trip delay of the probe used: the true offset is within this, ns.
    pub uncertainty_ns: i64,
    /// Round-trip delay of the probe used, ns.
    pub rtt_ns: i64,
    /// Probes sent.
    pub probes: u32,
}

/// Why an agent's energy is missing or partial.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AgentLost {
    /// The error of the failed request.
    pub error: String,
    /// Coordinator time of the last successful contact during the window, ns.
    pub last_contact_unix_ns: Option<i64>,
}

/// One agent's part of a cluster window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AgentOutcome {
    /// The agent's URL.
    pub url: String,
    /// Its host name, when known.
    pub host: Option<String>,
    /// Its clock offset, when estimated.
    pub offset: Option<ClockOffset>,
    /// The window as the agent reported it (for a lost agent: the last partial one polled,
    /// `open: true`).
    pub window: Option<AgentWindow>,
    /// Energy of this agent's sources (partial for a lost agent), J.
    pub energy: Option<Joules>,
    /// The window's edges on the coordinator's clock (agent edges minus the offset), ns.
    pub edges_coordinator_ns: Option<(i64, i64)>,
    /// Set when the agent was lost during the window (its energy is partial or missing).
    pub lost: Option<AgentLost>,
}

/// A flag on a cluster window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "flag")]
#[non_exhaustive]
pub enum ClusterFlag {
    /// An agent could not be reached at the end (or the beginning) of the window: its energy
    /// is the last partial value polled, or missing. It stays in the result.
    AgentLost {
        /// The agent.
        url: String,
    },
    /// An agent's clock offset was not estimated: its range edges assume offset 0.
    NoClockOffset {
        /// The agent.
        url: String,
    },
}

/// A window over every agent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ClusterWindow {
    /// The window's name.
    pub name: String,
    /// Sum of every agent's energy (partial ones included); `None` when no agent has any.
    pub energy: Option<Joules>,
    /// Root-sum-square of the sources' one-sigma uncertainties where they state one.
    pub uncertainty: Option<Joules>,
    /// Whether every agent reported a complete window.
    pub complete: bool,
    /// Per agent, in the order given, lost ones included.
    pub agents: Vec<AgentOutcome>,
    /// Flags.
    pub flags: Vec<ClusterFlag>,
}

impl ClusterWindow {
    /// Whether a flag of this kind is set.
    pub fn has(&self, flag: &ClusterFlag) -> bool {
        self.flags.iter().any(|f| std::mem::discriminant(f) == std::mem::discriminant(flag))
    }
}

#[derive(Debug, Default)]
struct Slot {
    host: Option<String>,
    offset: Option<ClockOffset>,
    /// Latest partial window per name, with the coordinator time it was fetched.
    partial: HashMap<String, (i64, AgentWindow)>,
    /// Begin failures per window name.
    begin_error: HashMap<String, String>,
}

/// Talks to a set of agents.
#[derive(Debug)]
pub struct Coordinator {
    agents: Vec<AgentSpec>,
    slots: Vec<Mutex<Slot>>,
    timeout: Duration,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The coordinator's clock: ns since the Unix epoch.
pub fn now_unix_ns() -> i64 {
    match SystemTime::now().duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => d.as_nanos().min(i64::MAX as u128) as i64,
        Err(_) => 0,
    }
}

fn json<T: for<'de> Deserialize<'de>>(url: &str, body: &[u8]) -> Result<T> {
    serde_json::from_slice(body).map_err(|e| Error::Json { what: format!("from {url}"), source: e })
}

impl Coordinator {
    /// A coordinator for `agents` with a 30 s request timeout (window ends wait for the
    /// agents' settle time).
    pub fn new(agents: Vec<AgentSpec>) -> Self {
        let slots = agents.iter().map(|_| Mutex::new(Slot::default())).collect();
        Self { agents, slots, timeout: Duration::from_secs(30) }
    }

    /// Sets the per-request timeout.
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = d;
        self
    }

    /// The agents.
    pub fn agents(&self) -> &[AgentSpec] {
        &self.agents
    }

    fn call(&self, i: usize, method: &str, path: &str) -> Result<Vec<u8>> {
        let a = &self.agents[i];
        let url = format!("{}{path}", a.url);
        let r = http::request(method, &url, a.token.as_deref(), None, self.timeout)?;
        http::expect_ok(&url, r)
    }

    /// Runs `f` for every agent in parallel, results in agent order.
    fn each<T: Send>(&self, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
        std::thread::scope(|s| {
            let hs: Vec<_> = (0..self.agents.len())
                .map(|i| {
                    s.spawn({
                        let f = &f;
                        move || f(i)
                    })
                })
                .collect();
            hs.into_iter().enumerate().map(|(i, h)| h.join().unwrap_or_else(|_| f(i))).collect()
        })
    }

    /// Estimates every agent's clock offset from `probes` round trips each (the one with the
    /// smallest delay is kept). Agents that cannot be reached keep no offset.
    pub fn sync(&self, probes: u32) -> Vec<Result<ClockOffset>> {
        let probes = probes.max(1);
        self.each(|i| {
            let mut best: Option<ClockOffset> = None;
            let mut last_err = None;
            for _ in 0..probes {
                let t0 = now_unix_ns();
                let r = self.call(i, "GET", "/v1/time");
                let t3 = now_unix_ns();
                let ts: TimeStamps = match r.and_then(|b| json(&self.agents[i].url, &b)) {
                    Ok(ts) => ts,
                    Err(e) => {
                        last_err = Some(e);
                        continue;
                    }
                };
                let (t0, t1, t2, t3) = (
                    i128::from(t0),
                    i128::from(ts.receive_unix_ns),
                    i128::from(ts.send_unix_ns),
                    i128::from(t3),
                );
                let delay = ((t3 - t0) - (t2 - t1)).max(0);
                let theta = ((t1 - t0) + (t2 - t3)) / 2;
                let cand = ClockOffset {
                    offset_ns: theta as i64,
                    uncertainty_ns: ((delay + 1) / 2) as i64,
                    rtt_ns: delay as i64,
                    probes,
                };
                if best.is_none_or(|b| cand.rtt_ns < b.rtt_ns) {
                    best = Some(cand);
                }
            }
            match best {
                Some(b) => {
                    lock(&self.slots[i]).offset = Some(b);
                    Ok(b)
                }
                None => Err(last_err
                    .unwrap_or(Error::Config { field: "probes", reason: "none sent".into() })),
            }
        })
    }

    /// Agent `i`'s whole trace (every sample it recorded, with its clock anchor).
    ///
    /// # Errors
    ///
    /// HTTP errors, [`Error::Config`] for an index out of range.
    pub fn trace(&self, i: usize) -> Result<AgentTrace> {
        if i >= self.agents.len() {
            return Err(Error::Config {
                field: "agent index",
                reason: format!("{i} of {}", self.agents.len()),
            });
        }
        json(&self.agents[i].url, &self.call(i, "GET", "/v1/trace")?)
    }

    /// Agent `i`'s samples between two instants of the coordinator's clock (translated with
    /// the agent's offset when estimated).
    ///
    /// # Errors
    ///
    /// As [`Coordinator::trace`].
    pub fn trace_range(&self, i: usize, from_unix_ns: i64, to_unix_ns: i64) -> Result<AgentTrace> {
        if i >= self.agents.len() {
            return Err(Error::Config {
                field: "agent index",
                reason: format!("{i} of {}", self.agents.len()),
            });
        }
        let off = lock(&self.slots[i]).offset.map_or(0, |o| o.offset_ns);
        let path = format!(
            "/v1/trace?from_unix_ns={}&to_unix_ns={}",
            from_unix_ns + off,
            to_unix_ns + off
        );
        json(&self.agents[i].url, &self.call(i, "GET", &path)?)
    }

    /// Agent `i`'s health.
    ///
    /// # Errors
    ///
    /// As [`Coordinator::trace`].
    pub fn health(&self, i: usize) -> Result<AgentHealth> {
        if i >= self.agents.len() {
            return Err(Error::Config {
                field: "agent index",
                reason: format!("{i} of {}", self.agents.len()),
            });
        }
        json(&self.agents[i].url, &self.call(i, "GET", "/v1/health")?)
    }

    /// The offsets estimated so far.
    pub fn offsets(&self) -> Vec<Option<ClockOffset>> {
        self.slots.iter().map(|s| lock(s).offset).collect()
    }

    /// Opens window `name` on every agent (in parallel). Failures are remembered and reported
    /// by [`Coordinator::end`]; the agents that answered are open.
    pub fn begin(&self, name: &str) -> Vec<Result<WindowBegin>> {
        let path = format!("/v1/windows/{}/begin", percent_encode(name));
        self.each(|i| {
            let r = self
                .call(i, "POST", &path)
                .and_then(|b| json::<WindowBegin>(&self.agents[i].url, &b));
            let mut s = lock(&self.slots[i]);
            match &r {
                Ok(b) => {
                    s.host = Some(b.host.clone());
                    s.begin_error.remove(name);
                }
                Err(e) => {
                    s.begin_error.insert(name.to_string(), e.to_string());
                }
            }
            r
        })
    }

    /// Polls every agent for window `name` so far. Call it now and then during long windows:
    /// an agent lost later still contributes its energy up to the last poll.
    pub fn heartbeat(&self, name: &str) -> Vec<Result<Joules>> {
        let path = format!("/v1/windows/{}", percent_encode(name));
        self.each(|i| {
            let w: AgentWindow =
                self.call(i, "GET", &path).and_then(|b| json(&self.agents[i].url, &b))?;
            let e = w.measurement.energy().unwrap_or(Joules::ZERO);
            let mut s = lock(&self.slots[i]);
            s.host = Some(w.host.clone());
            s.partial.insert(name.to_string(), (now_unix_ns(), w));
            Ok(e)
        })
    }

    /// Closes window `name` on every agent and sums them. An agent that fails is kept, with
    /// its last polled partial window (if any) and [`ClusterFlag::AgentLost`].
    pub fn end(&self, name: &str) -> ClusterWindow {
        let path = format!("/v1/windows/{}/end", percent_encode(name));
        let results = self.each(|i| {
            let begin_err = lock(&self.slots[i]).begin_error.get(name).cloned();
            match begin_err {
                Some(e) => Err(format!("window did not begin: {e}")),
                None => self
                    .call(i, "POST", &path)
                    .and_then(|b| json::<AgentWindow>(&self.agents[i].url, &b))
                    .map_err(|e| e.to_string()),
            }
        });
        self.assemble(name, results)
    }

    /// A window between two instants of the coordinator's clock (ns since the Unix epoch),
    /// translated to each agent's clock with its estimated offset (run [`Coordinator::sync`]
    /// first; agents without an offset are flagged and assumed at offset 0).
    pub fn measure_range(&self, name: &str, from_unix_ns: i64, to_unix_ns: i64) -> ClusterWindow {
        let results = self.each(|i| {
            let off = lock(&self.slots[i]).offset.map_or(0, |o| o.offset_ns);
            let path = format!(
                "/v1/range?name={}&from_unix_ns={}&to_unix_ns={}",
                percent_encode(name),
                from_unix_ns + off,
                to_unix_ns + off
            );
            self.call(i, "GET", &path)
                .and_then(|b| json::<AgentWindow>(&self.agents[i].url, &b))
                .map_err(|e| e.to_string())
        });
        let mut w = self.assemble(name, results);
        for (i, a) in self.agents.iter().enumerate() {
            if lock(&self.slots[i]).offset.is_none() {
                w.flags.push(ClusterFlag::NoClockOffset { url: a.url.clone() });
            }
        }
        w
    }

    fn assemble(
        &self,
        name: &str,
        results: Vec<std::result::Result<AgentWindow, String>>,
    ) -> ClusterWindow {
        let mut agents = Vec::new();
        let mut flags = Vec::new();
        let (mut total, mut any) = (Joules::ZERO, false);
        let mut var = 0.0;
        let mut any_sigma = false;
        let mut complete = true;
        for (i, r) in results.into_iter().enumerate() {
            let url = self.agents[i].url.clone();
            let mut s = lock(&self.slots[i]);
            let offset = s.offset;
            let (window, lost) = match r {
                Ok(w) => {
                    s.host = Some(w.host.clone());
                    (Some(w), None)
                }
                Err(error) => {
                    complete = false;
                    flags.push(ClusterFlag::AgentLost { url: url.clone() });
                    let p = s.partial.get(name).cloned();
                    let last = p.as_ref().map(|(t, _)| *t);
                    (p.map(|(_, w)| w), Some(AgentLost { error, last_contact_unix_ns: last }))
                }
            };
            s.partial.remove(name);
            let energy = window.as_ref().and_then(|w| w.measurement.energy());
            if let Some(e) = energy {
                total += e;
                any = true;
            }
            if let Some(w) = &window {
                for d in &w.measurement.devices {
                    if let Some(u) = d.uncertainty {
                        var += u.0 * u.0;
                        any_sigma = true;
                    }
                }
            }
            let edges_coordinator_ns = match (&window, offset) {
                (Some(w), Some(o)) => {
                    Some((w.start_unix_ns - o.offset_ns, w.end_unix_ns - o.offset_ns))
                }
                _ => None,
            };
            agents.push(AgentOutcome {
                url,
                host: s.host.clone(),
                offset,
                window,
                energy,
                edges_coordinator_ns,
                lost,
            });
        }
        ClusterWindow {
            name: name.to_string(),
            energy: any.then_some(total),
            uncertainty: any_sigma.then(|| Joules(var.sqrt())),
            complete,
            agents,
            flags,
        }
    }
}

impl std::fmt::Display for ClusterWindow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let j = |e: Option<Joules>| e.map_or("-".into(), |e| format!("{:.3} J", e.0));
        writeln!(
            f,
            "cluster window `{}`: {}{}",
            self.name,
            j(self.energy),
            if self.complete { "" } else { " (INCOMPLETE)" }
        )?;
        for a in &self.agents {
            let host = a.host.as_deref().unwrap_or("?");
            let off = a.offset.map_or("offset -".into(), |o| {
                format!(
                    "offset {:+.3} ms ± {:.3} ms",
                    o.offset_ns as f64 * 1e-6,
                    o.uncertainty_ns as f64 * 1e-6
                )
            });
            writeln!(f, "  {} ({host}): {}  {off}", a.url, j(a.energy))?;
            if let Some(l) = &a.lost {
                writeln!(
                    f,
                    "    LOST: {} (energy is {})",
                    l.error,
                    if a.window.is_some() { "partial, up to the last poll" } else { "missing" }
                )?;
            }
            if let Some(w) = &a.window {
                for d in &w.measurement.devices {
                    writeln!(f, "    {} {} {:?}", d.source, j(d.energy), d.flags)?;
                }
            }
        }
        Ok(())
    }
}
