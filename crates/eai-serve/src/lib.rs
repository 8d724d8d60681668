//! eai-serve: score and load-test the servers people deploy (vLLM, SGLang, TGI, llama.cpp's
//! server, `transformers serve`) through their OpenAI-compatible API.
//!
//! - [`OpenAiModel`] implements `eai_core::LanguageModel`: log-likelihoods through
//!   `/v1/completions` exactly as lm-evaluation-harness's `local-completions` computes them
//!   (`echo: true`, `logprobs: 1`, `max_tokens: 1`, temperature 0, token ids the client
//!   tokenized, `Σ token_logprobs[ctxlen:-1]`, greedy from `top_logprobs`), or with the
//!   server's tokenizer (text sent, the continuation found among the echoed tokens); generation through
//!   completions or chat completions with stop strings; batching, concurrency, timeouts and
//!   retries with backoff; a typed error when a server returns no prompt log-probabilities.
//! - [`run_load`] is a load generator (open loop at a Poisson rate or closed loop with N
//!   clients), streaming every request to time the first token and each one after, with the
//!   ML.ENERGY Benchmark's steady-state window ([`LoadRun::steady`]).
//! - [`select_gpus`] picks the GPUs a server uses from plain process data.
//!
//! The crate depends on `eai-core` only: a tokenizer plugs in through [`PairTokenizer`] and an
//! energy meter through [`EdgeMarker`], so no sibling crate is needed (the `eai` facade wires
//! in `eai-model`'s tokenizer and `eai-power`'s meter).
//!
//! ```
//! use eai_serve::{Endpoint, Percentiles};
//!
//! let ep = Endpoint::new("http://127.0.0.1:8000/v1", "my-model");
//! assert_eq!(ep.url("/v1/completions"), "http://127.0.0.1:8000/v1/completions");
//! let p = Percentiles::of(&[0.1, 0.2, 0.3]).unwrap();
//! assert!((p.p50 - 0.2).abs() < 1e-12);
//! ```
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub use crate::{
    backend::{
        GenerationRoute, OpenAiModel, PairTokenizer, ServeOptions, Tokenization, cut_at_stop,
    },
    client::{Attempts, Client, Endpoint},
    error::{Result, ServeError},
    gpus::{GpuProcesses, GpuSelection, SelectionBasis, proc_is_descendant, select_gpus},
    load::{
        Arrival, ClockMarker, EdgeMarker, LoadConfig, LoadRun, Percentiles, RequestRecord,
        SteadyState, run_load,
    },
    logprobs::TokenLogprobs,
};

mod backend;
mod client;
mod error;
mod gpus;
mod load;
mod logprobs;
