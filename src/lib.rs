//! eai-cli: the `eai` program's subcommands as clap argument structs and functions, so the
//! binary (and your own clap program) can mount them. The pipeline they drive is `eai-study`;
//! the `eai` crate is the library facade and compiles no command-line parser.
#![forbid(unsafe_code)]

/// `eai agent` and `eai measure --agent` (feature `cluster`), mountable in your own program.
#[cfg(feature = "cluster")]
pub mod agent_cli;
/// The `eai` program's pipeline subcommands, mountable in your own clap program.
pub mod cli;
/// `--cuda` device sets and `eai study` over several of them.
pub mod device_cli;
mod serve_cli;
