//! GPU energy from where clusters already have it: a Prometheus endpoint exposing NVIDIA DCGM
//! exporter metrics (`DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION`, mJ since driver load, and
//! `DCGM_FI_DEV_POWER_USAGE`, W), one [`PowerSource`] per GPU per host.
//!
//! Each source declares its scrape interval ([`eai_power::SCRAPE_INTERVAL_META`]), so every
//! window carries [`eai_power::Flag::Scraped`]: the resolution and a hard error bound. The
//! counter is preferred (window energy = counter delta); power alone is integrated only when
//! the counter is absent (a `Fallback` flag says so).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use eai_core::{Joules, Watts};
use eai_power::{
    Domain, MeterConfig, PowerSource, Provenance, Reading, SCRAPE_INTERVAL_META, Signal,
    SignalSpec, SourceError, SourceInfo,
};

use crate::error::{Error, Result};
use crate::http;
use crate::prom::{Exposition, PromSample};

/// The energy counter dcgm-exporter exports (field 156, mJ since the driver loaded).
pub const DCGM_ENERGY: &str = "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION";
/// The power gauge dcgm-exporter exports (field 155, W; NVML's averaged power).
pub const DCGM_POWER: &str = "DCGM_FI_DEV_POWER_USAGE";

/// Where and how to scrape.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct DcgmConfig {
    /// The endpoint, e.g. `http://gpu-node-1:9400/metrics` (dcgm-exporter) or a Prometheus
    /// `/federate?match[]=...` URL.
    pub url: String,
    /// Bearer token sent with every scrape (an authenticating proxy or Prometheus in front).
    pub token: Option<String>,
    /// How often to scrape (default 1 s). The resolution stated on windows is the larger of
    /// this and the exporter's own collection interval as observed in the values.
    pub interval: Duration,
    /// Connect and read timeout per scrape (default 5 s).
    pub timeout: Duration,
    /// Only GPUs of these hosts (`Hostname` label); all when empty.
    pub hosts: Vec<String>,
}

impl DcgmConfig {
    /// Scrape `url` every second.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            token: None,
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(5),
            hosts: Vec::new(),
        }
    }

    /// Sets the bearer token.
    pub fn token(mut self, t: impl Into<String>) -> Self {
        self.token = Some(t.into());
        self
    }

    /// Sets the scrape interval.
    pub fn interval(mut self, d: Duration) -> Self {
        self.interval = d;
        self
    }

    /// Sets the timeout.
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = d;
        self
    }

    /// Keeps only these hosts.
    pub fn hosts(mut self, h: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.hosts = h.into_iter().map(Into::into).collect();
        self
    }

    /// Meter settings for these sources: every signal read once per interval (a read is a
    /// scrape shared by all GPUs of the endpoint), no edge reads or calibration bursts (a
    /// scrape cannot be placed more finely than the exporter updates).
    pub fn meter_config(&self) -> MeterConfig {
        let hz = 1.0 / self.interval.as_secs_f64().max(1e-3);
        let mut m =
            MeterConfig::new().instant_hz(hz).average_hz(hz).counter_hz(hz).edge_reads(false);
        m.sampler.counter_burst_hz = hz;
        m.sampler.status_hz = hz.min(1.0);
        m.settle_timeout = self.interval * 3;
        m
    }

    /// How long after a window's end to wait before computing it so that its error bound
    /// exists: reads must land more than the stated resolution past the end. With an
    /// exporter that updates every `exporter_interval` (or at least the scrape interval):
    /// `2 × max(interval, exporter_interval) + interval`.
    pub fn settle(&self, exporter_interval: Option<Duration>) -> Duration {
        let l = exporter_interval.unwrap_or(self.interval).max(self.interval);
        2 * l + self.interval
    }
}

#[derive(Debug)]
struct Cache {
    at: Option<Instant>,
    latest: Option<Arc<Exposition>>,
    /// Last counter value per GPU key (mJ), for reset detection.
    counters: HashMap<String, f64>,
    resets: Vec<Error>,
}

/// One endpoint, scraped at most once per half interval whatever the number of GPUs read.
#[derive(Debug)]
struct Scraper {
    cfg: DcgmConfig,
    fallback_host: String,
    cache: Mutex<Cache>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Scraper {
    fn scrape(&self) -> Result<Exposition> {
        let r =
            http::request("GET", &self.cfg.url, self.cfg.token.as_deref(), None, self.cfg.timeout)?;
        let body = http::expect_ok(&self.cfg.url, r)?;
        let text = String::from_utf8(body).map_err(|_| Error::BadResponse {
            url: self.cfg.url.clone(),
            reason: "body is not UTF-8".into(),
        })?;
        Exposition::parse(&text, &self.cfg.url)
    }

    fn latest(&self) -> Result<Arc<Exposition>> {
        let mut c = lock(&self.cache);
        if let (Some(at), Some(e)) = (c.at, &c.latest)
            && at.elapsed() < self.cfg.interval / 2
        {
            return Ok(Arc::clone(e));
        }
        let e = Arc::new(self.scrape()?);
        for s in e.metric(DCGM_ENERGY) {
            let Some(key) = gpu_key(s, &self.fallback_host) else { continue };
            if let Some(prev) = c.counters.insert(key.clone(), s.value)
                && let Err(err) = check_counter(&key, prev, s.value)
            {
                tracing::warn!(%err, "dcgm counter reset");
                c.resets.push(err);
            }
        }
        c.at = Some(Instant::now());
        c.latest = Some(Arc::clone(&e));
        Ok(e)
    }
}

/// Checks one counter step: a decrease is a reset (driver reload, GPU reset), reported as
/// [`Error::CounterReset`]; windows spanning it are flagged `CounterReset` by `eai-power`.
///
/// # Errors
///
/// [`Error::CounterReset`] when `new_mj < prev_mj`.
pub fn check_counter(gpu: &str, prev_mj: f64, new_mj: f64) -> Result<()> {
    if new_mj < prev_mj {
        return Err(Error::CounterReset { gpu: gpu.to_string(), from_mj: prev_mj, to_mj: new_mj });
    }
    Ok(())
}

/// `host/UUID` of a sample: host from `Hostname` (dcgm-exporter), else `instance`
/// (Prometheus federation), else the endpoint's host; GPU from `UUID`, else `gpu`.
fn gpu_key(s: &PromSample, fallback_host: &str) -> Option<String> {
    let host = s.label("Hostname").or_else(|| s.label("instance")).unwrap_or(fallback_host);
    let gpu = s.label("UUID").or_else(|| s.label("gpu"))?;
    Some(format!("{host}/{gpu}"))
}

/// One GPU of one host behind a DCGM exporter endpoint.
#[derive(Debug)]
pub struct DcgmGpu {
    scraper: Arc<Scraper>,
    key: String,
    info: SourceInfo,
}

impl DcgmGpu {
    /// `host/UUID`.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Counter resets seen on this endpoint so far (each also flags the windows it falls in).
    pub fn resets(&self) -> Vec<String> {
        lock(&self.scraper.cache).resets.iter().map(ToString::to_string).collect()
    }

    fn find<'a>(&self, e: &'a Exposition, metric: &'a str) -> Option<&'a PromSample> {
        e.metric(metric)
            .find(|s| gpu_key(s, &self.scraper.fallback_host).as_deref() == Some(&self.key))
    }
}

impl PowerSource for DcgmGpu {
    fn info(&self) -> SourceInfo {
        self.info.clone()
    }

    fn read(&self, signal: Signal) -> std::result::Result<Reading, SourceError> {
        let metric = match signal {
            Signal::EnergyCounter => DCGM_ENERGY,
            Signal::AveragePower => DCGM_POWER,
            other => return Err(SourceError::NotSupported(format!("{other:?} via DCGM"))),
        };
        let e = self.scraper.latest().map_err(|e| match e {
            Error::Unauthorized { .. } => SourceError::Permission {
                fix: "pass the endpoint's bearer token (--dcgm-token-file)".into(),
            },
            other => SourceError::Transient(other.to_string()),
        })?;
        let s = self.find(&e, metric).ok_or_else(|| {
            SourceError::Transient(format!(
                "{} missing from the scrape of {}",
                self.key, self.scraper.cfg.url
            ))
        })?;
        if !s.value.is_finite() || s.value < 0.0 {
            return Err(SourceError::Transient(format!("{metric} = {} for {}", s.value, self.key)));
        }
        Ok(match signal {
            Signal::EnergyCounter => Reading::Energy(Joules(s.value * 1e-3)),
            _ => Reading::Power(Watts(s.value)),
        })
    }
}

/// Scrapes `cfg.url` once and returns one source per GPU per host found.
///
/// # Errors
///
/// Connection and HTTP errors ([`Error::Unauthorized`] for a refused token), malformed
/// exposition ([`Error::Exposition`] naming the line), [`Error::MissingMetric`] when neither
/// the energy counter nor the power gauge is exported, or no GPU matches `cfg.hosts`.
pub fn discover_dcgm(cfg: &DcgmConfig) -> Result<Vec<DcgmGpu>> {
    if cfg.interval < Duration::from_millis(10) || cfg.interval > Duration::from_secs(3600) {
        return Err(Error::Config {
            field: "interval",
            reason: format!("{:?} is not in [10 ms, 1 h]", cfg.interval),
        });
    }
    let fallback_host = http::Url::parse(&cfg.url)?
        .authority
        .rsplit_once(':')
        .map_or_else(String::new, |(h, _)| h.to_string());
    let scraper = Arc::new(Scraper {
        cfg: cfg.clone(),
        fallback_host: fallback_host.clone(),
        cache: Mutex::new(Cache {
            at: None,
            latest: None,
            counters: HashMap::new(),
            resets: Vec::new(),
        }),
    });
    let e = scraper.latest()?;
    let mut keys: Vec<(String, &PromSample)> = Vec::new();
    for s in e.metric(DCGM_ENERGY).chain(e.metric(DCGM_POWER)) {
        let Some(k) = gpu_key(s, &fallback_host) else { continue };
        let host = k.split('/').next().unwrap_or("");
        if !cfg.hosts.is_empty() && !cfg.hosts.iter().any(|h| h == host) {
            continue;
        }
        if !keys.iter().any(|(x, _)| *x == k) {
            keys.push((k, s));
        }
    }
    if keys.is_empty() {
        let hint = if e.metric(DCGM_ENERGY).next().is_some()
            || e.metric(DCGM_POWER).next().is_some()
        {
            format!("no GPU of hosts {:?}", cfg.hosts)
        } else {
            "enable DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION (and DCGM_FI_DEV_POWER_USAGE) in the exporter's collectors CSV (both are in dcgm-exporter's default-counters.csv)".into()
        };
        return Err(Error::MissingMetric {
            what: cfg.url.clone(),
            metric: DCGM_ENERGY.into(),
            hint,
        });
    }
    let interval_ms = cfg.interval.as_millis().to_string();
    let mut gpus = Vec::new();
    for (key, s) in keys {
        let (host, uuid) = key.split_once('/').unwrap_or(("", &key));
        let name = s.label("modelName").map_or_else(|| "GPU".to_string(), str::to_string);
        let mut info =
            SourceInfo::new(format!("dcgm/{key}"), name, Domain::Gpu, Provenance::Measured)
                .with_meta(SCRAPE_INTERVAL_META, interval_ms.clone())
                .with_meta("endpoint", cfg.url.clone())
                .with_meta("host", host)
                .with_meta("uuid", uuid);
        for l in ["gpu", "pci_bus_id", "device", "DCGM_FI_DRIVER_VERSION"] {
            if let Some(v) = s.label(l) {
                info = info.with_meta(l, v);
            }
        }
        let probe = DcgmGpu { scraper: Arc::clone(&scraper), key: key.clone(), info: info.clone() };
        let has = |m| probe.find(&e, m).is_some();
        if has(DCGM_ENERGY) {
            info = info.with_signal(SignalSpec::new(Signal::EnergyCounter));
        } else {
            info.unsupported.push((Signal::EnergyCounter, format!("{DCGM_ENERGY} not exported")));
        }
        if has(DCGM_POWER) {
            info =
                info.with_signal(SignalSpec::new(Signal::AveragePower).update_period(cfg.interval));
        } else {
            info.unsupported.push((Signal::AveragePower, format!("{DCGM_POWER} not exported")));
        }
        gpus.push(DcgmGpu { scraper: Arc::clone(&scraper), key, info });
    }
    Ok(gpus)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn resets_are_typed() {
        assert!(check_counter("h/GPU-0", 10.0, 12.0).is_ok());
        assert!(matches!(
            check_counter("h/GPU-0", 10.0, 2.0),
            Err(Error::CounterReset { from_mj, to_mj, .. }) if from_mj == 10.0 && to_mj == 2.0
        ));
    }

    #[test]
    fn keys_prefer_hostname_and_uuid() {
        let e = Exposition::parse(
            "m{gpu=\"1\",UUID=\"GPU-a\",Hostname=\"n1\"} 1\nm{gpu=\"2\",instance=\"n2:9400\"} 1\nm{x=\"y\"} 1\n",
            "t",
        )
        .unwrap();
        let k: Vec<_> = e.samples.iter().map(|s| gpu_key(s, "fb")).collect();
        assert_eq!(k, [Some("n1/GPU-a".into()), Some("n2:9400/2".into()), None]);
    }
}
