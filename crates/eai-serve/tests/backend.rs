//! The OpenAI-compatible backend against loopback servers: request shapes, the lm-eval sum,
//! greedy flags, batching, retries, timeouts and the no-logprobs error.

use std::sync::Arc;
use std::time::Duration;

use eai_core::{GenerateRequest, LanguageModel, LoglikelihoodRequest, ModelError};
use eai_serve::{
    Endpoint, GenerationRoute, OpenAiModel, PairTokenizer, ServeError, ServeOptions, Tokenization,
};
use serde_json::{Value, json};

use crate::server::{Reply, Seen, TestServer};

/// One token per byte; lm-eval's split (trailing context whitespace moves to the continuation).
struct Bytes;

impl PairTokenizer for Bytes {
    fn encode_pair(&self, c: &str, k: &str) -> Result<(Vec<u32>, Vec<u32>), String> {
        let t = c.trim_end();
        let cont = format!("{}{k}", &c[t.len()..]);
        Ok((t.bytes().map(u32::from).collect(), cont.bytes().map(u32::from).collect()))
    }
    fn encode(&self, text: &str) -> Result<Vec<u32>, String> {
        Ok(text.bytes().map(u32::from).collect())
    }
}

/// The deterministic "model" the scoring server answers with.
fn lp(pos: usize, id: u64) -> f64 {
    -((id % 13) as f64 + 1.0) / 8.0 - pos as f64 / 1024.0
}
fn greedy(id: u64) -> bool {
    id.is_multiple_of(2)
}

/// Answers `/v1/completions` echo requests for one or several token-id prompts.
fn scoring_reply(req: &Seen) -> Reply {
    let prompts: Vec<Vec<u64>> = match &req.body["prompt"] {
        Value::Array(a) if a.first().is_some_and(Value::is_array) => a
            .iter()
            .map(|p| p.as_array().unwrap().iter().map(|x| x.as_u64().unwrap()).collect())
            .collect(),
        Value::Array(a) => vec![a.iter().map(|x| x.as_u64().unwrap()).collect()],
        other => panic!("prompt is not token ids: {other}"),
    };
    let choices: Vec<Value> = prompts
        .iter()
        .enumerate()
        .rev() // out of order: the client must sort by index
        .map(|(i, p)| {
            let mut ids = p.clone();
            ids.push(u64::from(b'!')); // the one generated token
            let tl: Vec<Value> = ids
                .iter()
                .enumerate()
                .map(|(pos, &id)| if pos == 0 { Value::Null } else { json!(lp(pos, id)) })
                .collect();
            let top: Vec<Value> = ids
                .iter()
                .enumerate()
                .map(|(pos, &id)| {
                    if pos == 0 {
                        return Value::Null;
                    }
                    let own = lp(pos, id);
                    let tok = (id as u8 as char).to_string();
                    if greedy(id) {
                        json!({ tok: own })
                    } else {
                        json!({ tok: own, "<alt>": own + 0.5 })
                    }
                })
                .collect();
            json!({"index": i, "text": "", "logprobs": {"token_logprobs": tl, "top_logprobs": top,
                    "tokens": [], "text_offset": []}, "finish_reason": "length"})
        })
        .collect();
    Reply::Json(json!({"object": "text_completion", "choices": choices}))
}

fn expected(ctx: &str, cont: &str, max_len: usize) -> (f64, bool) {
    let (c, k) = Bytes.encode_pair(ctx, cont).unwrap();
    let all: Vec<u32> = c.iter().chain(&k).copied().collect();
    let cut = all.len().saturating_sub(max_len);
    let ctxlen = c.len() - cut;
    let inp = &all[cut..];
    let mut s = 0.0;
    let mut g = true;
    for (pos, &id) in inp.iter().enumerate().skip(ctxlen) {
        s += lp(pos, u64::from(id));
        g &= greedy(u64::from(id));
    }
    (s, g)
}

fn model(url: &str, opts: impl FnOnce(&mut ServeOptions)) -> OpenAiModel {
    let ep = Endpoint::new(url, "test-model").retries(3, Duration::from_millis(10));
    let mut o = ServeOptions::new(Tokenization::Client(Arc::new(Bytes)));
    opts(&mut o);
    OpenAiModel::new(ep, o).unwrap()
}

fn reqs() -> Vec<LoglikelihoodRequest> {
    vec![
        LoglikelihoodRequest::new("Question: 2+2?\nAnswer:", " 4"),
        LoglikelihoodRequest::new("Question: 2+2?\nAnswer: ", "five"),
        LoglikelihoodRequest::new("abc", " bdf"),
        LoglikelihoodRequest::new("xyz", "ace"),
        LoglikelihoodRequest::new("Long context that will be truncated on the left", " ok"),
    ]
}

#[test]
fn scores_sum_token_logprobs_from_ctxlen_to_last_but_one() {
    let srv = TestServer::start(|r, _| scoring_reply(r));
    let mut m = model(&srv.url, |o| o.concurrency = 1);
    let got = m.loglikelihood(&reqs()).unwrap();
    for (r, g) in reqs().iter().zip(&got) {
        let (s, gr) = expected(&r.context, &r.continuation, 2048);
        assert!((g.logprob - s).abs() < 1e-12, "{r:?}: {} vs {s}", g.logprob);
        assert_eq!(g.is_greedy, gr, "{r:?}");
        let (_, k) = Bytes.encode_pair(&r.context, &r.continuation).unwrap();
        assert_eq!(g.tokens, Some(k.len() as u32));
    }
    // Both greedy outcomes occur, so the flag is really checked.
    assert!(got.iter().any(|g| g.is_greedy) && got.iter().any(|g| !g.is_greedy));
    // lm-eval's request shape.
    let seen = srv.requests();
    assert_eq!(seen.len(), reqs().len());
    for s in &seen {
        assert_eq!(s.path, "/v1/completions");
        let b = &s.body;
        assert_eq!(b["model"], "test-model");
        assert_eq!(b["echo"], true);
        assert_eq!(b["logprobs"], 1);
        assert_eq!(b["max_tokens"], 1);
        assert_eq!(b["temperature"], 0);
        assert_eq!(b["seed"], 1234);
        assert!(b["prompt"].as_array().unwrap().iter().all(Value::is_u64));
    }
    // The trailing space of the second context travelled into the continuation.
    let p1 = &seen.iter().find(|s| s.body["prompt"].as_array().unwrap().len() == 27).unwrap().body;
    assert_eq!(p1["prompt"][22], u64::from(b' '));
}

#[test]
fn batched_concurrent_requests_keep_order_and_truncate_left() {
    let srv = TestServer::start(|r, _| scoring_reply(r));
    let mut m = model(&srv.url, |o| {
        o.batch_size = 2;
        o.concurrency = 3;
        o.max_length = 16;
    });
    let got = m.loglikelihood(&reqs()).unwrap();
    for (r, g) in reqs().iter().zip(&got) {
        let (s, gr) = expected(&r.context, &r.continuation, 16);
        assert!((g.logprob - s).abs() < 1e-12, "{r:?}");
        assert_eq!(g.is_greedy, gr);
    }
    let seen = srv.requests();
    assert_eq!(seen.len(), 3, "5 prompts in batches of 2");
    for s in &seen {
        let prompts = s.body["prompt"].as_array().unwrap();
        let lists: Vec<&Value> =
            if prompts[0].is_array() { prompts.iter().collect() } else { vec![&s.body["prompt"]] };
        for p in lists {
            assert!(p.as_array().unwrap().len() <= 16, "left-truncated to max_length");
        }
    }
    assert_eq!(m.requests_sent(), 3);
}

/// A response in vLLM's exact layout for lm-eval's batched echo request (`CompletionResponse`,
/// `CompletionResponseChoice` with the raw `prompt_logprobs`, `CompletionLogProbs`: first token
/// `null`, `top_logprobs` = the actual token then the top-1), read from vLLM's source
/// (`vllm/entrypoints/openai/completion/{protocol,serving,api_router}.py`; commits and details in
/// tests/fixtures/README.md). The values were written by hand in that layout; no vLLM server ran
/// to produce them. The same answer with its choices listed in reverse must score the same
/// (choices are matched to prompts by `index`, as lm-eval does).
#[test]
fn vllm_recorded_response_is_parsed() {
    let fixture: Value =
        serde_json::from_str(include_str!("fixtures/vllm_completions_echo.json")).unwrap();
    let mut reversed = fixture.clone();
    reversed["choices"].as_array_mut().unwrap().reverse();
    for answer in [fixture, reversed] {
        vllm_answer_scores(answer);
    }
}

fn vllm_answer_scores(answer: Value) {
    let srv = TestServer::start(move |_, _| Reply::Json(answer.clone()));
    struct Words;
    impl PairTokenizer for Words {
        fn encode_pair(&self, c: &str, k: &str) -> Result<(Vec<u32>, Vec<u32>), String> {
            let n = |s: &str| s.split(' ').filter(|w| !w.is_empty()).count();
            Ok(((0..n(c) as u32).collect(), (100..100 + n(k) as u32).collect()))
        }
        fn encode(&self, t: &str) -> Result<Vec<u32>, String> {
            Ok((0..t.split(' ').count() as u32).collect())
        }
    }
    let ep = Endpoint::new(format!("{}/v1", srv.url), "HuggingFaceTB/SmolLM2-135M-Instruct");
    let mut o = ServeOptions::new(Tokenization::Client(Arc::new(Words)));
    o.batch_size = 2;
    let mut m = OpenAiModel::new(ep, o).unwrap();
    let got = m
        .loglikelihood(&[
            LoglikelihoodRequest::new("The capital of France is", " Paris"),
            LoglikelihoodRequest::new("The capital of France is", " London"),
        ])
        .unwrap();
    assert_eq!((got[0].logprob, got[0].is_greedy), (-1.6875, true));
    assert_eq!((got[1].logprob, got[1].is_greedy), (-6.3125, false));
    let b = &srv.requests()[0].body;
    assert_eq!(b["prompt"].as_array().unwrap().len(), 2);
}

/// The server tokenizes: the client sends text and finds the continuation among the echoed tokens.
#[test]
fn server_tokenizer_splits_by_echoed_tokens() {
    let fixture: Value =
        serde_json::from_str(include_str!("fixtures/vllm_completions_echo.json")).unwrap();
    let srv = TestServer::start(move |r, _| {
        let i = usize::from(r.body["prompt"].as_str().unwrap().ends_with("London"));
        let mut c = fixture["choices"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["index"] == i)
            .unwrap()
            .clone();
        c["index"] = json!(0);
        Reply::Json(json!({"choices": [c], "usage": {"prompt_tokens": 6, "completion_tokens": 1}}))
    });
    let ep = Endpoint::new(&srv.url, "m");
    let mut m = OpenAiModel::new(ep, ServeOptions::new(Tokenization::Server)).unwrap();
    let got = m
        .loglikelihood(&[
            LoglikelihoodRequest::new("The capital of France is", " Paris"),
            LoglikelihoodRequest::new("The capital of France is ", "London"),
        ])
        .unwrap();
    assert_eq!((got[0].logprob, got[0].is_greedy, got[0].tokens), (-1.6875, true, Some(1)));
    assert_eq!((got[1].logprob, got[1].is_greedy), (-6.3125, false));
    let seen = srv.requests();
    let texts: Vec<&str> = seen.iter().map(|s| s.body["prompt"].as_str().unwrap()).collect();
    assert!(texts.contains(&"The capital of France is London"));
}

#[test]
fn retries_on_500_and_429_then_succeeds() {
    let srv = TestServer::start(|r, n| match n {
        0 => Reply::Status(500, "{\"error\":\"engine busy\"}".into(), vec![]),
        1 => Reply::Status(
            429,
            "{\"error\":\"rate\"}".into(),
            vec![("Retry-After".into(), "0".into())],
        ),
        _ => scoring_reply(r),
    });
    let mut m = model(&srv.url, |o| o.concurrency = 1);
    let got = m.loglikelihood(&reqs()[..1]).unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(srv.requests().len(), 3, "two failures, one success");
}

#[test]
fn gives_up_after_max_attempts_and_does_not_retry_400() {
    let srv = TestServer::start(|_, _| Reply::Status(503, "down".into(), vec![]));
    let mut m = model(&srv.url, |o| o.concurrency = 1);
    let e = m.loglikelihood(&reqs()[..1]).unwrap_err();
    let src = source_of(&e);
    assert!(matches!(src, ServeError::RetriesExhausted { attempts: 3, .. }), "{src:?}");
    assert_eq!(srv.requests().len(), 3);

    let srv = TestServer::start(|_, _| Reply::Status(400, "bad prompt".into(), vec![]));
    let mut m = model(&srv.url, |o| o.concurrency = 1);
    let e = m.loglikelihood(&reqs()[..1]).unwrap_err();
    assert!(matches!(source_of(&e), ServeError::Status { status: 400, .. }));
    assert!(e.to_string().contains("OpenAI") && format!("{:?}", e).contains("bad prompt"));
    assert_eq!(srv.requests().len(), 1, "a 400 is final");
}

#[test]
fn timeout_is_typed() {
    let srv =
        TestServer::start(|r, _| Reply::After(Duration::from_secs(3), Box::new(scoring_reply(r))));
    let ep =
        Endpoint::new(&srv.url, "m").timeout(Duration::from_millis(300)).retries(1, Duration::ZERO);
    let mut m =
        OpenAiModel::new(ep, ServeOptions::new(Tokenization::Client(Arc::new(Bytes)))).unwrap();
    let t0 = std::time::Instant::now();
    let e = m.loglikelihood(&reqs()[..1]).unwrap_err();
    assert!(matches!(source_of(&e), ServeError::Timeout { .. }), "{e:?}");
    assert!(t0.elapsed() < Duration::from_secs(3), "the client gave up before the server answered");
}

#[test]
fn chat_only_server_gives_no_prompt_logprobs_error() {
    // 1: the server ignores echo/logprobs (answers like a chat-tuned API would).
    let srv = TestServer::start(|_, _| {
        Reply::Json(json!({"choices": [{"index": 0, "text": "4", "logprobs": null}]}))
    });
    let mut m = model(&srv.url, |_| {});
    let e = m.loglikelihood(&reqs()[..1]).unwrap_err();
    assert!(matches!(source_of(&e), ServeError::NoPromptLogprobs { .. }), "{e:?}");
    // 2: logprobs of the generated token only (echo ignored).
    let srv = TestServer::start(|_, _| {
        Reply::Json(json!({"choices": [{"index": 0, "text": "4", "logprobs": {
            "token_logprobs": [-0.1], "top_logprobs": [{"4": -0.1}], "tokens": ["4"], "text_offset": [0]}}]}))
    });
    let mut m = model(&srv.url, |_| {});
    let e = m.loglikelihood(&reqs()[..1]).unwrap_err();
    let s = source_of(&e);
    assert!(matches!(s, ServeError::NoPromptLogprobs { .. }), "{s:?}");
    assert!(s.to_string().contains("echo"), "the message says what is needed: {s}");
}

#[test]
fn generation_cuts_at_stop_and_counts_tokens() {
    let srv = TestServer::start(|r, _| {
        if r.path == "/v1/chat/completions" {
            Reply::Json(json!({"choices": [{"index": 0, "message": {"role": "assistant",
                "content": "Paris\n\nQuestion: x"}}], "usage": {"completion_tokens": 7}}))
        } else {
            Reply::Json(json!({"choices": [{"index": 0, "text": " 42\n\nQuestion: next"}],
                "usage": {"prompt_tokens": 3, "completion_tokens": 9}}))
        }
    });
    let g = GenerateRequest::new("Q: 6*7?\nA:", vec!["\n\n".into(), "Question:".into()])
        .max_gen_toks(32);
    let mut m = model(&srv.url, |_| {});
    let out = m.generate_until(std::slice::from_ref(&g)).unwrap();
    assert_eq!(out[0].text, " 42");
    assert_eq!(out[0].tokens, Some(9));
    let b = &srv.requests()[0].body;
    assert_eq!(b["max_tokens"], 32);
    assert_eq!(b["temperature"], 0);
    assert_eq!(b["stop"], json!(["\n\n", "Question:"]));
    assert!(b["prompt"].is_array(), "token ids when the client tokenizes");
    let mut m = model(&srv.url, |o| o.generation = GenerationRoute::Chat);
    let out = m.generate_until(&[g]).unwrap();
    assert_eq!((out[0].text.as_str(), out[0].tokens), ("Paris", Some(7)));
    let b = &srv.requests()[1].body;
    assert_eq!(b["messages"][0]["content"], "Q: 6*7?\nA:");
}

#[test]
fn api_key_is_sent_as_bearer() {
    let srv = TestServer::start(|r, _| scoring_reply(r));
    let ep = Endpoint::new(&srv.url, "m").api_key("s3cret");
    let mut m =
        OpenAiModel::new(ep, ServeOptions::new(Tokenization::Client(Arc::new(Bytes)))).unwrap();
    m.loglikelihood(&reqs()[..1]).unwrap();
    assert_eq!(srv.requests()[0].header("authorization"), Some("Bearer s3cret"));
}

#[test]
fn refused_connection_is_a_transport_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let ep =
        Endpoint::new(format!("http://127.0.0.1:{port}"), "m").retries(2, Duration::from_millis(5));
    let mut m =
        OpenAiModel::new(ep, ServeOptions::new(Tokenization::Client(Arc::new(Bytes)))).unwrap();
    let e = m.loglikelihood(&reqs()[..1]).unwrap_err();
    match source_of(&e) {
        ServeError::RetriesExhausted { last, .. } => {
            assert!(matches!(**last, ServeError::Transport { .. }), "{last:?}")
        }
        other => panic!("{other:?}"),
    }
}

fn source_of(e: &ModelError) -> &ServeError {
    let ModelError::Backend { source, .. } = e else { panic!("not a backend error: {e:?}") };
    source.downcast_ref::<ServeError>().expect("a ServeError")
}
