//! Report tables as data (serde JSON, CSV) and as Markdown: the paper's Table 2 layout
//! (strategy, energy reduction, accuracy loss, EOR improvement) with confidence intervals, and a
//! per-configuration summary of repeated runs.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::compare::{Comparison, Estimate};
use crate::error::{Error, Result};
use crate::metric::Tokens;
use crate::run::{Config, Run};
use crate::stats::Summary;

/// One strategy's row of a Table-2-style report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Table2Row {
    /// Strategy label.
    pub strategy: String,
    /// Baseline runs.
    pub n_baseline: usize,
    /// Strategy runs.
    pub n_candidate: usize,
    /// Energy reduction, percent.
    pub energy_reduction: Estimate,
    /// Accuracy loss, percentage points.
    pub accuracy_loss: Estimate,
    /// EOR improvement, percent.
    pub eor_improvement: Estimate,
    /// TWEOR improvement, percent (when wall times were recorded).
    pub tweor_improvement: Option<Estimate>,
}

/// The paper's Table 2 ("Quantization Strategy Performance Analysis") filled from measured
/// comparisons, with 95 % intervals.
///
/// ```
/// use eai_core::Joules;
/// use eai_metrics::{EnergyDomain, Run, Table2, compare};
/// let run = |s: &str, r, wh: f64, acc| Run::builder("m", s, "RTX-4090").repetition(r).score("mmlu", acc)
///     .energy(EnergyDomain::Gpu(0), Joules::from_watt_hours(wh)).build();
/// let base = [run("fp32", 1, 40.0, 0.60)?, run("fp32", 2, 40.4, 0.61)?, run("fp32", 3, 39.8, 0.60)?];
/// let int8 = [run("int8", 1, 30.1, 0.60)?, run("int8", 2, 29.8, 0.59)?, run("int8", 3, 30.0, 0.60)?];
/// let mut t = Table2::new("FP32");
/// t.push("INT8", &compare(&base, &int8)?);
/// let md = t.to_markdown();
/// // Checked against an independent Fieller computation: 25.21 % [24.03, 26.36].
/// assert!(md.contains("| INT8 | 3 / 3 | 25.2 % [24.0, 26.4]"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Table2 {
    /// The baseline every row is compared with.
    pub baseline: String,
    /// One row per strategy.
    pub rows: Vec<Table2Row>,
}

fn fmt_est(e: &Estimate, unit: &str, digits: usize) -> String {
    let v = fixed(e.value, digits);
    match e.ci {
        Some(ci) => format!("{v} {unit} [{}, {}]", fixed(ci.lo, digits), fixed(ci.hi, digits)),
        None => format!("{v} {unit}"),
    }
}

/// `x` with `digits` decimals, without the sign of a value that rounds to zero ("-0.00" → "0.00").
fn fixed(x: f64, digits: usize) -> String {
    let s = format!("{x:.digits$}");
    match s.strip_prefix('-') {
        Some(rest) if rest.bytes().all(|b| b == b'0' || b == b'.') => rest.to_owned(),
        _ => s,
    }
}

/// The flat CSV record of a [`Table2Row`].
#[derive(Serialize)]
struct Table2Csv<'a> {
    strategy: &'a str,
    n_baseline: usize,
    n_candidate: usize,
    energy_reduction_pct: f64,
    energy_reduction_lo: Option<f64>,
    energy_reduction_hi: Option<f64>,
    accuracy_loss_pp: f64,
    accuracy_loss_lo: Option<f64>,
    accuracy_loss_hi: Option<f64>,
    eor_improvement_pct: f64,
    eor_improvement_lo: Option<f64>,
    eor_improvement_hi: Option<f64>,
    tweor_improvement_pct: Option<f64>,
    tweor_improvement_lo: Option<f64>,
    tweor_improvement_hi: Option<f64>,
}

impl Table2 {
    /// An empty table against `baseline`.
    pub fn new(baseline: impl Into<String>) -> Self {
        Self { baseline: baseline.into(), rows: Vec::new() }
    }

    /// Adds a strategy's comparison with the baseline.
    pub fn push(&mut self, strategy: impl Into<String>, c: &Comparison) {
        self.rows.push(Table2Row {
            strategy: strategy.into(),
            n_baseline: c.n_baseline,
            n_candidate: c.n_candidate,
            energy_reduction: c.energy_reduction,
            accuracy_loss: c.accuracy_loss,
            eor_improvement: c.eor_improvement,
            tweor_improvement: c.tweor_improvement,
        });
    }

    /// Markdown in the paper's layout, plus a runs column and (when present) TWEOR.
    pub fn to_markdown(&self) -> String {
        let tweor = self.rows.iter().any(|r| r.tweor_improvement.is_some());
        let mut s =
            format!("Against {}; 95 % confidence intervals in brackets.\n\n", self.baseline);
        s.push_str("| Strategy | Runs (base / strategy) | Energy Red. | Acc. Loss | EOR Imp. |");
        s.push_str(if tweor { " TWEOR Imp. |\n" } else { "\n" });
        s.push_str("|---|---:|---:|---:|---:|");
        s.push_str(if tweor { "---:|\n" } else { "\n" });
        for r in &self.rows {
            let _ = write!(
                s,
                "| {} | {} / {} | {} | {} | {} |",
                r.strategy,
                r.n_baseline,
                r.n_candidate,
                fmt_est(&r.energy_reduction, "%", 1),
                fmt_est(&r.accuracy_loss, "pp", 2),
                fmt_est(&r.eor_improvement, "%", 1)
            );
            if tweor {
                let t = r
                    .tweor_improvement
                    .as_ref()
                    .map_or_else(|| "–".to_owned(), |e| fmt_est(e, "%", 1));
                let _ = write!(s, " {t} |");
            }
            s.push('\n');
        }
        s
    }

    /// Writes the table as CSV (one row per strategy, interval bounds in their own columns).
    ///
    /// # Errors
    /// [`Error::Format`] when writing fails.
    pub fn write_csv<W: std::io::Write>(&self, w: W) -> Result<()> {
        let mut wr = csv::Writer::from_writer(w);
        for r in &self.rows {
            let lo = |e: &Estimate| e.ci.map(|c| c.lo);
            let hi = |e: &Estimate| e.ci.map(|c| c.hi);
            let t = r.tweor_improvement.as_ref();
            wr.serialize(Table2Csv {
                strategy: &r.strategy,
                n_baseline: r.n_baseline,
                n_candidate: r.n_candidate,
                energy_reduction_pct: r.energy_reduction.value,
                energy_reduction_lo: lo(&r.energy_reduction),
                energy_reduction_hi: hi(&r.energy_reduction),
                accuracy_loss_pp: r.accuracy_loss.value,
                accuracy_loss_lo: lo(&r.accuracy_loss),
                accuracy_loss_hi: hi(&r.accuracy_loss),
                eor_improvement_pct: r.eor_improvement.value,
                eor_improvement_lo: lo(&r.eor_improvement),
                eor_improvement_hi: hi(&r.eor_improvement),
                tweor_improvement_pct: t.map(|e| e.value),
                tweor_improvement_lo: t.and_then(lo),
                tweor_improvement_hi: t.and_then(hi),
            })
            .map_err(|e| Error::format("writing Table 2 as CSV", e))?;
        }
        wr.flush().map_err(|e| Error::format("writing Table 2 as CSV", e))
    }

    /// The table as pretty JSON.
    ///
    /// # Errors
    /// [`Error::Format`] (not expected for finite values).
    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string_pretty(self).map_err(|e| Error::format("writing Table 2 as JSON", e))
    }

    /// Reads a table written by [`Table2::to_json`].
    ///
    /// # Errors
    /// [`Error::Format`] for malformed JSON.
    pub fn from_json(s: &str) -> Result<Self> {
        serde_json::from_str(s).map_err(|e| Error::format("reading Table 2 from JSON", e))
    }
}

/// Mean and interval of every per-run metric of one configuration's repeated runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConfigSummary {
    /// The configuration.
    pub config: Config,
    /// Aggregate score (fraction).
    pub score: Summary,
    /// Energy in watt-hours (the paper's unit).
    pub energy_wh: Summary,
    /// Wall time in seconds, when every run has one.
    pub wall_s: Option<Summary>,
    /// EOR (score/Wh).
    pub eor: Summary,
    /// TWEOR (score/(Wh·s)), when every run has a wall time.
    pub tweor: Option<Summary>,
    /// Joules per output token, when every run counted output tokens.
    pub j_per_output_token: Option<Summary>,
    /// Mean power (W), when every run has a wall time.
    pub mean_power_w: Option<Summary>,
}

fn all<F: Fn(&Run) -> Result<f64>>(runs: &[Run], f: F) -> Option<Summary> {
    let v: Option<Vec<f64>> = runs.iter().map(|r| f(r).ok()).collect();
    v.and_then(|v| Summary::of(&v).ok())
}

impl ConfigSummary {
    /// Summarizes the runs of one configuration.
    ///
    /// # Errors
    /// An empty group, mixed configurations, a run without score or energy, zero energy.
    pub fn from_runs(runs: &[Run]) -> Result<Self> {
        let first = runs.first().ok_or(Error::TooFewValues {
            what: "configuration summary",
            needed: 1,
            got: 0,
        })?;
        if let Some(r) = runs.iter().find(|r| r.config() != first.config()) {
            return Err(Error::Incomparable {
                what: format!("summary mixes `{}` and `{}`", first.config(), r.config()),
            });
        }
        let req = |f: &dyn Fn(&Run) -> Result<f64>| -> Result<Summary> {
            let v: Vec<f64> = runs.iter().map(f).collect::<Result<_>>()?;
            Summary::of(&v)
        };
        Ok(Self {
            config: first.config().clone(),
            score: req(&|r| r.score())?,
            energy_wh: req(&|r| Ok(r.energy()?.to_watt_hours()))?,
            eor: req(&|r| Ok(r.eor()?.0))?,
            wall_s: all(runs, |r| Ok(r.wall()?.0)),
            tweor: all(runs, |r| Ok(r.tweor()?.0)),
            j_per_output_token: all(runs, |r| Ok(r.joules_per_token(Tokens::Output)?.0)),
            mean_power_w: all(runs, |r| Ok(r.mean_power()?.0)),
        })
    }
}

fn fmt_sum(s: Option<&Summary>, digits: usize) -> String {
    match s {
        None => "–".into(),
        Some(s) => match s.ci {
            Some(ci) => {
                format!(
                    "{} [{}, {}]",
                    fixed(s.mean, digits),
                    fixed(ci.lo, digits),
                    fixed(ci.hi, digits)
                )
            }
            None => fixed(s.mean, digits),
        },
    }
}

/// Markdown table of configuration summaries (mean [95 % CI]).
pub fn summaries_to_markdown(rows: &[ConfigSummary]) -> String {
    let mut s = String::from(
        "| Model | Scheme | Hardware | Runs | Score | Energy (Wh) | Time (s) | EOR (score/Wh) | TWEOR (score/(Wh·s)) | J/token | Power (W) |\n|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in rows {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.config.model,
            r.config.scheme,
            r.config.hardware,
            r.score.n,
            fmt_sum(Some(&r.score), 4),
            fmt_sum(Some(&r.energy_wh), 3),
            fmt_sum(r.wall_s.as_ref(), 2),
            fmt_sum(Some(&r.eor), 5),
            fmt_sum(r.tweor.as_ref(), 7),
            fmt_sum(r.j_per_output_token.as_ref(), 3),
            fmt_sum(r.mean_power_w.as_ref(), 1),
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use eai_core::{Joules, Seconds};

    use super::*;
    use crate::compare::compare;
    use crate::run::EnergyDomain;

    fn run(s: &str, rep: u32, wh: f64, acc: f64) -> Run {
        Run::builder("m", s, "RTX-4090")
            .repetition(rep)
            .score("mmlu", acc)
            .energy(EnergyDomain::Gpu(0), Joules::from_watt_hours(wh))
            .wall(Seconds(100.0 + f64::from(rep)))
            .output_tokens(1000)
            .build()
            .unwrap()
    }

    #[test]
    fn values_that_round_to_zero_print_without_a_sign() {
        assert_eq!(fixed(-0.001, 2), "0.00");
        assert_eq!(fixed(-0.0, 1), "0.0");
        assert_eq!(fixed(-0.006, 2), "-0.01");
        assert_eq!(fixed(-12.345, 1), "-12.3");
        assert_eq!(fixed(0.004, 2), "0.00");
        let e = Estimate { value: -0.0004, ci: None };
        assert_eq!(fmt_est(&e, "pp", 2), "0.00 pp");
    }

    #[test]
    fn table2_markdown_csv_json() {
        let b =
            [run("fp32", 1, 40.0, 0.60), run("fp32", 2, 40.4, 0.61), run("fp32", 3, 39.8, 0.60)];
        let c =
            [run("int8", 1, 30.1, 0.60), run("int8", 2, 29.8, 0.59), run("int8", 3, 30.0, 0.60)];
        let single = compare(&b[..1], &c[..1]).unwrap();
        let mut t = Table2::new("FP32 (3 runs)");
        t.push("INT8", &compare(&b, &c).unwrap());
        t.push("INT8 (1 run)", &single);
        let md = t.to_markdown();
        assert!(md.contains("| Strategy | Runs (base / strategy) | Energy Red. | Acc. Loss | EOR Imp. | TWEOR Imp. |"), "{md}");
        assert!(md.contains("| INT8 (1 run) | 1 / 1 | 24.8 % | 0.00 pp | 32.9 % |"), "{md}");
        let mut csv = Vec::new();
        t.write_csv(&mut csv).unwrap();
        let csv = String::from_utf8(csv).unwrap();
        let mut lines = csv.lines();
        assert!(lines.next().unwrap().starts_with(
            "strategy,n_baseline,n_candidate,energy_reduction_pct,energy_reduction_lo"
        ));
        assert!(lines.next().unwrap().starts_with("INT8,3,3,25.20798668885"));
        assert!(lines.next().unwrap().starts_with("INT8 (1 run),1,1,24.75"), "{csv}");
        let back = Table2::from_json(&t.to_json().unwrap()).unwrap();
        assert_eq!(back, t);
        assert!(Table2::from_json("[").is_err());
    }

    #[test]
    fn config_summaries() {
        let runs =
            [run("fp32", 1, 40.0, 0.60), run("fp32", 2, 40.4, 0.61), run("fp32", 3, 39.8, 0.60)];
        let s = ConfigSummary::from_runs(&runs).unwrap();
        assert!((s.energy_wh.mean - 40.066_666).abs() < 1e-5);
        assert!((s.j_per_output_token.unwrap().mean - 40.066_666 * 3.6).abs() < 1e-4);
        let md = summaries_to_markdown(&[s]);
        assert!(md.contains("| m | fp32 | RTX-4090 | 3 | 0.6033 ["), "{md}");
        assert!(ConfigSummary::from_runs(&[runs[0].clone(), run("int8", 1, 1.0, 0.5)]).is_err());
    }
}
