//! Integration tests of the `eai` facade: the study pipeline end to end.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod cli;
mod common;
mod real_model;
mod serve;
mod serve_llamacpp;
mod study;
