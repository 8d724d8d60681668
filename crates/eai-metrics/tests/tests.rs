#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Integration tests of eai-metrics: the paper's arithmetic and property tests.

mod paper_arithmetic;
mod predictor;
mod properties;
mod scenarios;
