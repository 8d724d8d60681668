//! Helpers: replay traces with analytic truth, and a small HTTP server that serves scrapes.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use eai_core::Joules;
use eai_power::{Domain, Provenance, Sample, Signal, SignalSpec, SourceInfo, Timeline};

/// `P(t) = base + amp · sin(2π t / period + phase)` watts, `t` in trace seconds.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sine {
    pub(crate) base: f64,
    pub(crate) amp: f64,
    pub(crate) period: f64,
    pub(crate) phase: f64,
}

impl Sine {
    pub(crate) fn power(&self, t: f64) -> f64 {
        self.base + self.amp * (2.0 * std::f64::consts::PI * t / self.period + self.phase).sin()
    }

    /// Exact energy over `[a, b]` (trace seconds), J.
    pub(crate) fn energy(&self, a: f64, b: f64) -> f64 {
        let w = 2.0 * std::f64::consts::PI / self.period;
        let prim = |t: f64| self.base * t - self.amp / w * (w * t + self.phase).cos();
        prim(b) - prim(a)
    }
}

/// A trace of `sources` (id, domain, profile) over `secs` s: instant power every 1 ms and the
/// exact energy counter as NVML publishes it (every 100 ms), read every 23 ms.
pub(crate) fn trace(sources: &[(&str, Domain, Sine)], secs: f64) -> Timeline {
    let infos = sources
        .iter()
        .map(|(id, d, _)| {
            SourceInfo::new(*id, format!("replayed {id}"), d.clone(), Provenance::Replayed)
                .with_signal(SignalSpec::new(Signal::InstantPower))
                .with_signal(
                    SignalSpec::new(Signal::EnergyCounter)
                        .update_period(Duration::from_millis(100)),
                )
        })
        .collect();
    let mut tl = Timeline::new(infos);
    for (i, (_, _, p)) in sources.iter().enumerate() {
        let n = (secs * 1000.0) as u64;
        for k in 0..=n {
            tl.push(i, Signal::InstantPower, Sample::new(k * 1_000_000, p.power(k as f64 * 1e-3)));
        }
        // As NVML records it: the counter updates every 100 ms (here at 37 ms + k·100 ms) and
        // each read, every 23 ms, returns its value at the last update.
        let m = (secs / 0.023) as u64;
        for k in 0..=m {
            let r = k as f64 * 0.023;
            let u = 0.037 + ((r - 0.037) / 0.1).floor() * 0.1;
            tl.push(
                i,
                Signal::EnergyCounter,
                Sample::new(k * 23_000_000, 5.0e6 + p.energy(0.0, u)),
            );
        }
    }
    tl
}

/// Total of a set of profiles over `[a, b]` trace seconds.
pub(crate) fn truth(profiles: &[Sine], a: f64, b: f64) -> Joules {
    Joules(profiles.iter().map(|p| p.energy(a, b)).sum())
}

/// A test HTTP/1.1 server answering every request with `body(elapsed)` (chunked, as Go's
/// net/http sends large bodies), 401 unless `Authorization: Bearer <token>` is presented.
pub(crate) struct ScrapeServer {
    pub(crate) addr: SocketAddr,
    pub(crate) start: Instant,
    stop: Arc<AtomicBool>,
}

impl ScrapeServer {
    pub(crate) fn start(
        token: Option<&'static str>,
        body: impl Fn(Duration) -> String + Send + Sync + 'static,
    ) -> Self {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let start = Instant::now();
        let (s2, body) = (Arc::clone(&stop), Arc::new(body));
        std::thread::spawn(move || {
            for c in l.incoming() {
                if s2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(c) = c else { continue };
                let body = Arc::clone(&body);
                std::thread::spawn(move || serve(c, token, start, &*body));
            }
        });
        Self { addr, start, stop }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}/metrics", self.addr)
    }
}

impl Drop for ScrapeServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

fn serve(c: TcpStream, token: Option<&str>, start: Instant, body: &dyn Fn(Duration) -> String) {
    let mut r = BufReader::new(c.try_clone().unwrap());
    let mut auth = None;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':')
            && k.eq_ignore_ascii_case("authorization")
        {
            auth = Some(v.trim().to_string());
        }
    }
    let mut w = c;
    if let Some(t) = token
        && auth.as_deref() != Some(&format!("Bearer {t}"))
    {
        let _ = w.write_all(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 12\r\nConnection: close\r\n\r\nUnauthorized");
        return;
    }
    let b = body(start.elapsed());
    let mut out = Vec::new();
    out.extend_from_slice(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
    );
    for chunk in b.as_bytes().chunks(4096) {
        out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    let _ = w.write_all(&out);
}

/// A raw HTTP request on loopback: `(status, body)`.
pub(crate) fn raw(
    method: &str,
    addr: SocketAddr,
    path: &str,
    token: Option<&str>,
) -> (u16, String) {
    use std::io::Read;
    let mut s = TcpStream::connect(addr).unwrap();
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let len = if method == "GET" { "" } else { "Content-Length: 0\r\n" };
    write!(s, "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{auth}{len}\r\n")
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = out.split_once("\r\n\r\n").map_or(String::new(), |(_, b)| b.to_string());
    (status, body)
}
