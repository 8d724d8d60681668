//! Served models through the facade: a study whose schemes are two deployments, and energy per
//! response under load from a metered window — both against loopback servers written in the
//! tests (`crates/eai-serve/tests/server.rs`).

use std::time::Duration;

use eai::core::{LanguageModel, Watts};
use eai::eval::{Evaluator, bundled};
use eai::power::{ConstantSource, PowerSource};
use eai::serve::{
    Arrival, Endpoint, EndpointLoader, LoadConfig, LoadStudy, OpenAiModel, ServeOptions,
    ServerGpus, Tokenization,
};
use eai::{PowerSetup, Scheme, Study, StudyTask};
use serde_json::{Value, json};

#[path = "../crates/eai-serve/tests/server.rs"]
#[allow(dead_code)]
mod server;
use server::{Reply, TestServer};

/// Echo+logprobs answers for text prompts, one token per character: each character's
/// log-probability is `-bias × (its code mod 5 + 1) / 10`, so deployments with different
/// biases rank choices the same way but score differently.
fn char_model(bias: f64) -> impl Fn(&server::Seen, usize) -> Reply + Send + Sync + 'static {
    move |r, _| {
        let text = r.body["prompt"].as_str().unwrap().to_string();
        let chars: Vec<char> = text.chars().collect();
        let lp = |c: char| -bias * f64::from(u32::from(c) % 5 + 1) / 10.0;
        let mut tl: Vec<Value> = vec![Value::Null];
        let mut top: Vec<Value> = vec![Value::Null];
        for &c in &chars[1..] {
            tl.push(json!(lp(c)));
            top.push(json!({ c.to_string(): lp(c) }));
        }
        tl.push(json!(-0.1));
        top.push(json!({"!": -0.1}));
        let mut tokens: Vec<String> = chars.iter().map(|c| c.to_string()).collect();
        tokens.push("!".into());
        Reply::Json(json!({"choices": [{"index": 0, "text": format!("{text}!"),
            "logprobs": {"token_logprobs": tl, "top_logprobs": top, "tokens": tokens}}],
            "usage": {"prompt_tokens": chars.len(), "completion_tokens": 1}}))
    }
}

#[test]
fn study_compares_served_deployments() {
    let fp16 = TestServer::start(char_model(1.0));
    let int8 = TestServer::start(char_model(1.3));
    let loader = EndpointLoader::new(
        "served-test",
        vec![
            (Scheme::Fp16, Endpoint::new(&fp16.url, "m")),
            (Scheme::Int8WeightOnly, Endpoint::new(&int8.url, "m")),
        ],
        ServeOptions::new(Tokenization::Server),
    );
    let task = StudyTask::new(bundled::arc_easy().unwrap()).limit(4);
    let results = Study::new(loader)
        .schemes([Scheme::Fp16, Scheme::Int8WeightOnly])
        .task(task.clone())
        .repeats(1)
        .warmup_docs(0)
        .baseline(Duration::ZERO)
        .power(PowerSetup::Sources(vec![Box::new(ConstantSource::new(Watts(100.0)))]))
        .progress(false)
        .run()
        .unwrap();
    assert_eq!(results.tasks.len(), 2);
    // Each scheme's score is the evaluator's against that endpoint directly.
    for (scheme, url) in [(Scheme::Fp16, &fp16.url), (Scheme::Int8WeightOnly, &int8.url)] {
        let mut m =
            OpenAiModel::new(Endpoint::new(url, "m"), ServeOptions::new(Tokenization::Server))
                .unwrap();
        let ev = Evaluator::new().progress(false).run(&mut m, task.suite()).unwrap();
        let acc = ev.tasks[0].metric("acc,none").unwrap().value;
        let t = results.tasks.iter().find(|t| t.scheme == scheme).unwrap();
        assert_eq!(t.score, acc, "{scheme:?}");
        assert_eq!(m.info().scheme, None);
    }
    // Both deployments received the requests (4 documents × their choices each).
    assert!(fp16.requests().len() >= 4 && int8.requests().len() >= 4);
    // A scheme without an endpoint is refused with a clear error.
    let mut l = EndpointLoader::new("x", vec![], ServeOptions::new(Tokenization::Server));
    let e = eai::ModelLoader::load(&mut l, Scheme::Fp32).err().unwrap();
    assert!(e.to_string().contains("no endpoint"), "{e}");
}

fn stream_reply() -> Reply {
    let mut ev = Vec::new();
    for (i, t) in ["a", "b", "c", "d"].iter().enumerate() {
        let pause = Duration::from_millis(if i == 0 { 40 } else { 15 });
        ev.push((pause, json!({"choices": [{"index": 0, "text": t}]}).to_string()));
    }
    ev.push((
        Duration::ZERO,
        json!({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 4}}).to_string(),
    ));
    ev.push((Duration::ZERO, "[DONE]".to_string()));
    Reply::Sse(ev)
}

#[test]
fn load_study_meters_the_steady_window() {
    let srv = TestServer::start(|_, _| stream_reply());
    let mut levels = Vec::new();
    for clients in [1, 4] {
        let mut c = LoadConfig::new(Arrival::Closed { clients });
        c.warmup = Duration::from_millis(300);
        c.measure = Duration::from_millis(1500);
        c.max_tokens = 4;
        levels.push(c);
    }
    let sources: Vec<Box<dyn PowerSource>> = vec![Box::new(ConstantSource::new(Watts(200.0)))];
    let report = LoadStudy::new(Endpoint::new(&srv.url, "m"), vec!["hi".into()], levels)
        .idle(Duration::from_secs(1))
        .pause(Duration::ZERO)
        .run(Some(sources), &ServerGpus::default(), false)
        .unwrap();
    assert_eq!(report.levels.len(), 2);
    assert!((report.idle_w.unwrap() - 200.0).abs() < 1.0, "{:?}", report.idle_w);
    for l in &report.levels {
        let s = &l.steady;
        let e = s.energy_j.unwrap();
        // A constant 200 W over the window.
        assert!((e - 200.0 * s.window_s).abs() < 0.05 * e, "{e} vs {}", 200.0 * s.window_s);
        assert!((s.j_per_token.unwrap() - e / s.tokens).abs() < 1e-9);
        assert!((s.j_per_response.unwrap() - s.j_per_token.unwrap() * 4.0).abs() < 1e-9);
        // Idle power equals the load power here, so nothing is above idle.
        assert!(s.dynamic_j_per_token.unwrap().abs() < 0.05 * s.j_per_token.unwrap());
    }
    // More clients, more tokens per second from this server, so fewer joules per token.
    let (a, b) = (&report.levels[0].steady, &report.levels[1].steady);
    assert!(b.tokens_per_s > a.tokens_per_s);
    assert!(b.j_per_token.unwrap() < a.j_per_token.unwrap());
    let dir = tempfile::tempdir().unwrap();
    report.write(dir.path()).unwrap();
    for f in ["load.json", "load.md", "load.svg"] {
        assert!(dir.path().join(f).is_file(), "{f}");
    }
    let svg = std::fs::read_to_string(dir.path().join("load.svg")).unwrap();
    for label in ["Energy per output token", "above idle", "Latency at steady state", "TTFT p50"] {
        assert!(svg.contains(label), "load.svg lacks {label}");
    }
    let md = std::fs::read_to_string(dir.path().join("load.md")).unwrap();
    assert!(md.contains("| 4 clients |") && md.contains("idle power"), "{md}");
    // Each window's sources, counted for the server or apart.
    assert!(md.contains("| 4 clients | constant/0 | server |"), "{md}");
}
