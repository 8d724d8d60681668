//! The crate's one error type.

/// Why a metric, statistic, prediction or recommendation could not be computed.
///
/// Every variant names the field (and, where there is one, the run) it is about, so that a
/// report over hundreds of runs says which input was wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A value the computation needs was never recorded.
    #[error("{run}: `{field}` is missing")]
    Missing {
        /// The run's label (`model/scheme/hardware#repetition`), or the object the field belongs to.
        run: String,
        /// The missing field (e.g. `energy`, `output_tokens`).
        field: &'static str,
    },
    /// A value is zero where the computation divides by it.
    #[error("{run}: `{field}` is zero")]
    Zero {
        /// The run's label, or the object the field belongs to.
        run: String,
        /// The zero field.
        field: &'static str,
    },
    /// A value is NaN, infinite, negative or outside its range.
    #[error("{run}: `{field}` = {value} is invalid: {reason}")]
    Invalid {
        /// The run's label, or the object the field belongs to.
        run: String,
        /// The offending field.
        field: &'static str,
        /// The value given.
        value: f64,
        /// What the value must satisfy.
        reason: &'static str,
    },
    /// A label (model, scheme, hardware, task, domain) is empty or given twice.
    #[error("{run}: {what}")]
    Label {
        /// The run's label as far as it is known.
        run: String,
        /// What is wrong with the label.
        what: String,
    },
    /// A statistic needs more observations than it was given.
    #[error("{what} needs at least {needed} values, got {got}")]
    TooFewValues {
        /// The statistic (e.g. `95 % confidence interval`).
        what: &'static str,
        /// How many it needs.
        needed: usize,
        /// How many it got.
        got: usize,
    },
    /// Every observation in both groups is identical, so no test statistic exists.
    #[error("{what}: both groups have zero variance")]
    NoVariance {
        /// The statistic.
        what: &'static str,
    },
    /// Fieller's interval for a ratio is unbounded: the denominator's mean is not significantly
    /// different from zero at the requested level.
    #[error(
        "{what}: the confidence interval of the ratio is unbounded (denominator not significantly non-zero)"
    )]
    UnboundedRatio {
        /// The ratio (e.g. `energy ratio`).
        what: &'static str,
    },
    /// Two groups that must be comparable are not (e.g. different tasks scored).
    #[error("{what}")]
    Incomparable {
        /// Why they cannot be compared.
        what: String,
    },
    /// A hardware profile name that is not in the profile set.
    #[error("unknown hardware profile `{name}`")]
    UnknownHardware {
        /// The name looked up.
        name: String,
    },
    /// Reading or writing JSON or CSV failed.
    #[error("{context}")]
    Format {
        /// What was being read or written.
        context: String,
        /// The underlying error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn format(
        context: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self::Format { context: context.into(), source: source.into() }
    }
}

/// Checks that `value` is finite and `>= 0`.
pub(crate) fn non_negative(run: &str, field: &'static str, value: f64) -> Result<f64> {
    if !value.is_finite() {
        return Err(Error::Invalid { run: run.to_owned(), field, value, reason: "must be finite" });
    }
    if value < 0.0 {
        return Err(Error::Invalid {
            run: run.to_owned(),
            field,
            value,
            reason: "must not be negative",
        });
    }
    Ok(value)
}

/// Checks that `value` is finite and `> 0`.
pub(crate) fn positive(run: &str, field: &'static str, value: f64) -> Result<f64> {
    non_negative(run, field, value)?;
    if value == 0.0 {
        return Err(Error::Zero { run: run.to_owned(), field });
    }
    Ok(value)
}
