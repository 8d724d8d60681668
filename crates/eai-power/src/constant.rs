//! [`ConstantSource`]: a fixed power, labelled [`Provenance::Constant`] in every result.

use std::sync::OnceLock;
use std::time::Instant;

use eai_core::{Joules, Watts};

use crate::source::{
    Domain, PowerSource, Provenance, Reading, Signal, SignalSpec, SourceError, SourceInfo,
};

/// A source that always draws the same power: instant power and an energy counter that grows
/// at exactly that rate. For tests, examples and overhead measurements; never a measurement.
#[derive(Debug)]
pub struct ConstantSource {
    power: Watts,
    id: String,
    start: OnceLock<Instant>,
}

impl ConstantSource {
    /// A constant source with id `constant/0`.
    pub fn new(power: Watts) -> Self {
        Self::with_id(power, "constant/0")
    }

    /// A constant source with a given id.
    pub fn with_id(power: Watts, id: impl Into<String>) -> Self {
        Self { power, id: id.into(), start: OnceLock::new() }
    }
}

impl PowerSource for ConstantSource {
    fn info(&self) -> SourceInfo {
        SourceInfo::new(
            self.id.clone(),
            format!("constant {} W (not measured)", self.power.0),
            Domain::Other { name: "constant".into() },
            Provenance::Constant,
        )
        .with_signal(SignalSpec::new(Signal::InstantPower))
        .with_signal(SignalSpec::new(Signal::EnergyCounter))
    }

    fn read(&self, signal: Signal) -> Result<Reading, SourceError> {
        match signal {
            Signal::InstantPower | Signal::AveragePower => Ok(Reading::Power(self.power)),
            Signal::EnergyCounter => {
                let s = self.start.get_or_init(Instant::now).elapsed().as_secs_f64();
                Ok(Reading::Energy(Joules(self.power.0 * s)))
            }
        }
    }
}
