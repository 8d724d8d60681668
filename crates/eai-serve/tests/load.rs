//! The load generator against a streaming loopback server with known delays. Bounds are
//! generous (a loaded 2-core CI machine), and most checks are of ordering and consistency.

use std::time::Duration;

use eai_serve::{Arrival, Client, ClockMarker, Endpoint, LoadConfig, run_load};
use serde_json::{Value, json};

use crate::server::{Reply, TestServer};

/// A streamed completion: first chunk after `ttft`, then one chunk per `tpot`, usage last.
/// The chunk bodies are vLLM's (tests/fixtures/vllm_stream_completions.txt, in the layout of
/// vLLM's `CompletionStreamResponse` with `stream_options.include_usage`).
fn stream(ttft: Duration, tpot: Duration) -> Reply {
    let lines: Vec<&str> = include_str!("fixtures/vllm_stream_completions.txt").lines().collect();
    let mut ev = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let pause = if i == 0 {
            ttft
        } else if i < 5 {
            tpot
        } else {
            Duration::ZERO
        };
        ev.push((pause, (*l).to_string()));
    }
    Reply::Sse(ev)
}

fn client(url: &str) -> Client {
    Client::new(Endpoint::new(url, "m").timeout(Duration::from_secs(20)), 8).unwrap()
}

fn cfg(arrival: Arrival) -> LoadConfig {
    let mut c = LoadConfig::new(arrival);
    c.warmup = Duration::from_millis(400);
    c.measure = Duration::from_millis(2000);
    c.max_tokens = 5;
    c
}

#[test]
fn closed_loop_measures_ttft_and_tpot() {
    let srv =
        TestServer::start(|_, _| stream(Duration::from_millis(80), Duration::from_millis(30)));
    let prompts = vec!["Hello".to_string(), "World".to_string()];
    let run =
        run_load(&client(&srv.url), &prompts, &cfg(Arrival::Closed { clients: 3 }), &ClockMarker)
            .unwrap();
    let s = run.steady();
    assert!(run.requests.iter().all(|r| r.error.is_none()), "{:?}", run.requests[0].error);
    // Every request was streamed and counted from the server's usage (5 tokens each).
    assert!(run.requests.iter().all(|r| r.output_tokens == 5 && r.counted_by_usage));
    assert!(s.tokens_from_usage);
    let ttft = s.ttft.unwrap();
    let tpot = s.tpot.unwrap();
    // The server waits 80 ms before the first token and 30 ms between tokens.
    assert!(ttft.p50 >= 0.079 && ttft.p50 < 1.5, "{ttft:?}");
    assert!(tpot.p50 >= 0.029 && tpot.p50 < 1.0, "{tpot:?}");
    assert!(ttft.p50 <= ttft.p90 && ttft.p90 <= ttft.p99);
    // Three clients were busy through the window (each starts its next request at once).
    assert!(s.mean_in_flight > 2.5 && s.mean_in_flight <= 3.0 + 1e-9, "{}", s.mean_in_flight);
    assert!(s.warnings.is_empty(), "{:?}", s.warnings);
    // Tokens in the window / window length; about 3 clients × 5 tokens per ~0.2 s.
    assert!((s.tokens_per_s - s.tokens / s.window_s).abs() < 1e-9);
    assert!(s.tokens > 0.0 && s.responses > 0);
    // The window is the configured one, after the warm-up.
    assert!((s.window_s - 2.0).abs() < 0.3, "{}", s.window_s);
    assert!(run.steady_begin >= 0.39);
    // Requests were sent and finished in order of time; drain after the window is recorded.
    assert!(
        run.requests
            .iter()
            .all(|r| r.sent <= r.first_token.unwrap() && r.first_token.unwrap() <= r.done)
    );
    assert!(run.requests.iter().any(|r| r.done > run.steady_end), "drain recorded");
    // The request shape of a streamed completion.
    let b: Value = srv.requests()[0].body.clone();
    assert_eq!(b["stream"], true);
    assert_eq!(b["stream_options"], json!({"include_usage": true}));
    assert_eq!(b["max_tokens"], 5);
    // Energy figures from a window energy (here a made-up 100 J) and an idle power.
    let e = s.clone().with_energy(100.0, Some(10.0));
    assert!((e.j_per_token.unwrap() * s.tokens - 100.0).abs() < 1e-9);
    assert!((e.j_per_response.unwrap() - e.j_per_token.unwrap() * 5.0).abs() < 1e-9);
}

#[test]
fn slower_server_measures_slower() {
    let fast =
        TestServer::start(|_, _| stream(Duration::from_millis(20), Duration::from_millis(10)));
    let slow =
        TestServer::start(|_, _| stream(Duration::from_millis(250), Duration::from_millis(60)));
    let p = vec!["x".to_string()];
    let c = cfg(Arrival::Closed { clients: 2 });
    let f = run_load(&client(&fast.url), &p, &c, &ClockMarker).unwrap().steady();
    let s = run_load(&client(&slow.url), &p, &c, &ClockMarker).unwrap().steady();
    assert!(s.ttft.unwrap().p50 > f.ttft.unwrap().p50);
    assert!(s.tpot.unwrap().p50 > f.tpot.unwrap().p50);
    assert!(s.tokens_per_s < f.tokens_per_s);
}

#[test]
fn open_loop_poisson_sends_at_the_rate() {
    let srv = TestServer::start(|_, _| stream(Duration::from_millis(20), Duration::from_millis(5)));
    let p = vec!["a".to_string(), "b".to_string(), "c".to_string()];
    let c = cfg(Arrival::Poisson { rate: 25.0, seed: 42 });
    let run = run_load(&client(&srv.url), &p, &c, &ClockMarker).unwrap();
    let total = run.requests.len() as f64;
    // 25/s over 2.4 s: 60 expected; a Poisson count is within ±4σ (≈ ±31) of it.
    assert!((29.0..=91.0).contains(&total), "{total}");
    let s = run.steady();
    assert!(s.errors == 0 && s.dropped == 0);
    assert!(s.warnings.is_empty(), "a fast server keeps up: {:?}", s.warnings);
    // Prompts are cycled in order.
    let mut idx: Vec<usize> = run.requests.iter().map(|r| r.prompt).collect();
    idx.sort_unstable();
    assert_eq!(idx[0], 0);
    // Same seed, same arrival times.
    let again = run_load(&client(&srv.url), &p, &c, &ClockMarker).unwrap();
    assert_eq!(again.requests.len(), run.requests.len());
}

#[test]
fn overloaded_open_loop_is_flagged() {
    // One request at a time, each 400 ms: 20/s arrivals cannot be served.
    let gate = std::sync::Arc::new(std::sync::Mutex::new(()));
    let srv = TestServer::start(move |_, _| {
        let _g = gate.lock().unwrap();
        std::thread::sleep(Duration::from_millis(400));
        stream(Duration::ZERO, Duration::ZERO)
    });
    let p = vec!["a".to_string()];
    let c = cfg(Arrival::Poisson { rate: 20.0, seed: 1 });
    let client = Client::new(
        Endpoint::new(&srv.url, "m").timeout(Duration::from_secs(3)).retries(1, Duration::ZERO),
        8,
    )
    .unwrap();
    let run = run_load(&client, &p, &c, &ClockMarker).unwrap();
    let s = run.steady();
    assert!(
        s.warnings.iter().any(|w| w.contains("overloaded")),
        "{:?} {:?}",
        s.warnings,
        run.requests[0].error
    );
    eprintln!(
        "overloaded: {} requests, {} errors, first error {:?}",
        run.requests.len(),
        s.errors,
        run.requests.iter().find_map(|r| r.error.clone())
    );
    // Requests that waited past the client's timeout are recorded as failed, not dropped.
    assert!(s.errors > 0 && s.warnings.iter().any(|w| w.contains("failed")));
}

#[test]
fn bad_settings_are_errors() {
    let c = client("http://127.0.0.1:9");
    let p = vec!["a".to_string()];
    assert!(run_load(&c, &p, &cfg(Arrival::Poisson { rate: 0.0, seed: 1 }), &ClockMarker).is_err());
    assert!(run_load(&c, &p, &cfg(Arrival::Closed { clients: 0 }), &ClockMarker).is_err());
    assert!(run_load(&c, &[], &cfg(Arrival::Closed { clients: 1 }), &ClockMarker).is_err());
}
