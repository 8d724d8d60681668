//! The paper's published numbers (reference/001 and its slides reference/000) as data, the
//! consistency check of its Table 2, and its three deployment scenarios as constraints.
//!
//! These are *claims to test*, kept here so that the recommender and the report can be run on
//! them and compared with measured runs; see `docs/metrics.md` for what the checks found.

use eai_core::Watts;
use serde::{Deserialize, Serialize};

use crate::compare::implied_eor_improvement;
use crate::error::Result;
use crate::quantity::EnergyPrice;
use crate::quantity::Percent;
use crate::recommend::{
    Candidate, Constraints, CostModel, Evidence, Priority, Strategy, Variability,
};

/// DeepSeek-R1-Distill-Qwen-7B baseline energy, Wh (paper §4.1).
pub const DEEPSEEK_BASELINE_WH: f64 = 39.65;
/// DeepSeek-R1-Distill-Qwen-7B INT8 energy, Wh (paper §4.1).
pub const DEEPSEEK_INT8_WH: f64 = 29.74;
/// Parameter count of DeepSeek-R1-Distill-Qwen-7B (a Qwen2.5-7B derivative: 7.6 B).
pub const DEEPSEEK_PARAMS: f64 = 7.6e9;

/// How the paper states an accuracy loss.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LossStatement {
    /// An exact figure (`0.2%`).
    Exact,
    /// An upper bound (`<1.0%`).
    Below,
}

/// One row of the paper's Table 2, with the slides' accuracy-loss range for the same strategy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PublishedRow {
    /// Strategy.
    pub strategy: String,
    /// Energy reduction, percent.
    pub energy_reduction: f64,
    /// Accuracy loss as printed (the paper writes `%`; the text says "percentage point").
    pub accuracy_loss: f64,
    /// Whether the loss is exact or an upper bound.
    pub loss_statement: LossStatement,
    /// EOR improvement, percent.
    pub eor_improvement: f64,
    /// Accuracy-loss range on the slides' comparison table (percentage points).
    pub slides_accuracy_loss: (f64, f64),
    /// Energy reduction on the slides, percent.
    pub slides_energy_reduction: f64,
}

/// Table 2 of the paper, row by row.
pub fn table2() -> Vec<PublishedRow> {
    let row = |s: &str, er, al, ls, eor, sl, se| PublishedRow {
        strategy: s.into(),
        energy_reduction: er,
        accuracy_loss: al,
        loss_statement: ls,
        eor_improvement: eor,
        slides_accuracy_loss: sl,
        slides_energy_reduction: se,
    };
    vec![
        row("INT8", 25.0, 1.0, LossStatement::Below, 32.1, (0.7, 0.9), 25.0),
        row("FP16", 16.3, 0.2, LossStatement::Exact, 19.4, (0.3, 0.5), 16.0),
        row("Dynamic", 10.5, 1.5, LossStatement::Exact, 11.7, (0.4, 0.6), 10.0),
    ]
}

/// Whether a row's EOR improvement follows from its energy reduction and accuracy loss.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Consistency {
    /// The published value lies within what the stated figures imply.
    Consistent,
    /// Only when every printed figure is pushed to the edge of its rounding.
    OnlyAtRoundingLimits,
    /// No reading of the stated figures gives the published value.
    Inconsistent,
}

/// The check of one row against `EOR_c/EOR_b = retention / (1 − reduction)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RowCheck {
    /// The row checked.
    pub row: PublishedRow,
    /// EOR improvement with no accuracy loss at the stated reduction.
    pub zero_loss: Percent,
    /// Range implied at the stated figures when the loss is relative (`retention = 1 − loss/100`;
    /// a loss in percentage points of a baseline below 100 % is a *larger* relative loss, so
    /// this range's upper end bounds both readings).
    pub at_stated: (Percent, Percent),
    /// Largest value reachable with every figure at the edge of its printed rounding (±0.05).
    pub max_with_rounding: Percent,
    /// The verdict.
    pub verdict: Consistency,
}

/// Checks one published row. See [`RowCheck`].
///
/// # Errors
/// Only for absurd rows (a reduction of 100 % or more).
pub fn check_row(row: &PublishedRow) -> Result<RowCheck> {
    const HALF: f64 = 0.05;
    let r = row.energy_reduction;
    let l = row.accuracy_loss;
    let (l_lo, l_hi) = match row.loss_statement {
        LossStatement::Exact => (l, l),
        LossStatement::Below => (0.0, l),
    };
    let imp = |red: f64, loss: f64| implied_eor_improvement(Percent(red), 1.0 - loss / 100.0);
    let zero_loss = imp(r, 0.0)?;
    let at_stated = (imp(r, l_hi)?, imp(r, l_lo)?);
    let min_loss = match row.loss_statement {
        LossStatement::Exact => (l - HALF).max(0.0),
        LossStatement::Below => 0.0,
    };
    let max_with_rounding = imp(r + HALF, min_loss)?;
    let p = row.eor_improvement;
    let verdict = if p + HALF >= at_stated.0.0 && p - HALF <= at_stated.1.0 {
        Consistency::Consistent
    } else if p - HALF <= max_with_rounding.0 {
        Consistency::OnlyAtRoundingLimits
    } else {
        Consistency::Inconsistent
    };
    Ok(RowCheck { row: row.clone(), zero_loss, at_stated, max_with_rounding, verdict })
}

/// Where the scenario figures come from.
pub const SCENARIO_CITATION: &str =
    "paper §5 (Deployment Guidelines) and slides (Scenario-Specific Recommendations)";

/// The three published hardware × strategy combinations with their "baseline performance" and
/// "efficiency gain" (read as retained accuracy and EOR improvement).
pub fn scenario_candidates() -> Vec<Candidate> {
    let c = |hw: &str, s: Strategy, retained, gain| Candidate {
        hardware: hw.into(),
        strategy: s,
        retained_accuracy: retained,
        efficiency_gain: Percent(gain),
        energy_per_request: None,
        latency: None,
        evidence: Evidence::Published { citation: SCENARIO_CITATION.into() },
    };
    vec![
        c("A100-PCIe-40GB", Strategy::int8(), 0.98, 40.0),
        c("RTX-4090", Strategy::fp16_mixed(), 0.99, 35.0),
        c("RTX-4060-Ti-16GB", Strategy::dynamic_int8(), 0.95, 25.0),
    ]
}

/// The paper's six platforms.
pub fn paper_platforms() -> Vec<String> {
    ["A100-PCIe-40GB", "RTX-4090", "RTX-3090-Ti", "RTX-4060-Ti-16GB", "V100-SXM2-32GB", "L40S"]
        .into_iter()
        .map(String::from)
        .collect()
}

/// "Data Center Production … optimal for accuracy-critical production deployments": energy
/// priority at scale, at least 98 % of baseline accuracy, any of the paper's platforms.
pub fn data_centre() -> Constraints {
    Constraints {
        available: Some(paper_platforms()),
        model_params: Some(DEEPSEEK_PARAMS),
        min_retained_accuracy: Some(0.98),
        variability: Variability::Low,
        priority: Priority::Energy,
        ..Default::default()
    }
}

/// Scenario assumption for the enterprise case: a per-GPU hardware budget of 2,000 (USD) and
/// street prices (A100 PCIe 40GB ≈ 10,000; RTX 4090 launch price 1,599; RTX 4060 Ti 16GB launch
/// price 499). The paper gives no prices; these only encode its "lower hardware costs".
pub fn enterprise_prices() -> CostModel {
    CostModel {
        energy_price: EnergyPrice::per_kwh(0.15, "USD"),
        pue: 1.0,
        requests_per_day: 10_000.0,
        years: 3.0,
        hardware_price: [
            ("A100-PCIe-40GB", 10_000.0),
            ("RTX-4090", 1_599.0),
            ("RTX-4060-Ti-16GB", 499.0),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect(),
        budget_per_gpu: Some(2_000.0),
    }
}

/// "Enterprise Applications … lower hardware costs … maintaining 99% baseline performance":
/// accuracy priority, at least 99 % retained, a per-GPU budget ([`enterprise_prices`]).
pub fn enterprise() -> Constraints {
    Constraints {
        available: Some(paper_platforms()),
        model_params: Some(DEEPSEEK_PARAMS),
        min_retained_accuracy: Some(0.99),
        variability: Variability::Low,
        priority: Priority::Accuracy,
        cost: Some(enterprise_prices()),
        ..Default::default()
    }
}

/// "Edge Computing … resource-constrained environments … 95% baseline performance", with the
/// slides' "Dynamic … Varying Input": a 200 W board-power envelope, at least 95 % retained,
/// high input variability, flexibility priority.
pub fn edge() -> Constraints {
    Constraints {
        available: Some(paper_platforms()),
        model_params: Some(DEEPSEEK_PARAMS),
        max_board_power: Some(Watts(200.0)),
        min_retained_accuracy: Some(0.95),
        variability: Variability::High,
        priority: Priority::Flexibility,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table2_verdicts() {
        let v: Vec<Consistency> = table2().iter().map(|r| check_row(r).unwrap().verdict).collect();
        assert_eq!(
            v,
            [Consistency::Consistent, Consistency::OnlyAtRoundingLimits, Consistency::Inconsistent]
        );
        let dynamic = check_row(&table2()[2]).unwrap();
        // The published 11.7 % is the zero-loss value of a 10.5 % reduction.
        assert!((dynamic.zero_loss.0 - 11.7).abs() < 0.05);
    }
}
