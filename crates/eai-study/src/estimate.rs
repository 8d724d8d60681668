//! [`TdpEstimate`]: a labelled power *estimate* for machines without a power sensor.
//!
//! CodeCarbon, when it finds neither RAPL nor NVML, models CPU power as the processor's
//! thermal design power (TDP) scaled by the CPU load. This source does the same for this
//! process: `P = TDP × (CPU time of this process / (wall time × logical CPUs))`, measured over
//! a sliding window of at least 100 ms. It is labelled [`Provenance::Synthetic`], so every
//! window, run and report built on it says **estimate**, never measurement.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use eai_core::Watts;
use eai_power::{
    Domain, PowerSource, Provenance, Reading, Signal, SignalSpec, SourceError, SourceInfo,
};

/// Source id of the estimate (`estimate/cpu-tdp`).
pub const TDP_ESTIMATE_ID: &str = "estimate/cpu-tdp";

/// CPU power estimated from a TDP and this process's CPU utilisation (CodeCarbon's model
/// without sensors). Not a measurement: labelled [`Provenance::Synthetic`].
///
/// ```
/// use eai_study::TdpEstimate;
/// use eai_core::Watts;
/// use eai_power::{PowerSource, Provenance};
/// let est = TdpEstimate::new(Watts(65.0))?;
/// assert_eq!(est.info().provenance, Provenance::Synthetic);
/// assert!(est.info().name.contains("ESTIMATE"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct TdpEstimate {
    tdp: Watts,
    cpus: usize,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// (wall instant, process CPU seconds) pairs, oldest first, covering ≥ the window.
    history: Vec<(Instant, f64)>,
    last: Watts,
}

/// Window over which utilisation is averaged (CPU time has 10 ms tick resolution).
const WINDOW: Duration = Duration::from_millis(200);

impl TdpEstimate {
    /// An estimate for a processor of `tdp` watts (all its logical CPUs).
    ///
    /// # Errors
    /// [`crate::Error::Config`] for a TDP that is not a finite positive number.
    pub fn new(tdp: Watts) -> crate::Result<Self> {
        if !(tdp.0.is_finite() && tdp.0 > 0.0) {
            return Err(crate::Error::Config {
                field: "TDP estimate",
                reason: format!("{} W is not a positive number of watts", tdp.0),
            });
        }
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        Ok(Self { tdp, cpus, state: Mutex::new(State { history: Vec::new(), last: Watts(0.0) }) })
    }

    /// The TDP the estimate scales.
    pub fn tdp(&self) -> Watts {
        self.tdp
    }
}

/// CPU seconds (user + system) this process has used, from `/proc/self/stat`.
fn process_cpu_seconds() -> Result<f64, SourceError> {
    let stat = std::fs::read_to_string("/proc/self/stat")
        .map_err(|e| SourceError::NotSupported(format!("/proc/self/stat: {e}")))?;
    // The command name (field 2) may contain spaces; fields after it start past the last ')'.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| SourceError::NotSupported("/proc/self/stat: no `)`".into()))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ')': state is index 0, so utime (field 14) is index 11 and stime index 12.
    let parse = |i: usize| -> Result<f64, SourceError> {
        fields
            .get(i)
            .and_then(|s| s.parse::<f64>().ok())
            .ok_or_else(|| SourceError::NotSupported(format!("/proc/self/stat field {}", i + 3)))
    };
    // Linux reports in clock ticks, USER_HZ = 100 on every architecture the kernel exposes.
    Ok((parse(11)? + parse(12)?) / 100.0)
}

impl PowerSource for TdpEstimate {
    fn info(&self) -> SourceInfo {
        SourceInfo::new(
            TDP_ESTIMATE_ID,
            format!("CPU ESTIMATE: {} W TDP x process CPU utilisation (not measured)", self.tdp.0),
            Domain::Other { name: "cpu-estimate".into() },
            Provenance::Synthetic,
        )
        .with_signal(SignalSpec::new(Signal::InstantPower))
        .with_meta("model", "CodeCarbon-style TDP x CPU load, no sensor")
        .with_meta("tdp_w", self.tdp.0.to_string())
        .with_meta("logical_cpus", self.cpus.to_string())
    }

    fn read(&self, signal: Signal) -> Result<Reading, SourceError> {
        if signal != Signal::InstantPower {
            return Err(SourceError::NotSupported(format!(
                "the TDP estimate has no {} signal",
                signal.as_str()
            )));
        }
        let now = Instant::now();
        let cpu = process_cpu_seconds()?;
        let mut st = self.state.lock().map_err(|_| SourceError::Transient("poisoned".into()))?;
        st.history.push((now, cpu));
        // Keep one point older than the window so the span always covers it.
        while st.history.len() > 2 && now.duration_since(st.history[1].0) >= WINDOW {
            st.history.remove(0);
        }
        let (t0, c0) = st.history[0];
        let dt = now.duration_since(t0).as_secs_f64();
        if dt < 0.05 {
            return Ok(Reading::Power(st.last));
        }
        let util = ((cpu - c0) / (dt * self.cpus as f64)).clamp(0.0, 1.0);
        st.last = Watts(self.tdp.0 * util);
        Ok(Reading::Power(st.last))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_process_draws_more_than_idle() {
        let est = TdpEstimate::new(Watts(100.0)).unwrap();
        if process_cpu_seconds().is_err() {
            eprintln!("skipped: no /proc/self/stat on this system");
            return;
        }
        let _ = est.read(Signal::InstantPower).unwrap();
        std::thread::sleep(Duration::from_millis(250));
        let Reading::Power(idle) = est.read(Signal::InstantPower).unwrap() else { panic!() };
        let t = Instant::now();
        let mut x = 0u64;
        while t.elapsed() < Duration::from_millis(300) {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        std::hint::black_box(x);
        let Reading::Power(busy) = est.read(Signal::InstantPower).unwrap() else { panic!() };
        assert!(busy.0 > idle.0, "busy {busy} idle {idle}");
        assert!(busy.0 <= 100.0);
        assert!(est.read(Signal::EnergyCounter).is_err());
        assert!(TdpEstimate::new(Watts(f64::NAN)).is_err());
        assert!(TdpEstimate::new(Watts(0.0)).is_err());
    }
}
