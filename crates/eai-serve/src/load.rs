//! A load generator for OpenAI-compatible servers: open loop (Poisson arrivals at a rate) or
//! closed loop (N clients, each sending its next request when the previous one ends), every
//! request streamed (server-sent events) so that time to first token, time per output token and
//! each token's arrival are measured on the client.
//!
//! **Steady state, as the ML.ENERGY Benchmark measures it.** A server's ramp-up (its batch
//! filling) and drain (its batch emptying after the last arrival) are not how it runs under
//! sustained load, so neither is measured. The run has three phases: `warmup` (load applied,
//! nothing counted), the steady window of length `measure` (the only interval whose energy,
//! tokens and requests are reported), and the drain (no new requests; in-flight ones finish
//! and are recorded for latency but outside the window). Tokens are attributed to the window by
//! their arrival time, so J/token = window energy / tokens that arrived in the window, and
//! J/response = J/token × mean output tokens per response (ML.ENERGY's definition); the
//! responses completed inside the window give a second, direct figure.
//! [`EdgeMarker`] lets an energy meter timestamp the window's edges as they happen.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::backend::GenerationRoute;
use crate::client::Client;
use crate::error::{Result, ServeError};

/// How requests arrive.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Arrival {
    /// Open loop: Poisson arrivals at `rate` requests per second, whatever the server does.
    Poisson {
        /// Requests per second.
        rate: f64,
        /// Seed of the inter-arrival draws.
        seed: u64,
    },
    /// Closed loop: `clients` concurrent clients, each with one request in flight.
    Closed {
        /// Number of clients.
        clients: usize,
    },
}

impl Arrival {
    /// The load level as one number (requests/s or clients) and its unit.
    pub fn level(&self) -> (f64, &'static str) {
        match *self {
            Arrival::Poisson { rate, .. } => (rate, "req/s"),
            Arrival::Closed { clients } => (clients as f64, "clients"),
        }
    }
}

/// Settings of one load run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LoadConfig {
    /// How requests arrive.
    pub arrival: Arrival,
    /// Which route generates.
    #[serde(skip, default)]
    pub route: GenerationRoute,
    /// Ramp-up excluded from every figure.
    pub warmup: Duration,
    /// The steady window's length (≥ 5 s for NVML energy).
    pub measure: Duration,
    /// `max_tokens` of every request.
    pub max_tokens: usize,
    /// Ask the server to ignore end-of-sequence so every response has `max_tokens` tokens
    /// (a vLLM extension; fixes output length across load levels).
    pub ignore_eos: bool,
    /// Open loop only: most requests in flight; arrivals beyond it are counted as dropped.
    pub max_in_flight: usize,
}

impl LoadConfig {
    /// Defaults: 10 s warm-up, 30 s window, 128 tokens, up to 512 in flight. The drain lasts
    /// until the last request ends, at most the endpoint's timeout.
    pub fn new(arrival: Arrival) -> Self {
        Self {
            arrival,
            route: GenerationRoute::Completions,
            warmup: Duration::from_secs(10),
            measure: Duration::from_secs(30),
            max_tokens: 128,
            ignore_eos: false,
            max_in_flight: 512,
        }
    }

    fn validate(&self) -> Result<()> {
        let bad = |reason: &str| ServeError::Config { field: "load", reason: reason.into() };
        match self.arrival {
            Arrival::Poisson { rate, .. } if !(rate.is_finite() && rate > 0.0) => {
                return Err(bad("the arrival rate must be a positive number"));
            }
            Arrival::Closed { clients: 0 } => return Err(bad("at least one client")),
            _ => {}
        }
        if self.measure.is_zero() || self.max_tokens == 0 || self.max_in_flight == 0 {
            return Err(bad("the window, max tokens and max in flight must be positive"));
        }
        Ok(())
    }
}

/// Timestamps the steady window's edges as they happen (an energy meter's `mark`).
pub trait EdgeMarker: Sync {
    /// Called at the window's begin and end; returns the instant it recorded.
    fn mark(&self) -> Instant;
}

/// Marks with the clock only.
#[derive(Clone, Copy, Debug, Default)]
pub struct ClockMarker;

impl EdgeMarker for ClockMarker {
    fn mark(&self) -> Instant {
        Instant::now()
    }
}

/// One request as the client saw it. Times are seconds since the run's start.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RequestRecord {
    /// Index of the prompt used.
    pub prompt: usize,
    /// When it was sent.
    pub sent: f64,
    /// When the first token arrived.
    pub first_token: Option<f64>,
    /// When the answer ended (or failed).
    pub done: f64,
    /// Output tokens (the server's `usage.completion_tokens` when given, else the number of
    /// streamed chunks that carried text).
    pub output_tokens: u32,
    /// Prompt tokens, when the server reports usage.
    pub prompt_tokens: Option<u32>,
    /// Whether `output_tokens` came from the server's usage (else from counting chunks).
    pub counted_by_usage: bool,
    /// Arrival time of each streamed chunk that carried text.
    pub chunk_times: Vec<f64>,
    /// The failure, if it failed.
    pub error: Option<String>,
}

impl RequestRecord {
    /// Time to first token.
    pub fn ttft(&self) -> Option<f64> {
        self.first_token.map(|f| f - self.sent)
    }

    /// Time per output token after the first: `(last − first) / (tokens − 1)`.
    pub fn tpot(&self) -> Option<f64> {
        let (f, l) = (self.first_token?, *self.chunk_times.last()?);
        (self.output_tokens >= 2 && self.error.is_none())
            .then(|| (l - f) / f64::from(self.output_tokens - 1))
    }

    /// Tokens each streamed chunk stands for (usage tokens spread over the chunks).
    fn weight(&self) -> f64 {
        if self.chunk_times.is_empty() {
            0.0
        } else {
            f64::from(self.output_tokens) / self.chunk_times.len() as f64
        }
    }
}

/// What a run recorded: every request and the window's edges.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LoadRun {
    /// The settings.
    pub config: LoadConfig,
    /// The window's start, seconds since the run's start.
    pub steady_begin: f64,
    /// The window's end, seconds since the run's start.
    pub steady_end: f64,
    /// Every request, in sending order.
    pub requests: Vec<RequestRecord>,
    /// Open-loop arrivals not sent because `max_in_flight` requests were already in flight.
    pub dropped: usize,
    /// The instant the run started (for energy windows; not serialised).
    #[serde(skip)]
    pub start: Option<Instant>,
    /// The instants marked at the window's edges (not serialised).
    #[serde(skip)]
    pub edges: Option<(Instant, Instant)>,
}

/// Percentiles of a latency, seconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Mean.
    pub mean: f64,
    /// Number of values.
    pub n: usize,
}

impl Percentiles {
    /// Linear-interpolated percentiles (NumPy's default); `None` for no values.
    pub fn of(values: &[f64]) -> Option<Self> {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let q = |p: f64| {
            let pos = p * (v.len() - 1) as f64;
            let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
            v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
        };
        Some(Self {
            p50: q(0.5),
            p90: q(0.9),
            p99: q(0.99),
            mean: v.iter().sum::<f64>() / v.len() as f64,
            n: v.len(),
        })
    }
}

/// The steady window's figures (energy comes from the caller's meter; see
/// [`SteadyState::with_energy`]).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SteadyState {
    /// Load level (requests/s or clients).
    pub level: f64,
    /// Unit of the level.
    pub level_unit: String,
    /// Window length, seconds.
    pub window_s: f64,
    /// Output tokens that arrived inside the window.
    pub tokens: f64,
    /// Tokens per second in the window.
    pub tokens_per_s: f64,
    /// Responses that completed inside the window.
    pub responses: usize,
    /// Responses per second in the window.
    pub responses_per_s: f64,
    /// Requests sent inside the window (failed ones included).
    pub sent: usize,
    /// Mean output tokens per successful response (all phases).
    pub mean_output_tokens: f64,
    /// Time to first token of the successful requests sent in the window.
    pub ttft: Option<Percentiles>,
    /// Time per output token of the successful requests sent in the window.
    pub tpot: Option<Percentiles>,
    /// Time-weighted mean of requests in flight during the window.
    pub mean_in_flight: f64,
    /// Fewest requests in flight at any instant of the window.
    pub min_in_flight: usize,
    /// Failed requests (all phases).
    pub errors: usize,
    /// Open-loop arrivals dropped at the in-flight cap.
    pub dropped: usize,
    /// Whether every output-token count came from the server's usage report.
    pub tokens_from_usage: bool,
    /// Energy of the window, joules (set by [`SteadyState::with_energy`]).
    pub energy_j: Option<f64>,
    /// Idle power of the same GPUs, watts (measured apart, not subtracted from `energy_j`).
    pub idle_w: Option<f64>,
    /// Window energy / window tokens.
    pub j_per_token: Option<f64>,
    /// J/token × mean output tokens (ML.ENERGY's energy per response).
    pub j_per_response: Option<f64>,
    /// Window energy / responses completed in the window.
    pub j_per_completed_response: Option<f64>,
    /// (Window energy − idle power × window) / window tokens.
    pub dynamic_j_per_token: Option<f64>,
    /// Mean power in the window, watts.
    pub mean_power_w: Option<f64>,
    /// Why the window may not be a steady state (empty when it looks steady).
    pub warnings: Vec<String>,
}

impl SteadyState {
    /// Adds the window's energy and (optionally) the idle power measured apart.
    pub fn with_energy(mut self, energy_j: f64, idle_w: Option<f64>) -> Self {
        self.energy_j = Some(energy_j);
        self.idle_w = idle_w;
        if self.window_s > 0.0 {
            self.mean_power_w = Some(energy_j / self.window_s);
        }
        if self.tokens > 0.0 {
            let jt = energy_j / self.tokens;
            self.j_per_token = Some(jt);
            self.j_per_response = Some(jt * self.mean_output_tokens);
            self.dynamic_j_per_token = idle_w.map(|w| (energy_j - w * self.window_s) / self.tokens);
        }
        if self.responses > 0 {
            self.j_per_completed_response = Some(energy_j / self.responses as f64);
        }
        self
    }
}

impl LoadRun {
    /// The steady window's client-side figures.
    pub fn steady(&self) -> SteadyState {
        let (b, e) = (self.steady_begin, self.steady_end);
        let w = (e - b).max(0.0);
        let inside = |t: f64| t >= b && t < e;
        let ok: Vec<&RequestRecord> = self.requests.iter().filter(|r| r.error.is_none()).collect();
        let tokens: f64 = self
            .requests
            .iter()
            .map(|r| r.weight() * r.chunk_times.iter().filter(|&&t| inside(t)).count() as f64)
            .sum();
        let responses = ok.iter().filter(|r| inside(r.done)).count();
        let sent = self.requests.iter().filter(|r| inside(r.sent)).count();
        let sent_ok: Vec<&&RequestRecord> = ok.iter().filter(|r| inside(r.sent)).collect();
        let ttft: Vec<f64> = sent_ok.iter().filter_map(|r| r.ttft()).collect();
        let tpot: Vec<f64> = sent_ok.iter().filter_map(|r| r.tpot()).collect();
        let mean_out = if ok.is_empty() {
            0.0
        } else {
            ok.iter().map(|r| f64::from(r.output_tokens)).sum::<f64>() / ok.len() as f64
        };
        // In-flight count over the window: a sweep over send/done events.
        let mut ev: Vec<(f64, i64)> = Vec::new();
        for r in &self.requests {
            ev.push((r.sent, 1));
            ev.push((r.done, -1));
        }
        ev.sort_by(|x, y| x.0.total_cmp(&y.0).then(y.1.cmp(&x.1)));
        let (mut cur, mut area, mut last, mut min) = (0i64, 0.0, b, i64::MAX);
        for &(t, d) in &ev {
            if t >= e {
                break;
            }
            if t > b {
                area += cur as f64 * (t - last.max(b));
                min = min.min(cur);
            }
            cur += d;
            last = t.max(b);
        }
        area += cur as f64 * (e - last.max(b)).max(0.0);
        min = min.min(cur).max(0);
        let (level, unit) = self.config.arrival.level();
        let errors = self.requests.len() - ok.len();
        let mut s = SteadyState {
            level,
            level_unit: unit.to_string(),
            window_s: w,
            tokens,
            tokens_per_s: if w > 0.0 { tokens / w } else { 0.0 },
            responses,
            responses_per_s: if w > 0.0 { responses as f64 / w } else { 0.0 },
            sent,
            mean_output_tokens: mean_out,
            ttft: Percentiles::of(&ttft),
            tpot: Percentiles::of(&tpot),
            mean_in_flight: if w > 0.0 { area / w } else { 0.0 },
            min_in_flight: min as usize,
            errors,
            dropped: self.dropped,
            tokens_from_usage: ok.iter().all(|r| r.counted_by_usage),
            ..SteadyState::default()
        };
        if errors > 0 {
            s.warnings.push(format!("{errors} requests failed"));
        }
        if self.dropped > 0 {
            s.warnings.push(format!("{} arrivals dropped at the in-flight cap", self.dropped));
        }
        match self.config.arrival {
            Arrival::Closed { clients } if (s.mean_in_flight) < 0.9 * clients as f64 => {
                s.warnings.push(format!(
                    "mean in flight {:.1} < 90 % of {clients} clients",
                    s.mean_in_flight
                ));
            }
            Arrival::Poisson { rate, .. }
                if w > 0.0 && s.sent > 10 && s.responses_per_s < 0.8 * rate =>
            {
                s.warnings.push(format!(
                    "completions {:.2}/s < 80 % of arrivals {rate:.2}/s: the server is \
                     overloaded (queue growing), not in a steady state",
                    s.responses_per_s
                ));
            }
            _ => {}
        }
        if s.tokens == 0.0 {
            s.warnings.push("no output token arrived inside the window".into());
        }
        s
    }
}

/// The request body of one streamed generation.
fn body(client: &Client, cfg: &LoadConfig, prompt: &str) -> (&'static str, Value) {
    let model = client.endpoint().model.clone();
    let (route, mut b) = match cfg.route {
        GenerationRoute::Completions => {
            ("/v1/completions", json!({"model": model, "prompt": prompt}))
        }
        GenerationRoute::Chat => (
            "/v1/chat/completions",
            json!({"model": model, "messages": [{"role": "user", "content": prompt}]}),
        ),
    };
    b["max_tokens"] = json!(cfg.max_tokens);
    b["temperature"] = json!(0);
    b["stream"] = json!(true);
    b["stream_options"] = json!({"include_usage": true});
    if cfg.ignore_eos {
        b["ignore_eos"] = json!(true);
    }
    (route, b)
}

/// Sends one streamed request and records it.
fn one(
    client: &Client,
    cfg: &LoadConfig,
    start: Instant,
    idx: usize,
    prompt: &str,
) -> RequestRecord {
    let since = |t: Instant| t.saturating_duration_since(start).as_secs_f64();
    let (route, b) = body(client, cfg, prompt);
    let mut rec = RequestRecord { prompt: idx, sent: since(Instant::now()), ..Default::default() };
    let mut usage: Option<(u32, Option<u32>)> = None;
    let chat = cfg.route == GenerationRoute::Chat;
    let r = client.post_stream(route, &b, |data, at| {
        let v: Value = serde_json::from_str(data).map_err(|e| ServeError::BadResponse {
            url: client.endpoint().url(route),
            field: "(event)".into(),
            reason: format!("not JSON: {e}"),
        })?;
        if let Some(err) = v.get("error") {
            return Err(ServeError::BadResponse {
                url: client.endpoint().url(route),
                field: "error".into(),
                reason: err.to_string(),
            });
        }
        let text = if chat {
            v.pointer("/choices/0/delta/content").and_then(Value::as_str)
        } else {
            v.pointer("/choices/0/text").and_then(Value::as_str)
        };
        if text.is_some_and(|t| !t.is_empty()) {
            let t = since(at);
            rec.first_token.get_or_insert(t);
            rec.chunk_times.push(t);
        }
        if let Some(c) = v.pointer("/usage/completion_tokens").and_then(Value::as_u64) {
            let p = v.pointer("/usage/prompt_tokens").and_then(Value::as_u64).map(|x| x as u32);
            usage = Some((c as u32, p));
        }
        Ok(())
    });
    rec.done = since(Instant::now());
    match (r, usage) {
        (Err(e), _) => rec.error = Some(e.to_string()),
        (Ok(_), Some((c, p))) => {
            rec.output_tokens = c;
            rec.prompt_tokens = p;
            rec.counted_by_usage = true;
        }
        (Ok(_), None) => rec.output_tokens = rec.chunk_times.len() as u32,
    }
    rec
}

/// SplitMix64: a small seeded generator for the inter-arrival draws.
#[derive(Clone, Debug)]
struct SplitMix(u64);

impl SplitMix {
    fn next_f64(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        // (0, 1]: never 0, so ln() is finite.
        ((z >> 11) as f64 + 1.0) / (1u64 << 53) as f64
    }

    /// An exponential draw with mean `1/rate`.
    fn exp(&mut self, rate: f64) -> f64 {
        -self.next_f64().ln() / rate
    }
}

/// Runs the load against `client` with `prompts` (cycled in order), marking the steady
/// window's edges with `marker`.
///
/// # Errors
/// [`ServeError::Config`] for bad settings or no prompts. Failed requests are recorded, not
/// returned as errors.
pub fn run_load(
    client: &Client,
    prompts: &[String],
    cfg: &LoadConfig,
    marker: &dyn EdgeMarker,
) -> Result<LoadRun> {
    cfg.validate()?;
    if prompts.is_empty() {
        return Err(ServeError::Config { field: "prompts", reason: "no prompts".into() });
    }
    let start = Instant::now();
    let stop = AtomicBool::new(false);
    let records: Mutex<Vec<RequestRecord>> = Mutex::new(Vec::new());
    let next = AtomicUsize::new(0);
    let in_flight = Arc::new(AtomicUsize::new(0));
    let mut dropped = 0usize;
    let end_at = cfg.warmup + cfg.measure;
    let mut edges = (start, start);
    let push = |r: RequestRecord| {
        if let Ok(mut g) = records.lock() {
            g.push(r);
        }
    };
    let push = &push;
    std::thread::scope(|s| {
        // Edge marks at the window's begin and end, from their own thread so they are on time.
        let edge = s.spawn(|| {
            sleep_until(start + cfg.warmup);
            let b = marker.mark();
            sleep_until(start + end_at);
            let e = marker.mark();
            stop.store(true, Ordering::SeqCst);
            (b, e)
        });
        match cfg.arrival {
            Arrival::Closed { clients } => {
                for _ in 0..clients {
                    s.spawn(|| {
                        while !stop.load(Ordering::SeqCst) {
                            let i = next.fetch_add(1, Ordering::Relaxed) % prompts.len();
                            push(one(client, cfg, start, i, &prompts[i]));
                        }
                    });
                }
            }
            Arrival::Poisson { rate, seed } => {
                let mut rng = SplitMix(seed);
                let mut t = rng.exp(rate);
                while Duration::from_secs_f64(t) < end_at {
                    sleep_until(start + Duration::from_secs_f64(t));
                    if in_flight.load(Ordering::SeqCst) >= cfg.max_in_flight {
                        dropped += 1;
                    } else {
                        in_flight.fetch_add(1, Ordering::SeqCst);
                        let i = next.fetch_add(1, Ordering::Relaxed) % prompts.len();
                        let fl = Arc::clone(&in_flight);
                        s.spawn(move || {
                            push(one(client, cfg, start, i, &prompts[i]));
                            fl.fetch_sub(1, Ordering::SeqCst);
                        });
                    }
                    t += rng.exp(rate);
                }
            }
        }
        if let Ok(e) = edge.join() {
            edges = e;
        }
    });
    let mut requests = records.into_inner().unwrap_or_default();
    requests.sort_by(|a, b| a.sent.total_cmp(&b.sent));
    let since = |t: Instant| t.saturating_duration_since(start).as_secs_f64();
    Ok(LoadRun {
        config: cfg.clone(),
        steady_begin: since(edges.0),
        steady_end: since(edges.1),
        requests,
        dropped,
        start: Some(start),
        edges: Some(edges),
    })
}

fn sleep_until(t: Instant) {
    let now = Instant::now();
    if t > now {
        std::thread::sleep(t - now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_match_numpy() {
        // numpy.percentile([1,2,3,4,5,6,7,8,9,10], [50, 90, 99]) = 5.5, 9.1, 9.91
        let v: Vec<f64> = (1..=10).map(f64::from).collect();
        let p = Percentiles::of(&v).unwrap();
        assert!((p.p50 - 5.5).abs() < 1e-12 && (p.p90 - 9.1).abs() < 1e-12);
        assert!((p.p99 - 9.91).abs() < 1e-12 && (p.mean - 5.5).abs() < 1e-12);
        assert!(Percentiles::of(&[]).is_none());
    }

    #[test]
    fn exponential_mean() {
        let mut r = SplitMix(7);
        let n = 200_000;
        let m: f64 = (0..n).map(|_| r.exp(4.0)).sum::<f64>() / f64::from(n);
        assert!((m - 0.25).abs() < 0.005, "{m}");
    }

    #[test]
    fn steady_counts_only_the_window() {
        let rec = |sent: f64, chunks: Vec<f64>| RequestRecord {
            sent,
            first_token: chunks.first().copied(),
            done: *chunks.last().unwrap(),
            output_tokens: chunks.len() as u32,
            counted_by_usage: true,
            chunk_times: chunks,
            ..Default::default()
        };
        let run = LoadRun {
            config: LoadConfig::new(Arrival::Closed { clients: 1 }),
            steady_begin: 1.0,
            steady_end: 3.0,
            requests: vec![
                rec(0.0, vec![0.5, 0.9, 1.1]),      // ramp-up: one token inside
                rec(1.1, vec![1.5, 2.0, 2.5, 2.9]), // all inside
                rec(2.9, vec![3.2, 3.4]),           // drain: none inside
            ],
            dropped: 0,
            start: None,
            edges: None,
        };
        let s = run.steady().with_energy(100.0, Some(10.0));
        assert_eq!(s.tokens, 5.0);
        assert_eq!(s.responses, 2);
        assert_eq!(s.sent, 2);
        assert!((s.j_per_token.unwrap() - 20.0).abs() < 1e-12);
        assert!((s.mean_output_tokens - 3.0).abs() < 1e-12);
        assert!((s.j_per_response.unwrap() - 60.0).abs() < 1e-12);
        assert!((s.dynamic_j_per_token.unwrap() - 16.0).abs() < 1e-12);
        assert!((s.mean_in_flight - 1.0).abs() < 1e-9, "{}", s.mean_in_flight);
        assert_eq!(s.min_in_flight, 1);
        let t = s.tpot.unwrap();
        assert!((t.p50 - (1.4 / 3.0 + 0.2) / 2.0).abs() < 1e-9, "{t:?}");
    }
}
