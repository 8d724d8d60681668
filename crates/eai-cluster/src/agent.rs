//! `eai agent`: a per-node process that samples the node's GPUs and CPUs with `eai-power`'s
//! [`Meter`] and serves windows, the trace, health and Prometheus counters over HTTP.
//!
//! | method and path | what |
//! |---|---|
//! | `GET /v1/health` | host, version, clock, sources, read statistics, open windows ([`AgentHealth`]) |
//! | `GET /v1/time` | the agent clock at receipt and at reply ([`TimeStamps`]), for offset estimation |
//! | `POST /v1/windows/{name}/begin` | opens a window now ([`WindowBegin`]); 409 if open |
//! | `POST /v1/windows/{name}/end` | closes it and returns it ([`AgentWindow`]) |
//! | `GET /v1/windows/{name}` | the window: final, or so far if still open (`open: true`) |
//! | `GET /v1/range?name=&from_unix_ns=&to_unix_ns=` | a window between two agent-clock times |
//! | `GET /v1/trace[?from_unix_ns=&to_unix_ns=]` | recorded samples ([`AgentTrace`]: timeline plus its clock anchor), all or in a range |
//! | `GET /metrics` | energy and power per source in Prometheus text format 0.0.4 |
//!
//! Every route requires `Authorization: Bearer <token>` when a token is set (compared in
//! constant time); the agent's clock is the host's wall clock in ns since the Unix epoch.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use eai_power::{
    ChannelStats, Domain, Measurement, Meter, MeterConfig, PowerSource, Provenance, SourceInfo,
    Timeline, WindowId,
};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::http::{Handler, Request, Response, Server, token_matches};
use crate::prom::{CONTENT_TYPE, MetricType, PromWriter};

/// Agent settings.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct AgentConfig {
    /// Address to listen on (default `0.0.0.0:9464`; port 0 picks a free port).
    pub listen: String,
    /// Bearer token required on every request. `None` only when explicitly allowed.
    pub token: Option<String>,
    /// The name this node reports (default: the host name).
    pub host: String,
    /// Sampler settings.
    pub meter: MeterConfig,
    /// Shift of the agent's clock in ns (tests of offset estimation only; default 0).
    pub clock_shift_ns: i64,
    /// How far behind real time the Prometheus energy totals are computed (default 3 s, so
    /// the counter reads that bracket the end have landed).
    pub metrics_lag: Duration,
}

impl AgentConfig {
    /// Defaults with this token.
    pub fn new(token: Option<String>) -> Self {
        Self {
            listen: "0.0.0.0:9464".into(),
            token,
            host: host_name(),
            meter: MeterConfig::new(),
            clock_shift_ns: 0,
            metrics_lag: Duration::from_secs(3),
        }
    }

    /// Sets the listen address.
    pub fn listen(mut self, a: impl Into<String>) -> Self {
        self.listen = a.into();
        self
    }

    /// Sets the reported host name.
    pub fn host(mut self, h: impl Into<String>) -> Self {
        self.host = h.into();
        self
    }

    /// Sets the sampler settings.
    pub fn meter(mut self, m: MeterConfig) -> Self {
        self.meter = m;
        self
    }

    /// Shifts the agent's clock (tests).
    pub fn clock_shift_ns(mut self, ns: i64) -> Self {
        self.clock_shift_ns = ns;
        self
    }
}

/// This machine's host name (`$HOSTNAME`, `/etc/hostname`, else `localhost`).
pub fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.trim().is_empty())
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// `GET /v1/time`: the agent clock when the request had been read and just before replying.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TimeStamps {
    /// Receipt, ns since the Unix epoch (agent clock).
    pub receive_unix_ns: i64,
    /// Reply, ns since the Unix epoch (agent clock).
    pub send_unix_ns: i64,
}

/// `POST /v1/windows/{name}/begin`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct WindowBegin {
    /// The agent's host name.
    pub host: String,
    /// The window.
    pub name: String,
    /// When it began (agent clock, ns).
    pub start_unix_ns: i64,
}

/// A window as an agent reports it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AgentWindow {
    /// The agent's host name.
    pub host: String,
    /// The window.
    pub name: String,
    /// Start, agent clock (ns since the Unix epoch).
    pub start_unix_ns: i64,
    /// End (or "now" for an open window), agent clock.
    pub end_unix_ns: i64,
    /// Still open: the energy so far.
    pub open: bool,
    /// Every source's energy by every method, with flags.
    pub measurement: Measurement,
}

/// `GET /v1/health`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AgentHealth {
    /// Host name.
    pub host: String,
    /// `eai-cluster` version.
    pub version: String,
    /// Agent clock now.
    pub now_unix_ns: i64,
    /// Seconds since the agent started.
    pub uptime_s: f64,
    /// The sources sampled.
    pub sources: Vec<SourceInfo>,
    /// Read statistics per channel.
    pub stats: Vec<ChannelStats>,
    /// Names of open windows.
    pub open_windows: Vec<String>,
}

/// `GET /v1/trace`: the timeline and the agent-clock time of its anchor (`t_ns = 0`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AgentTrace {
    /// Host name.
    pub host: String,
    /// Agent clock (ns since the Unix epoch) at the timeline's `t_ns = 0`.
    pub anchor_unix_ns: i64,
    /// Every sample recorded.
    pub timeline: Timeline,
}

#[derive(Debug)]
struct Win {
    id: WindowId,
    start_unix_ns: i64,
    begin: Instant,
    done: Option<AgentWindow>,
}

#[derive(Debug)]
struct Totals {
    upto: Instant,
    upto_unix_ns: i64,
    energy: Vec<f64>,
    power: Vec<Option<f64>>,
}

#[derive(Debug)]
struct Inner {
    meter: RwLock<Option<Meter>>,
    sources: Vec<SourceInfo>,
    host: String,
    token: Option<String>,
    shift_ns: i64,
    started: Instant,
    windows: Mutex<HashMap<String, Win>>,
    totals: Mutex<Totals>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn unix_ns(t: SystemTime) -> i64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => d.as_nanos().min(i64::MAX as u128) as i64,
        Err(e) => -(e.duration().as_nanos().min(i64::MAX as u128) as i64),
    }
}

impl Inner {
    fn now_unix(&self) -> i64 {
        unix_ns(SystemTime::now()).saturating_add(self.shift_ns)
    }

    fn unix_of(&self, t: Instant) -> i64 {
        let (ni, nu) = (Instant::now(), self.now_unix());
        if t <= ni {
            nu - ni.duration_since(t).as_nanos() as i64
        } else {
            nu + t.duration_since(ni).as_nanos() as i64
        }
    }

    fn instant_of(&self, unix: i64) -> Option<Instant> {
        let (ni, nu) = (Instant::now(), self.now_unix());
        let d = nu.checked_sub(unix)?;
        if d >= 0 {
            ni.checked_sub(Duration::from_nanos(d as u64))
        } else {
            ni.checked_add(Duration::from_nanos(d.unsigned_abs()))
        }
    }

    fn with_meter<T>(&self, f: impl FnOnce(&Meter) -> T) -> Option<T> {
        let g = self.meter.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        g.as_ref().map(f)
    }
}

/// A running agent: sampler plus HTTP server.
#[derive(Debug)]
pub struct Agent {
    server: Server,
    inner: Arc<Inner>,
    stop: Arc<AtomicBool>,
    totals: Option<JoinHandle<()>>,
}

impl Agent {
    /// Starts sampling `sources` and serving on `cfg.listen`.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for a missing host name or an empty token, meter start errors,
    /// [`Error::Bind`].
    pub fn start(sources: Vec<Box<dyn PowerSource>>, cfg: AgentConfig) -> Result<Self> {
        if cfg.token.as_deref().is_some_and(|t| t.trim().is_empty()) {
            return Err(Error::Config { field: "token", reason: "the token is empty".into() });
        }
        let meter = Meter::start(sources, cfg.meter)?;
        let sources = meter.sources().to_vec();
        let n = sources.len();
        let started = Instant::now();
        let inner = Arc::new(Inner {
            meter: RwLock::new(Some(meter)),
            sources,
            host: cfg.host.clone(),
            token: cfg.token.clone(),
            shift_ns: cfg.clock_shift_ns,
            started,
            windows: Mutex::new(HashMap::new()),
            totals: Mutex::new(Totals {
                upto: started,
                upto_unix_ns: 0,
                energy: vec![0.0; n],
                power: vec![None; n],
            }),
        });
        lock(&inner.totals).upto_unix_ns = inner.unix_of(started);
        let h = Arc::clone(&inner);
        let handler: Handler = Arc::new(move |req: &Request| handle(&h, req));
        let server = Server::start(&cfg.listen, handler)?;
        let stop = Arc::new(AtomicBool::new(false));
        let (i2, s2, lag) = (Arc::clone(&inner), Arc::clone(&stop), cfg.metrics_lag);
        let totals = std::thread::Builder::new()
            .name("eai-agent-totals".into())
            .spawn(move || totals_loop(&i2, &s2, lag))
            .map_err(|e| Error::Bind { addr: cfg.listen.clone(), source: e })?;
        tracing::info!(addr = %server.addr(), host = %cfg.host, "eai agent listening");
        Ok(Self { server, inner, stop, totals: Some(totals) })
    }

    /// The bound address.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.server.addr()
    }

    /// `http://addr` (with `0.0.0.0` replaced by `127.0.0.1`).
    pub fn url(&self) -> String {
        let a = self.addr();
        if a.ip().is_unspecified() {
            format!("http://127.0.0.1:{}", a.port())
        } else {
            format!("http://{a}")
        }
    }

    /// Stops serving and sampling; returns the whole session.
    ///
    /// # Errors
    ///
    /// Meter errors.
    pub fn stop(mut self) -> Result<eai_power::Session> {
        self.halt();
        let m = self.inner.meter.write().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        match m {
            Some(m) => Ok(m.stop()?),
            None => Err(Error::Config { field: "agent", reason: "already stopped".into() }),
        }
    }

    /// Stops at once, as a crash would: the port closes and nothing is computed (tests of
    /// an agent lost mid-window).
    pub fn kill(mut self) {
        self.halt();
        drop(self.inner.meter.write().unwrap_or_else(std::sync::PoisonError::into_inner).take());
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.server.stop();
        if let Some(t) = self.totals.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.halt();
    }
}

/// Accumulates per-source energy since start, `lag` behind real time, for `/metrics`.
fn totals_loop(inner: &Inner, stop: &AtomicBool, lag: Duration) {
    while !stop.load(Ordering::SeqCst) {
        std::thread::park_timeout(Duration::from_secs(1));
        let Some(t) = Instant::now().checked_sub(lag) else { continue };
        let upto = lock(&inner.totals).upto;
        if t <= upto + Duration::from_millis(500) {
            continue;
        }
        let Some(Ok(m)) = inner.with_meter(|m| m.window_between("metrics", upto, t)) else {
            continue;
        };
        let mut tot = lock(&inner.totals);
        for (i, d) in m.devices.iter().enumerate() {
            if let (Some(e), Some(slot)) = (d.energy, tot.energy.get_mut(i)) {
                *slot += e.0.max(0.0);
            }
            if let Some(p) = tot.power.get_mut(i) {
                *p = d.mean_power.map(|w| w.0);
            }
        }
        tot.upto = t;
        tot.upto_unix_ns = inner.unix_of(t);
    }
}

fn domain_str(d: &Domain) -> String {
    match d {
        Domain::Gpu => "gpu".into(),
        Domain::GpuModule => "gpu_module".into(),
        Domain::CpuPackage { package } => format!("cpu_package_{package}"),
        Domain::CpuCores { package } => format!("cpu_cores_{package}"),
        Domain::Uncore { package } => format!("uncore_{package}"),
        Domain::Dram { package } => format!("dram_{package}"),
        Domain::Psys => "psys".into(),
        Domain::Other { name } => name.clone(),
        _ => "other".into(),
    }
}

fn provenance_str(p: Provenance) -> &'static str {
    match p {
        Provenance::Measured => "measured",
        Provenance::Replayed => "replayed",
        Provenance::Constant => "constant",
        _ => "synthetic",
    }
}

fn handle(inner: &Inner, req: &Request) -> Response {
    if let Some(expected) = &inner.token {
        let presented = req.header("authorization").and_then(|v| {
            let (scheme, tok) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| tok.trim())
        });
        if !presented.is_some_and(|p| token_matches(p, expected)) {
            return Response::error(401, "missing or wrong bearer token");
        }
    }
    let seg = req.segments();
    let seg: Vec<&str> = seg.iter().map(String::as_str).collect();
    match (req.method.as_str(), seg.as_slice()) {
        ("GET", ["v1", "time"]) => {
            let receive = unix_ns(req.received).saturating_add(inner.shift_ns);
            Response::json(
                200,
                &TimeStamps { receive_unix_ns: receive, send_unix_ns: inner.now_unix() },
            )
        }
        ("GET", ["v1", "health"]) => health(inner),
        ("POST", ["v1", "windows", name, "begin"]) => begin(inner, name),
        ("POST", ["v1", "windows", name, "end"]) => end(inner, name),
        ("GET", ["v1", "windows", name]) => window(inner, name),
        ("GET", ["v1", "range"]) => range(inner, req),
        ("GET", ["v1", "trace"]) => trace(inner, req),
        ("GET", ["metrics"]) => metrics(inner),
        (_, ["v1", ..] | ["metrics"]) => Response::error(405, "method not allowed"),
        _ => Response::error(404, "no such route (see GET /v1/health)"),
    }
}

fn health(inner: &Inner) -> Response {
    let Some(stats) = inner.with_meter(Meter::stats) else {
        return Response::error(500, "agent is stopping");
    };
    let open = lock(&inner.windows)
        .iter()
        .filter(|(_, w)| w.done.is_none())
        .map(|(n, _)| n.clone())
        .collect();
    Response::json(
        200,
        &AgentHealth {
            host: inner.host.clone(),
            version: env!("CARGO_PKG_VERSION").into(),
            now_unix_ns: inner.now_unix(),
            uptime_s: inner.started.elapsed().as_secs_f64(),
            sources: inner.sources.clone(),
            stats,
            open_windows: open,
        },
    )
}

fn begin(inner: &Inner, name: &str) -> Response {
    if name.is_empty() || name.len() > 256 {
        return Response::error(400, "window names are 1 to 256 bytes");
    }
    let mut w = lock(&inner.windows);
    if w.get(name).is_some_and(|x| x.done.is_none()) {
        return Response::error(409, &format!("window `{name}` is already open"));
    }
    let Some(id) = inner.with_meter(|m| m.begin(name)) else {
        return Response::error(500, "agent is stopping");
    };
    let begin = Instant::now();
    let start_unix_ns = inner.unix_of(begin);
    w.insert(name.to_string(), Win { id, start_unix_ns, begin, done: None });
    Response::json(
        200,
        &WindowBegin { host: inner.host.clone(), name: name.to_string(), start_unix_ns },
    )
}

fn end(inner: &Inner, name: &str) -> Response {
    let (id, start_unix_ns) = {
        let w = lock(&inner.windows);
        match w.get(name) {
            Some(x) if x.done.is_none() => (x.id, x.start_unix_ns),
            Some(_) => return Response::error(409, &format!("window `{name}` has already ended")),
            None => return Response::error(404, &format!("no window `{name}`")),
        }
    };
    let end_unix_ns = inner.now_unix();
    let r = inner.with_meter(|m| m.end(id).and_then(|()| m.measurement(id)));
    let m = match r {
        Some(Ok(m)) => m,
        Some(Err(e)) => return Response::error(500, &e.to_string()),
        None => return Response::error(500, "agent is stopping"),
    };
    let aw = AgentWindow {
        host: inner.host.clone(),
        name: name.to_string(),
        start_unix_ns,
        end_unix_ns,
        open: false,
        measurement: m,
    };
    if let Some(x) = lock(&inner.windows).get_mut(name) {
        x.done = Some(aw.clone());
    }
    Response::json(200, &aw)
}

fn window(inner: &Inner, name: &str) -> Response {
    let (begin, start_unix_ns) = {
        let w = lock(&inner.windows);
        match w.get(name) {
            Some(x) => match &x.done {
                Some(done) => return Response::json(200, done),
                None => (x.begin, x.start_unix_ns),
            },
            None => return Response::error(404, &format!("no window `{name}`")),
        }
    };
    let now = Instant::now();
    match inner.with_meter(|m| m.window_between(name, begin, now)) {
        Some(Ok(m)) => Response::json(
            200,
            &AgentWindow {
                host: inner.host.clone(),
                name: name.to_string(),
                start_unix_ns,
                end_unix_ns: inner.unix_of(now),
                open: true,
                measurement: m,
            },
        ),
        Some(Err(e)) => Response::error(500, &e.to_string()),
        None => Response::error(500, "agent is stopping"),
    }
}

fn range(inner: &Inner, req: &Request) -> Response {
    let num = |k: &str| req.query(k).and_then(|v| v.parse::<i64>().ok());
    let (Some(from), Some(to)) = (num("from_unix_ns"), num("to_unix_ns")) else {
        return Response::error(400, "need integer from_unix_ns and to_unix_ns (agent clock)");
    };
    let name = req.query("name").unwrap_or("range").to_string();
    if to <= from {
        return Response::error(400, "to_unix_ns must be after from_unix_ns");
    }
    let now = inner.now_unix();
    if to > now {
        return Response::error(
            400,
            &format!(
                "the range ends {} ms in the future (agent clock {now})",
                (to - now) / 1_000_000
            ),
        );
    }
    let (Some(a), Some(b)) = (inner.instant_of(from), inner.instant_of(to)) else {
        return Response::error(400, "the range lies before this agent's clock can express");
    };
    match inner.with_meter(|m| m.window_between(&name, a, b)) {
        Some(Ok(m)) => Response::json(
            200,
            &AgentWindow {
                host: inner.host.clone(),
                name,
                start_unix_ns: from,
                end_unix_ns: to,
                open: false,
                measurement: m,
            },
        ),
        Some(Err(e)) => Response::error(400, &e.to_string()),
        None => Response::error(500, "agent is stopping"),
    }
}

fn trace(inner: &Inner, req: &Request) -> Response {
    let Some((mut tl, now_ns)) = inner.with_meter(|m| (m.timeline(), m.now_ns())) else {
        return Response::error(500, "agent is stopping");
    };
    let anchor_unix_ns = inner.now_unix() - now_ns as i64;
    // Optional agent-clock range: keep only samples inside it.
    let num = |k: &str| req.query(k).and_then(|v| v.parse::<i64>().ok());
    if num("from_unix_ns").is_some() || num("to_unix_ns").is_some() {
        let lo = num("from_unix_ns").map_or(0, |f| (f - anchor_unix_ns).max(0) as u64);
        let hi = num("to_unix_ns").map_or(u64::MAX, |t| (t - anchor_unix_ns).max(0) as u64);
        for c in &mut tl.channels {
            c.samples.retain(|s| s.t_ns >= lo && s.t_ns <= hi);
        }
        tl.status.retain(|s| s.t_ns >= lo && s.t_ns <= hi);
    }
    Response::json(200, &AgentTrace { host: inner.host.clone(), anchor_unix_ns, timeline: tl })
}

fn metrics(inner: &Inner) -> Response {
    let tot = lock(&inner.totals);
    let stats = inner.with_meter(Meter::stats).unwrap_or_default();
    let host = inner.host.as_str();
    let mut w = PromWriter::new();
    let labels = |s: &SourceInfo| {
        vec![
            ("host", host.to_string()),
            ("source", s.id.clone()),
            ("name", s.name.clone()),
            ("domain", domain_str(&s.domain)),
            ("provenance", provenance_str(s.provenance).to_string()),
        ]
    };
    w.family(
        "eai_energy_joules_total",
        MetricType::Counter,
        "Energy since the agent started, per source (counter delta where the source has one), up to eai_energy_upto_unix_seconds.",
    );
    for (i, s) in inner.sources.iter().enumerate() {
        let l = labels(s);
        let l: Vec<(&str, &str)> = l.iter().map(|(k, v)| (*k, v.as_str())).collect();
        w.sample("eai_energy_joules_total", &l, tot.energy.get(i).copied().unwrap_or(0.0));
    }
    w.family(
        "eai_power_watts",
        MetricType::Gauge,
        "Mean power over the last accounted interval, per source.",
    );
    for (i, s) in inner.sources.iter().enumerate() {
        if let Some(Some(p)) = tot.power.get(i) {
            let l = labels(s);
            let l: Vec<(&str, &str)> = l.iter().map(|(k, v)| (*k, v.as_str())).collect();
            w.sample("eai_power_watts", &l, *p);
        }
    }
    w.family(
        "eai_energy_upto_unix_seconds",
        MetricType::Gauge,
        "Agent-clock time up to which eai_energy_joules_total is accounted.",
    );
    w.sample("eai_energy_upto_unix_seconds", &[("host", host)], tot.upto_unix_ns as f64 * 1e-9);
    w.family(
        "eai_sampler_reads_total",
        MetricType::Counter,
        "Successful sensor reads per source and signal.",
    );
    for s in &stats {
        let sig = s.signal.map_or("none", |x| x.as_str());
        w.sample(
            "eai_sampler_reads_total",
            &[("host", host), ("source", &s.source), ("signal", sig)],
            s.reads as f64,
        );
    }
    let open = lock(&inner.windows).values().filter(|x| x.done.is_none()).count();
    w.family("eai_agent_open_windows", MetricType::Gauge, "Windows begun and not ended.");
    w.sample("eai_agent_open_windows", &[("host", host)], open as f64);
    w.family("eai_agent_up", MetricType::Gauge, "1 while the agent samples.");
    w.sample("eai_agent_up", &[("host", host)], 1.0);
    Response::text(200, CONTENT_TYPE, w.finish())
}
