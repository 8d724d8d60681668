//! Integration tests of the `eai` facade: the study pipeline end to end.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod cli;
#[cfg(feature = "cluster")]
mod cluster;
mod common;
mod devices;
mod fuzz_seeds;
#[cfg(target_os = "linux")]
mod measure;
mod real_model;
mod resume;
mod serve;
mod serve_llamacpp;
mod study;
