//! The crate's one integration-test binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod batching;
mod common;
mod full_data;
mod golden;
mod hostile;
mod loaders;
mod prompts;
mod props;
mod pyrandom;
mod scoring;
mod seams;
