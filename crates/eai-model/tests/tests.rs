#![allow(clippy::unwrap_used, clippy::expect_used)]
//! eai-model integration tests (one binary).

#[macro_use]
mod common;
mod bloom;
mod bloom_gguf;
mod hostile;
mod parity;
mod r1_header;
mod real_model;
mod seams;
mod synthetic;
