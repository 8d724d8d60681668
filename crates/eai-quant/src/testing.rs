//! Conformance checks for third-party [`Quantizer`] implementations (feature `test-util`).
//!
//! ```
//! use eai_quant::{CpuQuantizer, QuantSpec};
//! eai_quant::testing::check_quantizer(&CpuQuantizer::new(QuantSpec::int8_weight())?)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use ndarray::{ArrayD, IxDyn};

use crate::cpu::{CpuQuantizer, Quantizer};
use crate::error::{QuantError, Result};
use crate::spec::Granularity;

/// Inputs that exercise ties, zero groups, tiny and large magnitudes, and odd shapes.
pub fn conformance_inputs() -> Vec<(String, ArrayD<f32>)> {
    let mut v = Vec::new();
    let shapes: [&[usize]; 4] = [&[1, 64], &[3, 128], &[17, 96], &[2, 3, 32]];
    for shape in shapes {
        let n: usize = shape.iter().product();
        let last = shape[shape.len() - 1];
        let data: Vec<f32> = (0..n)
            .map(|i| {
                let row = i / last;
                // power-of-two magnitudes: with amax = 127·2⁻⁶·m every /127 scale is exact, so
                // the half-steps below are exact ties for the rounding rule to decide
                let m = [1.0f32, 2f32.powi(-10), 32.0, 0.0][row % 4];
                let step = 2f32.powi(-6) * m;
                if i % 32 == 0 {
                    127.0 * step // every group of 32 holds the row's absolute maximum
                } else if i % 3 == 0 {
                    ((i % 250) as f32 - 125.0 + 0.5) * step
                } else {
                    (i as f32 * 0.37).sin() * 127.0 * step
                }
            })
            .collect();
        let name = format!("conformance{shape:?}");
        if let Ok(a) = ArrayD::from_shape_vec(IxDyn(shape), data) {
            v.push((name, a));
        }
    }
    v
}

/// Check that `q` produces exactly the codes, scales and zero points of [`CpuQuantizer`] for
/// its spec, and dequantizes exactly as it does, on [`conformance_inputs`] (skipping inputs the
/// spec's granularity does not fit, which both must reject with the same error kind).
///
/// # Errors
/// [`QuantError::ShapeMismatch`] describing the first difference; errors from `q` itself.
pub fn check_quantizer(q: &dyn Quantizer) -> Result<()> {
    let spec = *q.spec();
    let reference = CpuQuantizer::new(spec)?;
    for (name, x) in conformance_inputs() {
        let want = reference.quantize_named(&name, x.view());
        let got = q.quantize_named(&name, x.view());
        let (want, got) = match (want, got) {
            (Ok(w), Ok(g)) => (w, g),
            (Err(a), Err(b)) if std::mem::discriminant(&a) == std::mem::discriminant(&b) => {
                continue;
            }
            (w, g) => {
                return Err(mismatch(
                    &name,
                    format!("reference {:?}, implementation {:?}", w.err(), g.err()),
                ));
            }
        };
        if want.codes != got.codes {
            return Err(mismatch(&name, "codes differ".into()));
        }
        let bits = |v: &[f32]| v.iter().map(|s| s.to_bits()).collect::<Vec<_>>();
        if bits(&want.scales) != bits(&got.scales) || want.zero_points != got.zero_points {
            return Err(mismatch(&name, "scales or zero points differ".into()));
        }
        let a = reference.dequantize(&want)?;
        let b = q.dequantize(&got)?;
        if a.iter().zip(b.iter()).any(|(x, y)| x.to_bits() != y.to_bits()) {
            return Err(mismatch(&name, "dequantized values differ".into()));
        }
    }
    if let Granularity::PerGroup { size } = spec.granularity {
        // a group size that does not divide the row must be rejected
        let x = ArrayD::<f32>::zeros(IxDyn(&[2, size + 1]));
        if size > 1 && q.quantize(x.view()).is_ok() {
            return Err(mismatch("bad group", "accepted a row not divisible by the group".into()));
        }
    }
    Ok(())
}

fn mismatch(name: &str, detail: String) -> QuantError {
    QuantError::ShapeMismatch { context: format!("conformance `{name}`"), detail }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::qtensor::QuantizedTensor;
    use crate::spec::{QuantSpec, Rounding};
    use ndarray::ArrayViewD;

    /// Claims the default spec but rounds ties away from zero: must be caught.
    struct Wrong(CpuQuantizer, QuantSpec);

    impl Quantizer for Wrong {
        fn spec(&self) -> &QuantSpec {
            &self.1
        }
        fn quantize_named(&self, name: &str, x: ArrayViewD<'_, f32>) -> Result<QuantizedTensor> {
            let mut q = self.0.quantize_named(name, x)?;
            q.spec = self.1;
            Ok(q)
        }
        fn dequantize(&self, q: &QuantizedTensor) -> Result<ArrayD<f32>> {
            self.0.dequantize(q)
        }
    }

    #[test]
    fn a_wrong_rounding_rule_is_caught() {
        let spec = QuantSpec::int8_weight();
        let away = QuantSpec { rounding: Rounding::HalfAwayFromZero, ..spec };
        let wrong = Wrong(CpuQuantizer::new(away).unwrap(), spec);
        assert!(check_quantizer(&wrong).is_err());
        assert!(check_quantizer(&CpuQuantizer::new(spec).unwrap()).is_ok());
    }
}
