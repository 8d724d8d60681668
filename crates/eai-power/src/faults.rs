//! [`FaultySource`]: wraps any [`PowerSource`] and fails on cue (a read error in a given
//! stretch, the device lost, a counter reset, a panicking or hanging read), so that what a meter
//! does with each fault can be tested against real sources and the real sampler.

use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use eai_core::Joules;

use crate::source::{DeviceStatus, PowerSource, Reading, Signal, SourceError, SourceInfo};

/// One scripted fault. Times are measured from the wrapped source's first read.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Fault {
    /// Reads of `signal` (every signal when `None`) fail with `error` from `from` until `until`
    /// (an NVML error mid-window: `SourceError::Transient`, or `NotSupported` at read time).
    Error {
        /// The signal affected, or all.
        signal: Option<Signal>,
        /// Start of the stretch.
        from: Duration,
        /// End of the stretch.
        until: Duration,
        /// The error returned.
        error: SourceError,
    },
    /// The device is lost at `at`: every later read fails with `SourceError::DeviceLost`.
    Lost {
        /// When.
        at: Duration,
    },
    /// The energy counter restarts from `to` at `at` (a driver reload, a GPU reset) and counts
    /// on from there at the wrapped source's rate.
    CounterReset {
        /// When.
        at: Duration,
        /// The value it restarts from.
        to: Joules,
    },
    /// The first read at or after `at` panics (a bug in a driver binding).
    Panic {
        /// When.
        at: Duration,
    },
    /// The first read at or after `at` blocks for `duration` before answering (an NVML call
    /// stuck in the driver). Use a duration far beyond the test for "never returns".
    Hang {
        /// When.
        at: Duration,
        /// How long the read blocks.
        duration: Duration,
    },
}

/// A [`PowerSource`] that forwards to `inner` except where a [`Fault`] says otherwise.
///
/// ```
/// use std::time::Duration;
/// use eai_core::Watts;
/// use eai_power::{ConstantSource, Fault, FaultySource, PowerSource, Signal};
/// let s = FaultySource::new(ConstantSource::new(Watts(100.0)))
///     .with(Fault::Lost { at: Duration::ZERO });
/// assert!(s.read(Signal::InstantPower).is_err());
/// ```
#[derive(Debug)]
pub struct FaultySource<S> {
    inner: S,
    faults: Vec<Fault>,
    start: OnceLock<Instant>,
    /// Faults that fire once (panic, hang) and have fired.
    fired: Mutex<Vec<usize>>,
    /// For a counter reset: the inner counter's value at the first read after it.
    reset_base: Mutex<Option<f64>>,
}

impl<S: PowerSource> FaultySource<S> {
    /// Wraps `inner` with no fault yet.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            faults: Vec::new(),
            start: OnceLock::new(),
            fired: Mutex::new(Vec::new()),
            reset_base: Mutex::new(None),
        }
    }

    /// Adds a fault.
    pub fn with(mut self, fault: Fault) -> Self {
        self.faults.push(fault);
        self
    }

    fn elapsed(&self) -> Duration {
        self.start.get_or_init(Instant::now).elapsed()
    }

    /// Whether one-shot fault `i` fires now (the first call after its time).
    fn fire_once(&self, i: usize) -> bool {
        let mut f = self.fired.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if f.contains(&i) {
            return false;
        }
        f.push(i);
        true
    }
}

impl<S: PowerSource> PowerSource for FaultySource<S> {
    fn info(&self) -> SourceInfo {
        self.inner.info()
    }

    fn read(&self, signal: Signal) -> Result<Reading, SourceError> {
        let t = self.elapsed();
        let mut reset_to = None;
        for (i, f) in self.faults.iter().enumerate() {
            match f {
                Fault::Error { signal: s, from, until, error }
                    if s.is_none_or(|s| s == signal) && t >= *from && t < *until =>
                {
                    return Err(error.clone());
                }
                Fault::Lost { at } if t >= *at => {
                    return Err(SourceError::DeviceLost("lost on cue (FaultySource)".into()));
                }
                Fault::Panic { at } if t >= *at && self.fire_once(i) => {
                    panic!("FaultySource: panic on cue at {t:?}");
                }
                Fault::Hang { at, duration } if t >= *at && self.fire_once(i) => {
                    std::thread::sleep(*duration);
                }
                Fault::CounterReset { at, to } if t >= *at => reset_to = Some(*to),
                _ => {}
            }
        }
        let r = self.inner.read(signal)?;
        match (r, reset_to) {
            (Reading::Energy(j), Some(to)) => {
                let mut base =
                    self.reset_base.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                let b = *base.get_or_insert(j.0);
                Ok(Reading::Energy(Joules(to.0 + (j.0 - b))))
            }
            (r, _) => Ok(r),
        }
    }

    fn status(&self) -> Result<Option<DeviceStatus>, SourceError> {
        self.inner.status()
    }
}
