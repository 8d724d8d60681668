//! Error metrics between a reference tensor and its approximation.

use serde::{Deserialize, Serialize};

use crate::error::{QuantError, Result};

/// How far an approximation is from a reference. Sums are accumulated in `f64`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ErrorStats {
    /// Number of elements compared.
    pub n: usize,
    /// Mean squared error `Σ(x − x̂)² / n`.
    pub mse: f64,
    /// Signal-to-quantization-noise ratio `10·log10(Σx² / Σ(x − x̂)²)` in dB; `+inf` when the
    /// approximation is exact, `-inf` when the reference is all zeros but the approximation is not.
    pub sqnr_db: f64,
    /// Largest `|x − x̂|`.
    pub max_abs: f64,
    /// Cosine similarity of the flattened tensors; 1 when both are all zeros, 0 when exactly one is.
    pub cosine: f64,
}

impl ErrorStats {
    /// Compare `approx` against `reference` element by element.
    ///
    /// # Errors
    /// [`QuantError::ShapeMismatch`] when the lengths differ; [`QuantError::Empty`] when both are
    /// empty; [`QuantError::NonFinite`] when either holds NaN or infinity (named `reference` or
    /// `approx`).
    pub fn between(reference: &[f32], approx: &[f32]) -> Result<ErrorStats> {
        if reference.len() != approx.len() {
            return Err(QuantError::ShapeMismatch {
                context: "ErrorStats::between".into(),
                detail: format!(
                    "{} reference values, {} approximations",
                    reference.len(),
                    approx.len()
                ),
            });
        }
        if reference.is_empty() {
            return Err(QuantError::Empty { tensor: "reference".into(), shape: vec![0] });
        }
        for (name, v) in [("reference", reference), ("approx", approx)] {
            if let Some(i) = v.iter().position(|x| !x.is_finite()) {
                return Err(QuantError::NonFinite {
                    tensor: name.into(),
                    index: vec![i],
                    flat: i,
                    value: v[i],
                });
            }
        }
        let mut acc = ErrorAccumulator::default();
        acc.push(reference, approx);
        let a = acc;
        Ok(ErrorStats::from_sums(a.n, a.se, a.sx, a.sy, a.sxy, a.max_abs))
    }

    fn from_sums(n: usize, se: f64, sx: f64, sy: f64, sxy: f64, max_abs: f64) -> ErrorStats {
        let sqnr_db = if se == 0.0 { f64::INFINITY } else { 10.0 * (sx / se).log10() };
        let cosine = match (sx == 0.0, sy == 0.0) {
            (true, true) => 1.0,
            (true, false) | (false, true) => 0.0,
            _ => (sxy / (sx * sy).sqrt()).clamp(-1.0, 1.0),
        };
        ErrorStats { n, mse: se / n as f64, sqnr_db, max_abs, cosine }
    }
}

/// Streaming accumulator for [`ErrorStats`]: feed matching chunks, read the totals.
///
/// ```
/// use eai_quant::{ErrorAccumulator, ErrorStats};
/// let mut acc = ErrorAccumulator::default();
/// acc.push(&[1.0, 2.0], &[1.0, 2.5]);
/// acc.push(&[3.0], &[3.0]);
/// assert_eq!(acc.finish(), ErrorStats::between(&[1.0, 2.0, 3.0], &[1.0, 2.5, 3.0]).ok());
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ErrorAccumulator {
    n: usize,
    se: f64,
    sx: f64,
    sy: f64,
    sxy: f64,
    max_abs: f64,
}

impl ErrorAccumulator {
    /// Add one chunk (the shorter length of the two is used). Non-finite pairs are skipped.
    pub fn push(&mut self, reference: &[f32], approx: &[f32]) {
        for (&a, &b) in reference.iter().zip(approx) {
            if !(a.is_finite() && b.is_finite()) {
                continue;
            }
            let (a, b) = (f64::from(a), f64::from(b));
            let d = a - b;
            self.n += 1;
            self.se += d * d;
            self.sx += a * a;
            self.sy += b * b;
            self.sxy += a * b;
            self.max_abs = self.max_abs.max(d.abs());
        }
    }

    /// Merge another accumulator into this one.
    pub fn merge(&mut self, other: &ErrorAccumulator) {
        self.n += other.n;
        self.se += other.se;
        self.sx += other.sx;
        self.sy += other.sy;
        self.sxy += other.sxy;
        self.max_abs = self.max_abs.max(other.max_abs);
    }

    /// The statistics so far, or `None` when nothing was pushed.
    pub fn finish(&self) -> Option<ErrorStats> {
        (self.n > 0).then(|| {
            ErrorStats::from_sums(self.n, self.se, self.sx, self.sy, self.sxy, self.max_abs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        let e = ErrorStats::between(&[1.0, 2.0, 3.0, 4.0], &[1.0, 2.0, 3.0, 5.0]).unwrap();
        assert_eq!(e.mse, 0.25);
        assert_eq!(e.max_abs, 1.0);
        assert!((e.sqnr_db - 10.0 * 30f64.log10()).abs() < 1e-12);
        assert!((e.cosine - 34.0 / (30f64.sqrt() * 39f64.sqrt())).abs() < 1e-12);
        let exact = ErrorStats::between(&[1.0, -1.0], &[1.0, -1.0]).unwrap();
        assert_eq!((exact.mse, exact.sqnr_db, exact.cosine), (0.0, f64::INFINITY, 1.0));
    }

    #[test]
    fn bad_inputs() {
        assert!(matches!(ErrorStats::between(&[1.0], &[]), Err(QuantError::ShapeMismatch { .. })));
        assert!(matches!(ErrorStats::between(&[], &[]), Err(QuantError::Empty { .. })));
        assert!(matches!(
            ErrorStats::between(&[1.0, 2.0], &[1.0, f32::NAN]),
            Err(QuantError::NonFinite { flat: 1, .. })
        ));
        let z = ErrorStats::between(&[0.0, 0.0], &[0.0, 0.0]).unwrap();
        assert_eq!((z.cosine, z.sqnr_db), (1.0, f64::INFINITY));
    }
}
