//! Integration tests of eai-serve against loopback servers written in the tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod server;

mod backend;
mod load;
