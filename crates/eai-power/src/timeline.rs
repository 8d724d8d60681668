//! The recorded timeline: timestamped samples per (source, signal) channel, events and device
//! status. Plain data; serialises to JSON, and its samples to CSV.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::source::{DeviceStatus, Provenance, Signal, SourceInfo};

/// The latest sample time a loaded trace may hold: 2^62 ns (about 146 years), so that every sum
/// of a time and a duration the analysis forms stays far from `u64::MAX`.
pub const MAX_TRACE_NS: u64 = 1 << 62;

/// One reading: monotonic time in nanoseconds since the meter's anchor, and the value in the
/// signal's unit (W for power, J for counters). 16 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Nanoseconds since the timeline's anchor (`Instant`, never the wall clock); the midpoint
    /// of the read.
    pub t_ns: u64,
    /// Watts (power signals) or joules (counters, raw: not unwrapped).
    pub value: f64,
}

impl Sample {
    /// A sample at `t_ns` with `value`.
    pub fn new(t_ns: u64, value: f64) -> Self {
        Self { t_ns, value }
    }

    /// The time in seconds since the anchor.
    pub fn t_s(&self) -> f64 {
        self.t_ns as f64 * 1e-9
    }
}

/// Samples of one signal of one source.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Channel {
    /// Index into [`Timeline::sources`].
    pub source: usize,
    /// The signal.
    pub signal: Option<Signal>,
    /// Samples, strictly increasing in time.
    pub samples: Vec<Sample>,
    /// Readings rejected as absurd (NaN, negative, zero where invalid, above the bound) or with
    /// a non-monotonic timestamp.
    pub rejected: u64,
    /// Oldest samples dropped because the bounded buffer was full.
    pub dropped: u64,
}

/// Something that happened to a channel or source.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
#[non_exhaustive]
pub enum EventKind {
    /// No sample between `t_ns` and `until_ns` although the sampler should have read.
    Gap {
        /// End of the gap.
        until_ns: u64,
    },
    /// The device is gone; no further reads.
    DeviceLost {
        /// Driver message.
        reason: String,
    },
    /// The signal turned out unsupported at read time (e.g. symbol missing in an old driver).
    Unsupported {
        /// Driver message.
        reason: String,
    },
    /// Permission denied at read time.
    Permission {
        /// The fix.
        fix: String,
    },
    /// A transient read failure.
    Transient {
        /// Driver message.
        reason: String,
    },
    /// A reading was rejected (logged for the first few only; all are counted on the channel).
    Rejected {
        /// The rejected value.
        value: f64,
        /// Why.
        reason: String,
    },
    /// A sampler thread panicked; the panic was caught and the channel stopped.
    SamplerPanic {
        /// The panic message.
        message: String,
    },
    /// A read still had not returned when the sampler was stopped: its thread was left
    /// behind after waiting this long (the data ends where the read began).
    Hung {
        /// How long the stop waited, ms.
        waited_ms: u64,
    },
    /// A replayed trace ended.
    Exhausted,
    /// The measured work was interrupted by a signal (the trace ends early).
    Interrupted {
        /// The signal number.
        signal: i32,
    },
    /// The bounded buffer overflowed for the first time (later drops are only counted).
    Overflow,
}

/// A timestamped event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Event {
    /// When (ns since the anchor).
    pub t_ns: u64,
    /// Index into [`Timeline::sources`].
    pub source: usize,
    /// The signal, when the event concerns one.
    pub signal: Option<Signal>,
    /// What happened.
    pub kind: EventKind,
}

impl Event {
    /// A new event.
    pub fn new(t_ns: u64, source: usize, signal: Option<Signal>, kind: EventKind) -> Self {
        Self { t_ns, source, signal, kind }
    }
}

/// A device status reading.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StatusSample {
    /// When (ns since the anchor).
    pub t_ns: u64,
    /// Index into [`Timeline::sources`].
    pub source: usize,
    /// The status.
    pub status: DeviceStatus,
}

/// A complete recorded timeline: what the sampler saw. Windows are computed from it, during
/// the run or afterwards ([`Timeline::measure`]).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Timeline {
    /// The sources, in index order.
    pub sources: Vec<SourceInfo>,
    /// One channel per (source, signal).
    pub channels: Vec<Channel>,
    /// Events (errors, gaps, device loss) in time order per channel.
    pub events: Vec<Event>,
    /// Device status readings.
    pub status: Vec<StatusSample>,
    /// Process ids that belong to the measured work (the meter's own process and the measured
    /// command); other compute processes seen on a GPU make windows `Shared`.
    pub own_pids: Vec<u32>,
}

/// One row of the CSV trace format: `source,signal,t_s,value`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct CsvRow {
    source: String,
    signal: String,
    t_s: f64,
    value: f64,
}

impl Timeline {
    /// An empty timeline over `sources`.
    pub fn new(sources: Vec<SourceInfo>) -> Self {
        Self { sources, ..Self::default() }
    }

    /// The channel of `signal` of source `source`, if recorded.
    pub fn channel(&self, source: usize, signal: Signal) -> Option<&Channel> {
        self.channels.iter().find(|c| c.source == source && c.signal == Some(signal))
    }

    /// Appends a sample to the channel, creating it if needed. Samples whose time is not after
    /// the channel's last sample, or whose value is implausible whatever the sensor
    /// ([`implausible`](crate::implausible): not finite, negative, `1e308` W), are rejected and
    /// counted. Returns whether the sample was kept.
    pub fn push(&mut self, source: usize, signal: Signal, sample: Sample) -> bool {
        let idx = match self
            .channels
            .iter()
            .position(|c| c.source == source && c.signal == Some(signal))
        {
            Some(i) => i,
            None => {
                self.channels.push(Channel { source, signal: Some(signal), ..Channel::default() });
                self.channels.len() - 1
            }
        };
        let ch = &mut self.channels[idx];
        let monotonic = ch.samples.last().is_none_or(|l| sample.t_ns > l.t_ns);
        if !monotonic || crate::source::implausible(signal, sample.value).is_some() {
            ch.rejected += 1;
            return false;
        }
        ch.samples.push(sample);
        true
    }

    /// Writes the samples as CSV (`source,signal,t_s,value`, one row per sample). Source info,
    /// events and status are only in the JSON form.
    ///
    /// # Errors
    ///
    /// [`Error::Serde`] when writing fails.
    pub fn write_csv<W: Write>(&self, w: W) -> Result<()> {
        let mut wr = csv::Writer::from_writer(w);
        let ser = |e: csv::Error| Error::Serde { what: "timeline CSV".into(), source: e.into() };
        for ch in &self.channels {
            let (Some(sig), Some(src)) = (ch.signal, self.sources.get(ch.source)) else {
                continue;
            };
            for s in &ch.samples {
                wr.serialize(CsvRow {
                    source: src.id.clone(),
                    signal: sig.as_str().to_string(),
                    t_s: s.t_s(),
                    value: s.value,
                })
                .map_err(ser)?;
            }
        }
        wr.flush().map_err(|e| Error::Serde { what: "timeline CSV".into(), source: e.into() })
    }

    /// Reads the CSV form. Sources are reconstructed from the ids and labelled
    /// [`Provenance::Replayed`]; non-monotonic or non-finite rows are rejected and counted.
    ///
    /// # Errors
    ///
    /// [`Error::Parse`] naming the record for malformed rows or unknown signal names.
    pub fn read_csv<R: Read>(r: R, what: &str) -> Result<Self> {
        let mut rd = csv::Reader::from_reader(r);
        let mut tl = Timeline::default();
        for (i, row) in rd.deserialize::<CsvRow>().enumerate() {
            let row = row.map_err(|e| Error::Parse {
                what: format!("{what} record {}", i + 1),
                reason: e.to_string(),
            })?;
            let signal = Signal::parse(&row.signal).ok_or_else(|| Error::Parse {
                what: format!("{what} record {}", i + 1),
                reason: format!(
                    "unknown signal `{}` (expected instant, average or counter)",
                    row.signal
                ),
            })?;
            if !(row.t_s.is_finite() && row.t_s >= 0.0) {
                return Err(Error::Parse {
                    what: format!("{what} record {}", i + 1),
                    reason: format!("time {} is not a finite non-negative number", row.t_s),
                });
            }
            if row.t_s * 1e9 >= MAX_TRACE_NS as f64 {
                return Err(Error::Parse {
                    what: format!("{what} record {}", i + 1),
                    reason: format!(
                        "time {} s is beyond what a trace can hold ({} s)",
                        row.t_s,
                        MAX_TRACE_NS / 1_000_000_000
                    ),
                });
            }
            let src = match tl.sources.iter().position(|s| s.id == row.source) {
                Some(i) => i,
                None => {
                    let mut info = SourceInfo::new(
                        row.source.clone(),
                        row.source.clone(),
                        crate::source::Domain::Other { name: row.source.clone() },
                        Provenance::Replayed,
                    );
                    info.meta.push(("trace".into(), what.to_string()));
                    tl.sources.push(info);
                    tl.sources.len() - 1
                }
            };
            if tl.sources[src].spec(signal).is_none() {
                tl.sources[src].signals.push(crate::source::SignalSpec::new(signal));
            }
            tl.push(src, signal, Sample::new((row.t_s * 1e9).round() as u64, row.value));
        }
        Ok(tl)
    }

    /// Writes the JSON form (everything: sources, channels, events, status).
    ///
    /// # Errors
    ///
    /// [`Error::Serde`] when writing fails.
    pub fn write_json<W: Write>(&self, w: W) -> Result<()> {
        serde_json::to_writer(w, self)
            .map_err(|e| Error::Serde { what: "timeline JSON".into(), source: e.into() })
    }

    /// Reads the JSON form. Sources are relabelled [`Provenance::Replayed`]; samples are
    /// re-validated (non-monotonic or non-finite ones rejected and counted).
    ///
    /// # Errors
    ///
    /// [`Error::Parse`] when the JSON does not match.
    pub fn read_json<R: Read>(r: R, what: &str) -> Result<Self> {
        let raw: Timeline = serde_json::from_reader(r)
            .map_err(|e| Error::Parse { what: what.to_string(), reason: e.to_string() })?;
        let mut tl = Timeline {
            sources: raw.sources,
            channels: Vec::new(),
            events: raw.events,
            status: raw.status,
            own_pids: raw.own_pids,
        };
        for s in &mut tl.sources {
            if s.provenance == Provenance::Measured {
                s.provenance = Provenance::Replayed;
            }
        }
        for ch in raw.channels {
            let Some(sig) = ch.signal else { continue };
            if ch.source >= tl.sources.len() {
                return Err(Error::Parse {
                    what: what.to_string(),
                    reason: format!(
                        "channel refers to source {} of {}",
                        ch.source,
                        tl.sources.len()
                    ),
                });
            }
            for s in ch.samples {
                if s.t_ns >= MAX_TRACE_NS {
                    return Err(Error::Parse {
                        what: what.to_string(),
                        reason: format!(
                            "sample time {} ns is beyond what a trace can hold ({MAX_TRACE_NS} ns)",
                            s.t_ns
                        ),
                    });
                }
                tl.push(ch.source, sig, s);
            }
            if let Some(c) =
                tl.channels.iter_mut().find(|c| c.source == ch.source && c.signal == Some(sig))
            {
                c.rejected += ch.rejected;
                c.dropped += ch.dropped;
            }
        }
        Ok(tl)
    }

    /// Loads a trace file, CSV or JSON by extension (`.csv`, otherwise JSON).
    ///
    /// # Errors
    ///
    /// [`Error::Io`] naming the file, or [`Error::Parse`].
    pub fn load(path: &Path) -> Result<Self> {
        let f = std::fs::File::open(path)
            .map_err(|e| Error::Io { path: path.to_path_buf(), source: e })?;
        let what = path.display().to_string();
        let r = std::io::BufReader::new(f);
        if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv")) {
            Self::read_csv(r, &what)
        } else {
            Self::read_json(r, &what)
        }
    }

    /// Saves to a file, CSV or JSON by extension (`.csv`, otherwise JSON).
    ///
    /// # Errors
    ///
    /// [`Error::Io`] naming the file, or [`Error::Serde`].
    pub fn save(&self, path: &Path) -> Result<()> {
        let f = std::fs::File::create(path)
            .map_err(|e| Error::Io { path: path.to_path_buf(), source: e })?;
        let w = std::io::BufWriter::new(f);
        if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv")) {
            self.write_csv(w)
        } else {
            self.write_json(w)
        }
    }

    /// Time of the last sample of any channel.
    pub fn end_ns(&self) -> u64 {
        self.channels.iter().filter_map(|c| c.samples.last()).map(|s| s.t_ns).max().unwrap_or(0)
    }

    /// Bytes of sample storage (16 per sample).
    pub fn sample_bytes(&self) -> usize {
        self.channels.iter().map(|c| c.samples.len() * std::mem::size_of::<Sample>()).sum()
    }
}

/// A bounded ring of samples used by the live sampler.
#[derive(Debug)]
pub(crate) struct Ring {
    pub(crate) samples: VecDeque<Sample>,
    pub(crate) cap: usize,
    pub(crate) rejected: u64,
    pub(crate) dropped: u64,
}

impl Ring {
    pub(crate) fn new(cap: usize) -> Self {
        Self { samples: VecDeque::new(), cap: cap.max(2), rejected: 0, dropped: 0 }
    }

    /// Pushes; returns `Err(())` for a rejected (non-monotonic) sample and `Ok(true)` when the
    /// push overflowed for the first time.
    pub(crate) fn push(&mut self, s: Sample) -> std::result::Result<bool, ()> {
        if self.samples.back().is_some_and(|l| s.t_ns <= l.t_ns) {
            self.rejected += 1;
            return Err(());
        }
        let mut first_overflow = false;
        if self.samples.len() >= self.cap {
            self.samples.pop_front();
            first_overflow = self.dropped == 0;
            self.dropped += 1;
        }
        self.samples.push_back(s);
        Ok(first_overflow)
    }

    /// Samples with `lo <= t <= hi`, plus `extra` samples on each side.
    pub(crate) fn range(&self, lo: u64, hi: u64, extra: usize) -> Vec<Sample> {
        let start = self.samples.partition_point(|s| s.t_ns < lo).saturating_sub(extra);
        let end = (self.samples.partition_point(|s| s.t_ns <= hi) + extra).min(self.samples.len());
        self.samples.range(start..end).copied().collect()
    }

    /// The last `n` samples, oldest first.
    pub(crate) fn tail(&self, n: usize) -> Vec<Sample> {
        let skip = self.samples.len().saturating_sub(n);
        self.samples.iter().skip(skip).copied().collect()
    }

    pub(crate) fn last_t(&self) -> Option<u64> {
        self.samples.back().map(|s| s.t_ns)
    }

    pub(crate) fn first_t(&self) -> Option<u64> {
        self.samples.front().map(|s| s.t_ns)
    }
}
