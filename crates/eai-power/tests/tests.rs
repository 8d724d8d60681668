#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs, missing_debug_implementations)]
//! Integration tests: integration methods on synthetic signals, the sampler and windows with
//! fake sources, and one test per row of the failure table (notes/power.md (d)).

mod failures;
mod hostile;
mod meter;
mod methods;
mod rapl;

use std::sync::OnceLock;
use std::time::Instant;

use eai_power::{
    DeviceStatus, Domain, PowerSource, Provenance, Reading, Signal, SignalSpec, SourceError,
    SourceInfo,
};

type ReadFn = dyn Fn(Signal, f64) -> Result<Reading, SourceError> + Send + Sync;
type StatusFn = dyn Fn(f64) -> Result<Option<DeviceStatus>, SourceError> + Send + Sync;

/// A scripted fake source: behaviour as a function of the signal and the seconds since the
/// first read.
pub struct Fake {
    pub info: SourceInfo,
    pub read: Box<ReadFn>,
    pub status: Option<Box<StatusFn>>,
    start: OnceLock<Instant>,
}

impl Fake {
    pub fn new(
        id: &str,
        signals: &[Signal],
        read: impl Fn(Signal, f64) -> Result<Reading, SourceError> + Send + Sync + 'static,
    ) -> Self {
        let mut info = SourceInfo::new(id, id, Domain::Gpu, Provenance::Synthetic);
        for s in signals {
            info = info.with_signal(SignalSpec::new(*s));
        }
        Self { info, read: Box::new(read), status: None, start: OnceLock::new() }
    }

    pub fn with_status(
        mut self,
        f: impl Fn(f64) -> Result<Option<DeviceStatus>, SourceError> + Send + Sync + 'static,
    ) -> Self {
        self.status = Some(Box::new(f));
        self
    }

    fn t(&self) -> f64 {
        self.start.get_or_init(Instant::now).elapsed().as_secs_f64()
    }
}

impl PowerSource for Fake {
    fn info(&self) -> SourceInfo {
        self.info.clone()
    }
    fn read(&self, signal: Signal) -> Result<Reading, SourceError> {
        let t = self.t();
        (self.read)(signal, t)
    }
    fn status(&self) -> Result<Option<DeviceStatus>, SourceError> {
        let t = self.t();
        match &self.status {
            Some(f) => f(t),
            None => Ok(None),
        }
    }
}

/// Power `p` W as instant power and an exact counter.
pub fn steady(p: f64) -> impl Fn(Signal, f64) -> Result<Reading, SourceError> + Send + Sync {
    move |sig, t| match sig {
        Signal::EnergyCounter => Ok(Reading::Energy(eai_core::Joules(p * t))),
        _ => Ok(Reading::Power(eai_core::Watts(p))),
    }
}

pub const BOTH: &[Signal] = &[Signal::InstantPower, Signal::EnergyCounter];
