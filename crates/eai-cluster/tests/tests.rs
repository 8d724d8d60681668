#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs, missing_debug_implementations)]
//! Integration tests on loopback only: two agents fed replayed traces with known totals and a
//! coordinator (sum, clock offsets, an agent killed mid-window, tokens), and a recorded DCGM
//! exporter scrape series served by a test HTTP server.

mod agents;
mod common;
mod dcgm;
