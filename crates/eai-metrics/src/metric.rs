//! The [`Metric`] trait and the built-in metrics: EOR, TWEOR, per-token and per-request energy,
//! mean power, energy-delay product, carbon and cost.

use eai_core::Watts;

use crate::error::{Error, Result, positive};
use crate::quantity::{
    EnergyPrice, GramsCo2e, GramsCo2ePerKwh, JOULES_PER_KWH, JouleSeconds, JoulesPerRequest,
    JoulesPerToken, Money, ScorePerWattHour, ScorePerWattHourSecond, TokensPerJoule,
};
use crate::run::Run;

/// A number computed from one [`Run`]. Object safe: keep them in a `Vec<Box<dyn Metric>>`.
///
/// Implementations return a typed error when an input is missing or zero, never NaN and never
/// a panic. The built-in metrics below are the paper's and the usual serving ones; add your
/// own by implementing three methods:
///
/// ```
/// use eai_metrics::{Metric, Result, Run};
///
/// /// Output tokens per second.
/// struct Throughput;
/// impl Metric for Throughput {
///     fn name(&self) -> &str { "throughput" }
///     fn unit(&self) -> &str { "token/s" }
///     fn compute(&self, run: &Run) -> Result<f64> {
///         let t = run.wall()?.0;
///         if t == 0.0 { return Err(eai_metrics::Error::Zero { run: run.label(), field: "wall" }); }
///         Ok(run.output_tokens()? as f64 / t)
///     }
/// }
/// let run = Run::builder("m", "fp16", "RTX-4090").wall(eai_core::Seconds(2.0)).output_tokens(100).build()?;
/// assert_eq!(Throughput.compute(&run)?, 50.0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait Metric {
    /// A short identifier (`eor`, `j_per_token`).
    fn name(&self) -> &str;
    /// The unit of [`compute`](Metric::compute)'s value (`score/Wh`).
    fn unit(&self) -> &str;
    /// The value for one run.
    ///
    /// # Errors
    /// [`Error::Missing`] / [`Error::Zero`] when an input is absent or zero.
    fn compute(&self, run: &Run) -> Result<f64>;
}

impl<M: Metric + ?Sized> Metric for &M {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn unit(&self) -> &str {
        (**self).unit()
    }
    fn compute(&self, run: &Run) -> Result<f64> {
        (**self).compute(run)
    }
}

impl<M: Metric + ?Sized> Metric for Box<M> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn unit(&self) -> &str {
        (**self).unit()
    }
    fn compute(&self, run: &Run) -> Result<f64> {
        (**self).compute(run)
    }
}

/// Which token count a per-token metric divides by.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tokens {
    /// Generated tokens (the default: decode dominates serving energy).
    #[default]
    Output,
    /// Prompt tokens.
    Input,
    /// Prompt plus generated tokens.
    Total,
}

fn energy_wh(run: &Run) -> Result<f64> {
    let e = run.energy()?;
    positive(&run.label(), "energy", e.0).map_err(|_| zero_or(run, "energy", e.0))?;
    Ok(e.to_watt_hours())
}

fn zero_or(run: &Run, field: &'static str, v: f64) -> Error {
    if v == 0.0 {
        run.zero(field)
    } else {
        Error::Invalid { run: run.label(), field, value: v, reason: "must be positive and finite" }
    }
}

fn wall_s(run: &Run) -> Result<f64> {
    let w = run.wall()?.0;
    if w == 0.0 {
        return Err(run.zero("wall"));
    }
    Ok(w)
}

fn tokens(run: &Run, which: Tokens) -> Result<u64> {
    let (n, field) = match which {
        Tokens::Output => (run.output_tokens()?, "output_tokens"),
        Tokens::Input => (run.input_tokens()?, "input_tokens"),
        Tokens::Total => (run.input_tokens()?.saturating_add(run.output_tokens()?), "tokens"),
    };
    if n == 0 {
        return Err(run.zero(field));
    }
    Ok(n)
}

impl Run {
    /// EOR = score / energy (Wh): the paper's Energy Output Ratio.
    ///
    /// # Errors
    /// Missing score or energy; zero energy.
    pub fn eor(&self) -> Result<ScorePerWattHour> {
        let s = self.score()?;
        Ok(ScorePerWattHour(s / energy_wh(self)?))
    }

    /// TWEOR = score / (energy (Wh) × time (s)): the paper's Time-Weighted EOR.
    ///
    /// # Errors
    /// Missing score, energy or wall time; zero energy or time.
    pub fn tweor(&self) -> Result<ScorePerWattHourSecond> {
        let s = self.score()?;
        Ok(ScorePerWattHourSecond(s / (energy_wh(self)? * wall_s(self)?)))
    }

    /// Energy per token (`which` tokens).
    ///
    /// # Errors
    /// Missing energy or token count; zero tokens.
    pub fn joules_per_token(&self, which: Tokens) -> Result<JoulesPerToken> {
        let n = tokens(self, which)?;
        Ok(JoulesPerToken(self.energy()?.0 / n as f64))
    }

    /// Tokens per joule (`which` tokens).
    ///
    /// # Errors
    /// Missing energy or token count; zero energy or tokens.
    pub fn tokens_per_joule(&self, which: Tokens) -> Result<TokensPerJoule> {
        let n = tokens(self, which)?;
        let e = energy_wh(self)? * 3600.0;
        Ok(TokensPerJoule(n as f64 / e))
    }

    /// Energy per request.
    ///
    /// # Errors
    /// Missing energy or request count; zero requests.
    pub fn joules_per_request(&self) -> Result<JoulesPerRequest> {
        let n = self.requests()?;
        if n == 0 {
            return Err(self.zero("requests"));
        }
        Ok(JoulesPerRequest(self.energy()?.0 / n as f64))
    }

    /// Mean power = energy / wall time.
    ///
    /// # Errors
    /// Missing energy or wall time; zero wall time.
    pub fn mean_power(&self) -> Result<Watts> {
        Ok(Watts(self.energy()?.0 / wall_s(self)?))
    }

    /// Energy-delay product = energy × wall time.
    ///
    /// # Errors
    /// Missing energy or wall time.
    pub fn energy_delay(&self) -> Result<JouleSeconds> {
        Ok(JouleSeconds(self.energy()?.0 * self.wall()?.0))
    }

    /// Emissions = energy (kWh) × `pue` × grid intensity.
    ///
    /// # Errors
    /// Missing energy; a zero, negative or non-finite intensity, or a PUE below 1.
    pub fn carbon(&self, intensity: GramsCo2ePerKwh, pue: f64) -> Result<GramsCo2e> {
        check_intensity_pue(intensity, pue)?;
        Ok(GramsCo2e(self.energy()?.0 / JOULES_PER_KWH * pue * intensity.0))
    }

    /// Electricity cost = energy (kWh) × `pue` × price.
    ///
    /// # Errors
    /// Missing energy; a zero, negative or non-finite price, or a PUE below 1.
    pub fn cost(&self, price: &EnergyPrice, pue: f64) -> Result<Money> {
        check_price_pue(price, pue)?;
        Ok(Money {
            amount: self.energy()?.0 / JOULES_PER_KWH * pue * price.per_kwh,
            currency: price.currency.clone(),
        })
    }
}

pub(crate) fn check_intensity_pue(intensity: GramsCo2ePerKwh, pue: f64) -> Result<()> {
    positive("carbon", "grid_intensity", intensity.0)?;
    check_pue(pue)
}

pub(crate) fn check_price_pue(price: &EnergyPrice, pue: f64) -> Result<()> {
    positive("cost", "price_per_kwh", price.per_kwh)?;
    check_pue(pue)
}

fn check_pue(pue: f64) -> Result<()> {
    if !(pue.is_finite() && pue >= 1.0) {
        return Err(Error::Invalid {
            run: "facility".into(),
            field: "pue",
            value: pue,
            reason: "power usage effectiveness is finite and >= 1",
        });
    }
    Ok(())
}

macro_rules! simple_metric {
    ($(#[$meta:meta])* $name:ident, $id:literal, $unit:expr, |$run:ident| $body:expr) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct $name;
        impl Metric for $name {
            fn name(&self) -> &str {
                $id
            }
            fn unit(&self) -> &str {
                $unit
            }
            fn compute(&self, $run: &Run) -> Result<f64> {
                $body
            }
        }
    };
}

simple_metric!(
    /// [`Run::eor`] as a [`Metric`].
    Eor, "eor", ScorePerWattHour::UNIT, |run| Ok(run.eor()?.0)
);
simple_metric!(
    /// [`Run::tweor`] as a [`Metric`].
    Tweor, "tweor", ScorePerWattHourSecond::UNIT, |run| Ok(run.tweor()?.0)
);
simple_metric!(
    /// [`Run::joules_per_request`] as a [`Metric`].
    EnergyPerRequest, "j_per_request", JoulesPerRequest::UNIT, |run| Ok(run.joules_per_request()?.0)
);
simple_metric!(
    /// [`Run::mean_power`] as a [`Metric`].
    MeanPower, "mean_power", "W", |run| Ok(run.mean_power()?.0)
);
simple_metric!(
    /// [`Run::energy_delay`] as a [`Metric`].
    EnergyDelay, "edp", JouleSeconds::UNIT, |run| Ok(run.energy_delay()?.0)
);

/// [`Run::joules_per_token`] as a [`Metric`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EnergyPerToken(pub Tokens);

impl Metric for EnergyPerToken {
    fn name(&self) -> &str {
        match self.0 {
            Tokens::Output => "j_per_output_token",
            Tokens::Input => "j_per_input_token",
            Tokens::Total => "j_per_token",
        }
    }
    fn unit(&self) -> &str {
        JoulesPerToken::UNIT
    }
    fn compute(&self, run: &Run) -> Result<f64> {
        Ok(run.joules_per_token(self.0)?.0)
    }
}

/// [`Run::tokens_per_joule`] as a [`Metric`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TokensPerEnergy(pub Tokens);

impl Metric for TokensPerEnergy {
    fn name(&self) -> &str {
        match self.0 {
            Tokens::Output => "output_tokens_per_j",
            Tokens::Input => "input_tokens_per_j",
            Tokens::Total => "tokens_per_j",
        }
    }
    fn unit(&self) -> &str {
        TokensPerJoule::UNIT
    }
    fn compute(&self, run: &Run) -> Result<f64> {
        Ok(run.tokens_per_joule(self.0)?.0)
    }
}

/// [`Run::carbon`] as a [`Metric`], with the user's grid intensity and PUE.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Carbon {
    /// Grid intensity where the energy is drawn.
    pub intensity: GramsCo2ePerKwh,
    /// Facility power usage effectiveness (1.0 counts the measured energy only).
    pub pue: f64,
}

impl Metric for Carbon {
    fn name(&self) -> &str {
        "carbon"
    }
    fn unit(&self) -> &str {
        GramsCo2e::UNIT
    }
    fn compute(&self, run: &Run) -> Result<f64> {
        Ok(run.carbon(self.intensity, self.pue)?.0)
    }
}

/// [`Run::cost`] as a [`Metric`]; the unit is the price's currency.
#[derive(Clone, Debug, PartialEq)]
pub struct Cost {
    /// Electricity price.
    pub price: EnergyPrice,
    /// Facility power usage effectiveness.
    pub pue: f64,
}

impl Metric for Cost {
    fn name(&self) -> &str {
        "energy_cost"
    }
    fn unit(&self) -> &str {
        &self.price.currency
    }
    fn compute(&self, run: &Run) -> Result<f64> {
        Ok(run.cost(&self.price, self.pue)?.amount)
    }
}

#[cfg(test)]
mod tests {
    use eai_core::{Joules, Seconds};

    use super::*;
    use crate::run::EnergyDomain;

    fn run() -> Run {
        // 0.6 score, 7200 J = 2 Wh, 40 s, 1000 in / 500 out tokens, 10 requests.
        Run::builder("m", "fp16", "RTX-4090")
            .score("a", 0.5)
            .score("b", 0.7)
            .energy(EnergyDomain::Gpu(0), Joules(7200.0))
            .wall(Seconds(40.0))
            .input_tokens(1000)
            .output_tokens(500)
            .requests(10)
            .build()
            .unwrap()
    }

    #[test]
    fn hand_computed_values() {
        let r = run();
        assert!((r.eor().unwrap().0 - 0.3).abs() < 1e-12); // 0.6 / 2 Wh
        assert!((r.tweor().unwrap().0 - 0.3 / 40.0).abs() < 1e-12);
        assert_eq!(r.joules_per_token(Tokens::Output).unwrap(), JoulesPerToken(14.4));
        assert_eq!(r.joules_per_token(Tokens::Total).unwrap(), JoulesPerToken(4.8));
        assert!((r.tokens_per_joule(Tokens::Input).unwrap().0 - 1000.0 / 7200.0).abs() < 1e-15);
        assert_eq!(r.joules_per_request().unwrap(), JoulesPerRequest(720.0));
        assert_eq!(r.mean_power().unwrap(), Watts(180.0));
        assert_eq!(r.energy_delay().unwrap(), JouleSeconds(288_000.0));
        // 7200 J = 0.002 kWh; × 400 g/kWh × PUE 1.5 = 1.2 g.
        assert!((r.carbon(GramsCo2ePerKwh(400.0), 1.5).unwrap().0 - 1.2).abs() < 1e-12);
        let c = r.cost(&EnergyPrice::per_kwh(0.25, "USD"), 1.0).unwrap();
        assert!((c.amount - 0.0005).abs() < 1e-15);
        assert_eq!(c.currency, "USD");
    }

    #[test]
    fn zero_and_missing_inputs_are_typed_errors() {
        let zero_e = Run::builder("m", "s", "h")
            .score("a", 0.5)
            .energy(EnergyDomain::Gpu(0), Joules(0.0))
            .wall(Seconds(0.0))
            .output_tokens(0)
            .requests(0)
            .build()
            .unwrap();
        assert!(matches!(zero_e.eor(), Err(Error::Zero { field: "energy", .. })));
        assert!(matches!(zero_e.mean_power(), Err(Error::Zero { field: "wall", .. })));
        assert!(matches!(
            zero_e.joules_per_token(Tokens::Output),
            Err(Error::Zero { field: "output_tokens", .. })
        ));
        assert!(matches!(zero_e.joules_per_request(), Err(Error::Zero { field: "requests", .. })));
        let none = Run::builder("m", "s", "h").build().unwrap();
        let metrics: Vec<Box<dyn Metric>> = vec![
            Box::new(Eor),
            Box::new(Tweor),
            Box::new(EnergyPerToken::default()),
            Box::new(TokensPerEnergy(Tokens::Total)),
            Box::new(EnergyPerRequest),
            Box::new(MeanPower),
            Box::new(EnergyDelay),
            Box::new(Carbon { intensity: GramsCo2ePerKwh(300.0), pue: 1.0 }),
            Box::new(Cost { price: EnergyPrice::per_kwh(0.1, "EUR"), pue: 1.2 }),
        ];
        for m in &metrics {
            assert!(matches!(m.compute(&none), Err(Error::Missing { .. })), "{}", m.name());
            let v = m.compute(&run()).unwrap();
            assert!(v.is_finite() && v > 0.0, "{} {}", m.name(), m.unit());
        }
        assert!(matches!(run().carbon(GramsCo2ePerKwh(0.0), 1.0), Err(Error::Zero { .. })));
        assert!(matches!(
            run().cost(&EnergyPrice::per_kwh(0.1, "EUR"), 0.9),
            Err(Error::Invalid { field: "pue", .. })
        ));
    }
}
