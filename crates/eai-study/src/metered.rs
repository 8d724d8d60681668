//! [`Metered`]: any [`LanguageModel`] with every call inside an energy window.

use eai_core::{
    GenerateRequest, Generation, Joules, LanguageModel, Loglikelihood, LoglikelihoodRequest,
    ModelError, ModelInfo, Seconds,
};
use eai_power::{Meter, WindowId};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Which kind of call a window covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum CallKind {
    /// `loglikelihood`: prefill-only scoring.
    Loglikelihood,
    /// `generate_until`: prefill plus token-by-token decoding.
    Generation,
}

/// One call through a [`Metered`] model, before its energy is computed.
#[derive(Clone, Debug, PartialEq)]
struct Call {
    kind: CallKind,
    window: WindowId,
    requests: u64,
    tokens: Option<u64>,
}

/// Energy of one kind of call, summed over the calls of a [`Metered`] model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CallEnergy {
    /// The kind of call.
    pub kind: CallKind,
    /// Calls made.
    pub calls: u64,
    /// Requests answered.
    pub requests: u64,
    /// Tokens scored (log-likelihood) or generated, when the engine counted every one.
    pub tokens: Option<u64>,
    /// Time inside the calls.
    pub duration: Seconds,
    /// Energy of every source inside the calls (`None` when no source had data).
    pub energy: Option<Joules>,
}

impl CallEnergy {
    /// Joules per request.
    pub fn joules_per_request(&self) -> Option<f64> {
        let e = self.energy?;
        (self.requests > 0).then(|| e.0 / self.requests as f64)
    }

    /// Joules per token (scored or generated).
    pub fn joules_per_token(&self) -> Option<f64> {
        let (e, t) = (self.energy?, self.tokens?);
        (t > 0).then(|| e.0 / t as f64)
    }
}

/// A [`LanguageModel`] whose every call runs inside an energy window of a [`Meter`], so energy
/// is attributed to log-likelihood scoring (prefill) and to generation separately, per request
/// and per token.
///
/// Windows cost a timestamp each; energies are computed afterwards by [`Metered::energy`]. A
/// window holds the energy of every sampled device while the call ran (the whole GPU board or
/// CPU package, as the sensors report it), so nothing else should run on them meanwhile.
///
/// ```
/// use eai_study::Metered;
/// use eai_core::{LanguageModel, LoglikelihoodRequest, Watts};
/// use eai_power::{ConstantSource, Meter, MeterConfig};
/// # use eai_core::{GenerateRequest, Generation, Loglikelihood, ModelError, ModelInfo};
/// # struct Mine;
/// # impl LanguageModel for Mine {
/// #     fn info(&self) -> ModelInfo { ModelInfo::new("mine") }
/// #     fn loglikelihood(&mut self, r: &[LoglikelihoodRequest]) -> Result<Vec<Loglikelihood>, ModelError> {
/// #         std::thread::sleep(std::time::Duration::from_millis(50));
/// #         Ok(r.iter().map(|_| Loglikelihood { logprob: -1.0, is_greedy: true, tokens: Some(2) }).collect())
/// #     }
/// #     fn generate_until(&mut self, r: &[GenerateRequest]) -> Result<Vec<Generation>, ModelError> {
/// #         Ok(r.iter().map(|_| Generation::new("")).collect())
/// #     }
/// # }
///
/// let meter = Meter::start(vec![Box::new(ConstantSource::new(Watts(100.0)))], MeterConfig::new())?;
/// let mut lm = Metered::new(Mine, &meter);
/// lm.loglikelihood(&[LoglikelihoodRequest::new("2 + 2 =", " 4"), LoglikelihoodRequest::new("1 + 1 =", " 2")])?;
/// let e = lm.energy()?;
/// let ll = &e[0];
/// assert_eq!((ll.calls, ll.requests, ll.tokens), (1, 2, Some(4)));
/// assert!(ll.energy.unwrap().0 > 4.0); // ≈ 100 W × 50 ms
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Metered<'m, M> {
    inner: M,
    meter: &'m Meter,
    calls: Vec<Call>,
    label: String,
}

impl<'m, M: LanguageModel> Metered<'m, M> {
    /// Wraps `model`; windows are opened on `meter`.
    pub fn new(model: M, meter: &'m Meter) -> Self {
        let label = model.info().name;
        Self { inner: model, meter, calls: Vec::new(), label }
    }

    /// Names the windows `<label>:loglikelihood` / `<label>:generate` (default: the model's
    /// name).
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = label.into();
        self
    }

    /// The wrapped model.
    pub fn get_ref(&self) -> &M {
        &self.inner
    }

    /// The wrapped model, mutably (calls made through it directly are not metered).
    pub fn get_mut(&mut self) -> &mut M {
        &mut self.inner
    }

    /// Unwraps the model.
    pub fn into_inner(self) -> M {
        self.inner
    }

    /// The window ids of the calls so far, in call order.
    pub fn windows(&self) -> Vec<WindowId> {
        self.calls.iter().map(|c| c.window).collect()
    }

    /// Forgets the calls so far (e.g. between tasks).
    pub fn reset(&mut self) {
        self.calls.clear();
    }

    /// Energy per kind of call since construction or the last [`reset`](Metered::reset): one
    /// entry per kind that was called, log-likelihood first.
    ///
    /// # Errors
    /// [`Error::Power`] when a window cannot be computed.
    pub fn energy(&self) -> Result<Vec<CallEnergy>> {
        call_energy(self.meter, &self.label, &self.calls)
    }

    /// The calls so far, to compute their energy later (after an enclosing window closes),
    /// leaving the wrapper empty.
    pub(crate) fn take_calls(&mut self) -> PendingCalls<'m> {
        PendingCalls {
            meter: self.meter,
            label: self.label.clone(),
            calls: std::mem::take(&mut self.calls),
        }
    }
}

/// Calls of a [`Metered`] model whose energy is computed later.
#[derive(Debug)]
pub(crate) struct PendingCalls<'m> {
    meter: &'m Meter,
    label: String,
    calls: Vec<Call>,
}

impl PendingCalls<'_> {
    /// As [`Metered::energy`].
    pub(crate) fn energy(&self) -> Result<Vec<CallEnergy>> {
        call_energy(self.meter, &self.label, &self.calls)
    }
}

fn call_energy(meter: &Meter, label: &str, calls: &[Call]) -> Result<Vec<CallEnergy>> {
    let mut out: Vec<CallEnergy> = Vec::new();
    for c in calls {
        let m = meter
            .measurement(c.window)
            .map_err(|e| Error::power(format!("{label} call window"), e))?;
        let entry = match out.iter_mut().find(|e| e.kind == c.kind) {
            Some(e) => e,
            None => {
                out.push(CallEnergy {
                    kind: c.kind,
                    calls: 0,
                    requests: 0,
                    tokens: Some(0),
                    duration: Seconds(0.0),
                    energy: None,
                });
                let n = out.len() - 1;
                &mut out[n]
            }
        };
        entry.calls += 1;
        entry.requests += c.requests;
        entry.tokens = match (entry.tokens, c.tokens) {
            (Some(a), Some(b)) => Some(a + b),
            _ => None,
        };
        entry.duration += m.duration;
        if let Some(e) = m.energy() {
            entry.energy = Some(entry.energy.unwrap_or(Joules::ZERO) + e);
        }
    }
    out.sort_by_key(|e| e.kind);
    Ok(out)
}

fn sum_tokens(it: impl Iterator<Item = Option<u32>>) -> Option<u64> {
    it.map(|t| t.map(u64::from)).sum()
}

impl<M: LanguageModel> LanguageModel for Metered<'_, M> {
    fn info(&self) -> ModelInfo {
        self.inner.info()
    }

    fn loglikelihood(
        &mut self,
        reqs: &[LoglikelihoodRequest],
    ) -> Result<Vec<Loglikelihood>, ModelError> {
        let w = self.meter.begin(&format!("{}:loglikelihood", self.label));
        let out = self.inner.loglikelihood(reqs);
        // `end` fails only for an unknown or ended window, impossible for our own fresh id.
        let _ = self.meter.end(w);
        let tokens = out.as_ref().ok().and_then(|o| sum_tokens(o.iter().map(|l| l.tokens)));
        self.calls.push(Call {
            kind: CallKind::Loglikelihood,
            window: w,
            requests: reqs.len() as u64,
            tokens,
        });
        out
    }

    fn generate_until(&mut self, reqs: &[GenerateRequest]) -> Result<Vec<Generation>, ModelError> {
        let w = self.meter.begin(&format!("{}:generate", self.label));
        let out = self.inner.generate_until(reqs);
        let _ = self.meter.end(w);
        let tokens = out.as_ref().ok().and_then(|o| sum_tokens(o.iter().map(|g| g.tokens)));
        self.calls.push(Call {
            kind: CallKind::Generation,
            window: w,
            requests: reqs.len() as u64,
            tokens,
        });
        out
    }

    fn loglikelihood_rolling(
        &mut self,
        reqs: &[eai_core::RollingRequest],
    ) -> Result<Vec<eai_core::RollingLoglikelihood>, ModelError> {
        let w = self.meter.begin(&format!("{}:loglikelihood_rolling", self.label));
        let out = self.inner.loglikelihood_rolling(reqs);
        let _ = self.meter.end(w);
        let tokens = out.as_ref().ok().and_then(|o| sum_tokens(o.iter().map(|r| r.tokens)));
        let requests = reqs.len() as u64;
        self.calls.push(Call { kind: CallKind::Loglikelihood, window: w, requests, tokens });
        out
    }

    fn supports(&self, kind: eai_core::RequestKind) -> Option<bool> {
        self.inner.supports(kind)
    }

    fn forward_passes(&self) -> Option<u64> {
        self.inner.forward_passes()
    }

    fn truncated_requests(&self) -> Option<u64> {
        self.inner.truncated_requests()
    }

    fn batch_hint(&self) -> Option<eai_core::BatchHint> {
        self.inner.batch_hint()
    }

    fn engine_time(&self) -> Option<eai_core::EngineTime> {
        self.inner.engine_time()
    }
}
