//! Statistics over repeated runs: mean, standard deviation, Student-t confidence intervals,
//! Welch's test of a difference, and Fieller's interval for a ratio of means.
//!
//! Everything is written here (no statistics dependency): the Student-t distribution through the
//! regularized incomplete beta function (Lentz's continued fraction) and a Lanczos log-gamma;
//! the quantile by bisection on the CDF to machine precision. The tests check the quantiles
//! against printed tables.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A two-sided interval `[lo, hi]` at a confidence `level` (0.95 for 95 %).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    /// Lower bound.
    pub lo: f64,
    /// Upper bound.
    pub hi: f64,
    /// Confidence level in `(0, 1)`.
    pub level: f64,
}

impl Interval {
    /// `true` when `x` lies in `[lo, hi]`.
    pub fn contains(&self, x: f64) -> bool {
        self.lo <= x && x <= self.hi
    }

    /// Applies an increasing affine map `a·x + b` (`a > 0`) or a decreasing one (`a < 0`).
    pub(crate) fn affine(self, a: f64, b: f64) -> Self {
        let (x, y) = (a * self.lo + b, a * self.hi + b);
        Self { lo: x.min(y), hi: x.max(y), level: self.level }
    }
}

/// Mean, spread and 95 % interval of repeated observations of one quantity.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Number of observations.
    pub n: usize,
    /// Arithmetic mean.
    pub mean: f64,
    /// Sample standard deviation (`n − 1` denominator); `None` for one observation.
    pub sd: Option<f64>,
    /// Student-t interval of the mean at [`Summary::LEVEL`]; `None` for one observation.
    pub ci: Option<Interval>,
}

impl Summary {
    /// The confidence level of [`Summary::ci`].
    pub const LEVEL: f64 = 0.95;

    /// Summarizes `xs`.
    ///
    /// ```
    /// let s = eai_metrics::Summary::of(&[39.5, 39.8, 39.65])?;
    /// assert!((s.mean - 39.65).abs() < 1e-12);
    /// let ci = s.ci.unwrap();
    /// // t(0.975, 2) = 4.303, sd = 0.15, so the half-width is 4.303 * 0.15 / sqrt(3) = 0.3726.
    /// assert!((ci.hi - s.mean - 0.3726).abs() < 1e-3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::TooFewValues`] for an empty slice, [`Error::Invalid`] for NaN or infinity.
    pub fn of(xs: &[f64]) -> Result<Self> {
        Self::with_level(xs, Self::LEVEL)
    }

    /// Summarizes `xs` with an interval at `level`.
    ///
    /// # Errors
    /// As [`Summary::of`], and [`Error::Invalid`] for a level outside `(0, 1)`.
    pub fn with_level(xs: &[f64], level: f64) -> Result<Self> {
        check_level(level)?;
        let (n, mean, var) = moments(xs, "summary")?;
        if n < 2 {
            return Ok(Self { n, mean, sd: None, ci: None });
        }
        let sd = var.sqrt();
        let h = t_quantile(0.5 + level / 2.0, (n - 1) as f64)? * sd / (n as f64).sqrt();
        Ok(Self { n, mean, sd: Some(sd), ci: Some(Interval { lo: mean - h, hi: mean + h, level }) })
    }
}

/// Count, mean and unbiased variance (0 for n = 1), rejecting empty input and non-finite values.
fn moments(xs: &[f64], what: &'static str) -> Result<(usize, f64, f64)> {
    if xs.is_empty() {
        return Err(Error::TooFewValues { what, needed: 1, got: 0 });
    }
    if let Some(&x) = xs.iter().find(|x| !x.is_finite()) {
        return Err(Error::Invalid {
            run: what.into(),
            field: "value",
            value: x,
            reason: "observations must be finite",
        });
    }
    let n = xs.len();
    let mean = xs.iter().sum::<f64>() / n as f64;
    let var = if n > 1 {
        xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1) as f64
    } else {
        0.0
    };
    Ok((n, mean, var))
}

fn check_level(level: f64) -> Result<()> {
    if !(level > 0.0 && level < 1.0) {
        return Err(Error::Invalid {
            run: "statistics".into(),
            field: "level",
            value: level,
            reason: "a confidence level lies in (0, 1)",
        });
    }
    Ok(())
}

/// Natural log of the gamma function for `x > 0` (Lanczos, g = 7, 9 terms; ~1e-15 relative).
pub(crate) fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Γ(x)Γ(1−x) = π / sin(πx).
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = C[0];
    for (i, c) in C.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    let t = x + G + 0.5;
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// Regularized incomplete beta `I_x(a, b)` for `a, b > 0`, `x ∈ [0, 1]`.
pub(crate) fn inc_beta(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let ln_front = ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln();
    if x < (a + 1.0) / (a + b + 2.0) {
        ln_front.exp() * beta_cf(a, b, x) / a
    } else {
        1.0 - ln_front.exp() * beta_cf(b, a, 1.0 - x) / b
    }
}

/// Continued fraction for the incomplete beta (modified Lentz).
fn beta_cf(a: f64, b: f64, x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..=10_000 {
        let m = f64::from(m);
        let m2 = 2.0 * m;
        let aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 + aa * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + aa / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        h *= d * c;
        let aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 + aa * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + aa / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        let del = d * c;
        h *= del;
        if (del - 1.0).abs() < 1e-16 {
            break;
        }
    }
    h
}

/// CDF of Student's t distribution with `df > 0` (real) degrees of freedom.
///
/// # Errors
/// [`Error::Invalid`] for a non-positive or non-finite `df`, or a NaN `t`.
pub fn t_cdf(t: f64, df: f64) -> Result<f64> {
    check_df(df)?;
    if t.is_nan() {
        return Err(Error::Invalid {
            run: "t distribution".into(),
            field: "t",
            value: t,
            reason: "must not be NaN",
        });
    }
    if t.is_infinite() {
        return Ok(if t > 0.0 { 1.0 } else { 0.0 });
    }
    let tail = 0.5 * inc_beta(df / 2.0, 0.5, df / (df + t * t));
    Ok(if t >= 0.0 { 1.0 - tail } else { tail })
}

/// Quantile (inverse CDF) of Student's t distribution: the `t` with `P(T ≤ t) = p`.
///
/// ```
/// // Two-sided 95 % with 2 degrees of freedom (3 runs): 4.303.
/// assert!((eai_metrics::t_quantile(0.975, 2.0)? - 4.302_652_7).abs() < 1e-6);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// [`Error::Invalid`] for `p` outside `(0, 1)` or a non-positive `df`.
pub fn t_quantile(p: f64, df: f64) -> Result<f64> {
    check_df(df)?;
    if !(p > 0.0 && p < 1.0) {
        return Err(Error::Invalid {
            run: "t distribution".into(),
            field: "p",
            value: p,
            reason: "a probability lies in (0, 1)",
        });
    }
    if p < 0.5 {
        return Ok(-t_quantile(1.0 - p, df)?);
    }
    if p == 0.5 {
        return Ok(0.0);
    }
    let mut hi = 1.0;
    while t_cdf(hi, df)? < p {
        hi *= 2.0;
        if hi > 1e300 {
            break;
        }
    }
    let mut lo = 0.0;
    for _ in 0..2000 {
        let mid = 0.5 * (lo + hi);
        if mid <= lo || mid >= hi {
            break;
        }
        if t_cdf(mid, df)? < p {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Ok(0.5 * (lo + hi))
}

fn check_df(df: f64) -> Result<()> {
    if !(df.is_finite() && df > 0.0) {
        return Err(Error::Invalid {
            run: "t distribution".into(),
            field: "degrees_of_freedom",
            value: df,
            reason: "must be positive and finite",
        });
    }
    Ok(())
}

/// Welch's two-sample t test of `mean(a) − mean(b)` (unequal variances).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct WelchTest {
    /// `mean(a) − mean(b)`.
    pub difference: f64,
    /// Interval of the difference at `interval.level`.
    pub interval: Interval,
    /// The t statistic.
    pub t: f64,
    /// Welch–Satterthwaite degrees of freedom.
    pub df: f64,
    /// Two-sided p-value.
    pub p_value: f64,
}

impl WelchTest {
    /// `true` when the two means differ at significance `alpha` (two-sided).
    pub fn differs_at(&self, alpha: f64) -> bool {
        self.p_value < alpha
    }
}

/// Welch's t test of whether `a` and `b` have different means, with the difference's interval.
///
/// ```
/// // Energies (Wh) of three baseline and three INT8 runs.
/// let base = [39.5, 39.8, 39.65];
/// let int8 = [29.6, 29.9, 29.72];
/// let w = eai_metrics::welch(&base, &int8, 0.95)?;
/// assert!(w.differs_at(0.01));
/// assert!(w.interval.contains(9.91));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// [`Error::TooFewValues`] when either group has fewer than 2 values; [`Error::NoVariance`]
/// when both groups are constant; [`Error::Invalid`] for non-finite values or a bad level.
pub fn welch(a: &[f64], b: &[f64], level: f64) -> Result<WelchTest> {
    check_level(level)?;
    let (na, ma, va) = moments(a, "Welch test")?;
    let (nb, mb, vb) = moments(b, "Welch test")?;
    let n = na.min(nb);
    if n < 2 {
        return Err(Error::TooFewValues { what: "Welch test", needed: 2, got: n });
    }
    let (sa, sb) = (va / na as f64, vb / nb as f64);
    let se2 = sa + sb;
    if se2 <= 0.0 {
        return Err(Error::NoVariance { what: "Welch test" });
    }
    let df = se2 * se2 / (sa * sa / (na - 1) as f64 + sb * sb / (nb - 1) as f64);
    let d = ma - mb;
    let t = d / se2.sqrt();
    let p = 2.0 * t_cdf(-t.abs(), df)?;
    let h = t_quantile(0.5 + level / 2.0, df)? * se2.sqrt();
    Ok(WelchTest {
        difference: d,
        interval: Interval { lo: d - h, hi: d + h, level },
        t,
        df,
        p_value: p.min(1.0),
    })
}

/// A ratio of two independent means with Fieller's interval.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ratio {
    /// `mean(numerator) / mean(denominator)`.
    pub value: f64,
    /// Fieller's interval; `None` when both groups have a single observation.
    pub interval: Option<Interval>,
    /// Degrees of freedom used for the t quantile (Satterthwaite); `None` without interval.
    pub df: Option<f64>,
}

/// `mean(num) / mean(den)` with Fieller's confidence interval, for independent samples.
///
/// Fieller's theorem inverts the t test of `mean(num) − ρ·mean(den) = 0`: the interval is the
/// set of ρ not rejected, `{ρ : (x̄ − ρȳ)² ≤ t² (v_x + ρ² v_y)}` with `v = s²/n`. Unlike the delta
/// method it is exact for normal data and asymmetric, as a ratio's interval should be. The t
/// quantile uses the Welch–Satterthwaite degrees of freedom of `x̄ − ρ̂ȳ`. With one observation
/// per group only the point ratio is returned. When one group has one observation and the other
/// several, the lone observation is treated as exact (zero variance).
///
/// # Errors
/// [`Error::Zero`] when `mean(den)` is zero; [`Error::UnboundedRatio`] when the denominator's
/// mean is not significantly different from zero (Fieller's set is then not an interval).
/// Two constant groups are not an error: they give a zero-width interval.
pub fn ratio_of_means(num: &[f64], den: &[f64], level: f64, what: &'static str) -> Result<Ratio> {
    check_level(level)?;
    let (nx, mx, vx) = moments(num, what)?;
    let (ny, my, vy) = moments(den, what)?;
    if my == 0.0 {
        return Err(Error::Zero { run: what.into(), field: "mean of denominator" });
    }
    let r = mx / my;
    if nx < 2 && ny < 2 {
        return Ok(Ratio { value: r, interval: None, df: None });
    }
    let (sx, sy) = (vx / nx as f64, vy / ny as f64);
    let denom_df = |v: f64, n: usize| if n > 1 { v * v / (n - 1) as f64 } else { 0.0 };
    let total = sx + r * r * sy;
    if total == 0.0 {
        return Ok(Ratio { value: r, interval: Some(Interval { lo: r, hi: r, level }), df: None });
    }
    let df = total * total / (denom_df(sx, nx) + denom_df(r * r * sy, ny));
    let t = t_quantile(0.5 + level / 2.0, df)?;
    let t2 = t * t;
    // (ȳ² − t² v_y) ρ² − 2 x̄ȳ ρ + (x̄² − t² v_x) ≤ 0
    let a = my * my - t2 * sy;
    if a <= 0.0 {
        return Err(Error::UnboundedRatio { what });
    }
    let b = mx * my;
    let c = mx * mx - t2 * sx;
    let disc = b * b - a * c;
    if disc < 0.0 {
        return Err(Error::UnboundedRatio { what });
    }
    let root = disc.sqrt();
    let (lo, hi) = ((b - root) / a, (b + root) / a);
    Ok(Ratio { value: r, interval: Some(Interval { lo, hi, level }), df: Some(df) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t_quantiles_match_printed_tables() {
        // Two-sided 95 % critical values (e.g. NIST/SEMATECH e-Handbook, Table 1.3.6.7.2).
        let table = [
            (1.0, 12.706),
            (2.0, 4.303),
            (3.0, 3.182),
            (4.0, 2.776),
            (5.0, 2.571),
            (10.0, 2.228),
            (30.0, 2.042),
            (100.0, 1.984),
        ];
        for (df, want) in table {
            let got = t_quantile(0.975, df).unwrap();
            assert!((got - want).abs() < 5e-4, "df {df}: {got} vs {want}");
        }
        // One-sided 99 %, df 2: 6.965; 90 %, df 5: 1.476.
        assert!((t_quantile(0.99, 2.0).unwrap() - 6.965).abs() < 5e-4);
        assert!((t_quantile(0.90, 5.0).unwrap() - 1.476).abs() < 5e-4);
        // Large df tends to the normal 1.95996.
        assert!((t_quantile(0.975, 1e7).unwrap() - 1.959_964).abs() < 1e-5);
        // Cauchy (df = 1) has a closed form: tan(π(p − ½)).
        let p: f64 = 0.8;
        let exact = (std::f64::consts::PI * (p - 0.5)).tan();
        assert!((t_quantile(p, 1.0).unwrap() - exact).abs() < 1e-10);
        assert!((t_quantile(0.025, 2.0).unwrap() + 4.302_652_7).abs() < 1e-6);
        assert!(t_quantile(1.0, 2.0).is_err() && t_quantile(0.5, 0.0).is_err());
    }

    #[test]
    fn ln_gamma_known_values() {
        assert!((ln_gamma(1.0)).abs() < 1e-13);
        assert!((ln_gamma(5.0) - 24f64.ln()).abs() < 1e-12);
        assert!((ln_gamma(0.5) - std::f64::consts::PI.sqrt().ln()).abs() < 1e-12);
    }

    #[test]
    fn summary_hand_computed() {
        let s = Summary::of(&[2.0, 4.0, 6.0]).unwrap();
        assert_eq!(s.mean, 4.0);
        assert_eq!(s.sd, Some(2.0));
        let ci = s.ci.unwrap();
        let h = 4.302_652_7 * 2.0 / 3f64.sqrt();
        assert!((ci.lo - (4.0 - h)).abs() < 1e-6 && (ci.hi - (4.0 + h)).abs() < 1e-6);
        let one = Summary::of(&[3.0]).unwrap();
        assert_eq!((one.sd, one.ci), (None, None));
        assert!(matches!(Summary::of(&[]), Err(Error::TooFewValues { .. })));
        assert!(matches!(Summary::of(&[1.0, f64::NAN]), Err(Error::Invalid { .. })));
    }

    #[test]
    fn welch_matches_hand_computation() {
        // a: mean 2, var 1; b: mean 5, var 4; n = 3 each.
        // se² = 1/3 + 4/3 = 5/3; t = −3/√(5/3) = −2.3238; df = (5/3)² / ((1/9)/2 + (16/9)/2) = 2.9412.
        let w = welch(&[1.0, 2.0, 3.0], &[3.0, 5.0, 7.0], 0.95).unwrap();
        assert!((w.difference + 3.0).abs() < 1e-12);
        assert!((w.t + 2.323_790).abs() < 1e-5);
        assert!((w.df - 2.941_176).abs() < 1e-5);
        // p = 2·P(T > 2.32379) at that df = 0.10448 (checked by direct numerical integration of the t density).
        assert!((w.p_value - 0.1045).abs() < 5e-4, "{}", w.p_value);
        assert!(!w.differs_at(0.05));
        assert!(matches!(welch(&[1.0, 1.0], &[2.0, 2.0], 0.95), Err(Error::NoVariance { .. })));
        assert!(matches!(welch(&[1.0], &[2.0, 3.0], 0.95), Err(Error::TooFewValues { .. })));
    }

    #[test]
    fn fieller_hand_computed() {
        // Constant numerator 10, denominator {3.9, 4, 4.1}: ratio 2.5.
        // v_y = 0.01/3; df = 2 (only the denominator varies); t = 4.3027.
        let r = ratio_of_means(&[10.0, 10.0, 10.0], &[3.9, 4.0, 4.1], 0.95, "test").unwrap();
        assert!((r.value - 2.5).abs() < 1e-12);
        assert!((r.df.unwrap() - 2.0).abs() < 1e-9);
        let ci = r.interval.unwrap();
        // Bounds solve (10 − 4ρ)² = t² ρ² 0.01/3, i.e. ρ = 10 / (4 ± t·√(0.01/3)).
        let k = 4.302_652_7 * (0.01f64 / 3.0).sqrt();
        assert!((ci.lo - 10.0 / (4.0 + k)).abs() < 1e-6);
        assert!((ci.hi - 10.0 / (4.0 - k)).abs() < 1e-6);
        // Asymmetric, wider above, as for a ratio.
        assert!(ci.hi - 2.5 > 2.5 - ci.lo);
        assert!(matches!(
            ratio_of_means(&[1.0, 2.0], &[-1.0, 1.0, 0.5], 0.95, "x"),
            Err(Error::UnboundedRatio { .. })
        ));
        assert!(matches!(ratio_of_means(&[1.0], &[0.0], 0.95, "x"), Err(Error::Zero { .. })));
        let point = ratio_of_means(&[3.0], &[4.0], 0.95, "x").unwrap();
        assert_eq!((point.value, point.interval), (0.75, None));
    }
}
