//! Value types for the metrics, so that no number leaves this crate without its unit.

use serde::{Deserialize, Serialize};

macro_rules! quantity {
    ($(#[$meta:meta])* $name:ident, $sym:literal) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, PartialOrd, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub f64);

        impl $name {
            /// The unit, as printed.
            pub const UNIT: &'static str = $sym;

            /// The raw value in this unit.
            pub const fn value(self) -> f64 {
                self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                match f.precision() {
                    Some(p) => write!(f, "{:.*} {}", p, self.0, $sym),
                    None => write!(f, "{} {}", self.0, $sym),
                }
            }
        }
    };
}

quantity!(
    /// Energy Output Ratio: task score (fraction in `[0, 1]`) per watt-hour.
    ScorePerWattHour,
    "score/Wh"
);
quantity!(
    /// Time-Weighted Energy Output Ratio: task score per (watt-hour × second).
    ScorePerWattHourSecond,
    "score/(Wh·s)"
);
quantity!(
    /// Energy per token.
    JoulesPerToken,
    "J/token"
);
quantity!(
    /// Tokens per joule.
    TokensPerJoule,
    "token/J"
);
quantity!(
    /// Energy per request.
    JoulesPerRequest,
    "J/request"
);
quantity!(
    /// Energy-delay product.
    JouleSeconds,
    "J·s"
);
quantity!(
    /// Mass of CO2-equivalent emissions.
    GramsCo2e,
    "gCO2e"
);
quantity!(
    /// Grid carbon intensity: grams of CO2-equivalent per kilowatt-hour drawn.
    GramsCo2ePerKwh,
    "gCO2e/kWh"
);
quantity!(
    /// A relative change in percent (e.g. an energy reduction of 25.0 %).
    Percent,
    "%"
);
quantity!(
    /// A difference of two scores in percentage points (`100 ×` the difference of fractions).
    PercentagePoints,
    "pp"
);

/// An amount of money in a currency the user names (this crate converts nothing).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Money {
    /// The amount.
    pub amount: f64,
    /// ISO 4217 code or any label (`USD`, `EUR`).
    pub currency: String,
}

impl std::fmt::Display for Money {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match f.precision() {
            Some(p) => write!(f, "{:.*} {}", p, self.amount, self.currency),
            None => write!(f, "{} {}", self.amount, self.currency),
        }
    }
}

/// A price of electricity per kilowatt-hour.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EnergyPrice {
    /// Price of one kWh.
    pub per_kwh: f64,
    /// Currency label.
    pub currency: String,
}

impl EnergyPrice {
    /// A price per kWh in `currency`.
    pub fn per_kwh(per_kwh: f64, currency: impl Into<String>) -> Self {
        Self { per_kwh, currency: currency.into() }
    }
}

/// Joules per kilowatt-hour.
pub const JOULES_PER_KWH: f64 = 3.6e6;
