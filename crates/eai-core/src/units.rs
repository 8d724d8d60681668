//! Unit newtypes. Arithmetic is defined only where the units make sense.

use std::ops::{Add, AddAssign, Div, Mul, Sub};
use std::time::Duration;

macro_rules! unit {
    ($(#[$meta:meta])* $name:ident, $sym:literal) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, PartialOrd)]
        #[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
        #[cfg_attr(feature = "serde", serde(transparent))]
        pub struct $name(pub f64);

        impl $name {
            /// The zero quantity.
            pub const ZERO: Self = Self(0.0);

            /// The raw value in this unit.
            pub const fn value(self) -> f64 {
                self.0
            }

            /// `true` when the value is finite (neither NaN nor infinite).
            pub fn is_finite(self) -> bool {
                self.0.is_finite()
            }
        }

        impl Add for $name {
            type Output = Self;
            fn add(self, rhs: Self) -> Self {
                Self(self.0 + rhs.0)
            }
        }

        impl AddAssign for $name {
            fn add_assign(&mut self, rhs: Self) {
                self.0 += rhs.0;
            }
        }

        impl Sub for $name {
            type Output = Self;
            fn sub(self, rhs: Self) -> Self {
                Self(self.0 - rhs.0)
            }
        }

        impl Mul<f64> for $name {
            type Output = Self;
            fn mul(self, rhs: f64) -> Self {
                Self(self.0 * rhs)
            }
        }

        impl Div<f64> for $name {
            type Output = Self;
            fn div(self, rhs: f64) -> Self {
                Self(self.0 / rhs)
            }
        }

        impl std::iter::Sum for $name {
            fn sum<I: Iterator<Item = Self>>(iter: I) -> Self {
                Self(iter.map(|x| x.0).sum())
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

unit!(
    /// Energy in joules.
    Joules,
    "J"
);
unit!(
    /// Power in watts.
    Watts,
    "W"
);
unit!(
    /// A time span in seconds, as a float (for arithmetic with power and energy).
    Seconds,
    "s"
);

impl Joules {
    /// Joules per watt-hour.
    pub const PER_WATT_HOUR: f64 = 3600.0;

    /// From watt-hours (the paper's unit, used only at the edges).
    pub fn from_watt_hours(wh: f64) -> Self {
        Self(wh * Self::PER_WATT_HOUR)
    }

    /// To watt-hours (the paper's unit, used only at the edges).
    pub fn to_watt_hours(self) -> f64 {
        self.0 / Self::PER_WATT_HOUR
    }

    /// From millijoules (NVML's energy counter unit).
    pub fn from_millijoules(mj: u64) -> Self {
        Self(mj as f64 / 1e3)
    }

    /// From microjoules (RAPL's `energy_uj` unit).
    pub fn from_microjoules(uj: u64) -> Self {
        Self(uj as f64 / 1e6)
    }
}

impl Watts {
    /// From milliwatts (NVML's power unit).
    pub fn from_milliwatts(mw: u32) -> Self {
        Self(f64::from(mw) / 1e3)
    }
}

impl Seconds {
    /// As a [`Duration`]; negative or non-finite values saturate to zero / `Duration::MAX`.
    pub fn to_duration(self) -> Duration {
        Duration::try_from_secs_f64(self.0.max(0.0)).unwrap_or(Duration::MAX)
    }
}

impl From<Duration> for Seconds {
    fn from(d: Duration) -> Self {
        Self(d.as_secs_f64())
    }
}

impl Mul<Seconds> for Watts {
    type Output = Joules;
    fn mul(self, rhs: Seconds) -> Joules {
        Joules(self.0 * rhs.0)
    }
}

impl Mul<Watts> for Seconds {
    type Output = Joules;
    fn mul(self, rhs: Watts) -> Joules {
        Joules(self.0 * rhs.0)
    }
}

impl Mul<Duration> for Watts {
    type Output = Joules;
    fn mul(self, rhs: Duration) -> Joules {
        Joules(self.0 * rhs.as_secs_f64())
    }
}

impl Div<Seconds> for Joules {
    type Output = Watts;
    fn div(self, rhs: Seconds) -> Watts {
        Watts(self.0 / rhs.0)
    }
}

impl Div<Duration> for Joules {
    type Output = Watts;
    fn div(self, rhs: Duration) -> Watts {
        Watts(self.0 / rhs.as_secs_f64())
    }
}

impl Div<Watts> for Joules {
    type Output = Seconds;
    fn div(self, rhs: Watts) -> Seconds {
        Seconds(self.0 / rhs.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions() {
        assert_eq!(Joules::from_millijoules(1500), Joules(1.5));
        assert_eq!(Joules::from_microjoules(2_000_000), Joules(2.0));
        assert_eq!(Watts::from_milliwatts(250_500), Watts(250.5));
        assert_eq!(Joules::from_watt_hours(1.0), Joules(3600.0));
        assert_eq!(Watts(100.0) * Duration::from_millis(500), Joules(50.0));
        assert_eq!(Joules(10.0) / Watts(5.0), Seconds(2.0));
        assert_eq!(Seconds(-1.0).to_duration(), Duration::ZERO);
        assert_eq!(format!("{:.2}", Joules(1.0 / 3.0)), "0.33 J");
    }
}
