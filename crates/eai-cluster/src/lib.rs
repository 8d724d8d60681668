//! eai-cluster: energy of every GPU and node that serves.
//!
//! Three pieces, all over plain HTTP/1.1 on `std::net` (no TLS: terminate it in a proxy):
//!
//! - [`discover_dcgm`]: a [`PowerSource`](eai_power::PowerSource) per GPU per host from a
//!   Prometheus endpoint exposing NVIDIA DCGM exporter metrics (the energy counter first, the
//!   power gauge as fallback). Every window states the scrape resolution and a hard error
//!   bound ([`eai_power::Flag::Scraped`]).
//! - [`Agent`]: the `eai agent` process of each node — samples its GPUs and CPUs with
//!   `eai-power` and serves windows (by name or by time range), the trace, health and
//!   Prometheus counters, behind a bearer token.
//! - [`Coordinator`]: sums agents, estimates each agent's clock offset NTP-style (uncertainty
//!   = half the round-trip delay), and flags — never drops — an agent lost mid-window.
//!
//! **Design decision.** The agent owns no measurement logic: windows are `eai-power`
//! [`Meter`](eai_power::Meter) windows, shipped as the same `Measurement` JSON. The coordinator
//! adds only what crossing machines needs: clocks and partial failure.
//!
//! ```
//! use eai_cluster::{Agent, AgentConfig, AgentSpec, Coordinator};
//! use eai_core::Watts;
//! use eai_power::ConstantSource;
//!
//! let cfg = AgentConfig::new(Some("s3cret".into())).listen("127.0.0.1:0").host("node-a");
//! let agent = Agent::start(vec![Box::new(ConstantSource::new(Watts(100.0)))], cfg)?;
//! let coord = Coordinator::new(vec![AgentSpec::new(agent.url(), Some("s3cret".into()))]);
//! let off = coord.sync(3).remove(0)?;
//! assert!(off.offset_ns.abs() <= off.uncertainty_ns + 1_000_000); // same host: ~0
//! coord.begin("job");
//! std::thread::sleep(std::time::Duration::from_millis(200));
//! let w = coord.end("job");
//! assert!(w.complete && w.energy.unwrap().0 > 0.0);
//! agent.stop()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]

pub use crate::{
    agent::{
        Agent, AgentConfig, AgentHealth, AgentTrace, AgentWindow, TimeStamps, WindowBegin,
        host_name,
    },
    coordinator::{
        AgentLost, AgentOutcome, AgentSpec, ClockOffset, ClusterFlag, ClusterWindow, Coordinator,
        now_unix_ns,
    },
    dcgm::{DCGM_ENERGY, DCGM_POWER, DcgmConfig, DcgmGpu, check_counter, discover_dcgm},
    error::{Error, Result},
    prom::{CONTENT_TYPE, Exposition, MetricType, PromSample, PromWriter},
};

mod agent;
mod coordinator;
mod dcgm;
mod error;
mod http;
mod prom;
