//! The paper's worked example: asymmetric INT8 of the range [−6.48, 8.58] onto 0..255.
//!
//! The slides write the mapping as `q = round(16.93 · x + 110)`. In the library's convention
//! that is `q = round(x / scale) + zero_point` with `scale = (8.58 − (−6.48)) / 255 = 1 / 16.93…`
//! and `zero_point = round(0 − (−6.48) / scale) = round(109.72) = 110`: the paper's "scale
//! factor" 16.93 is the reciprocal of the library's scale.
//!
//! Checking the slide's table against its own formula shows two arithmetic slips:
//! `16.93 · (−5.26) + 110 = 20.95` rounds to 21, not 20, and `16.93 · (−3.67) + 110 = 47.87`
//! rounds to 48, not 47. The min-max quantizer therefore gives 21 and 48 there (the other seven
//! codes match). The slide's nine codes *are* reproduced exactly by the library's formula with
//! the same zero point 110 and any scale whose reciprocal lies in [17.030, 17.054] — the second
//! test derives that interval from the codes and checks it.

use eai_quant::kernel::{GroupParams, dequantize_value, quantize_value};
use eai_quant::{Codes, CpuQuantizer, Granularity, QuantSpec, Quantizer};

const X: [f32; 9] = [4.72, 2.96, -6.48, 0.0, -3.34, -5.26, 8.58, 2.19, -3.67];
const SLIDE: [i32; 9] = [190, 160, 0, 110, 53, 20, 255, 147, 47];

fn spec() -> QuantSpec {
    QuantSpec { granularity: Granularity::PerTensor, ..QuantSpec::uint8_asymmetric() }
}

#[test]
fn min_max_asymmetric_int8_equals_the_papers_formula() {
    let q = CpuQuantizer::new(spec()).unwrap();
    let x = ndarray::arr1(&X).into_dyn();
    let qt = q.quantize_named("slide", x.view()).unwrap();

    // scale = range / 255 and its reciprocal is the paper's 16.93; zero point 110
    let scale = qt.scales[0];
    assert_eq!(scale, (8.58f32 - (-6.48f32)) / 255.0);
    assert!((1.0 / scale - 16.93).abs() < 0.005, "1/scale = {}", 1.0 / scale);
    assert_eq!(qt.zero_points, vec![110]);

    let codes: Vec<i32> = match &qt.codes {
        Codes::U8(c) => c.iter().map(|&c| i32::from(c)).collect(),
        Codes::I8(_) => panic!("asymmetric 0..255 must store u8 codes"),
    };
    // x/scale + zero_point == the paper's round(16.93·x + 110), value by value, with the exact
    // reciprocal (16.9322…) and with the slide's two-decimal 16.93 alike
    for (i, &x) in X.iter().enumerate() {
        let paper_exact = (f64::from(x) / f64::from(scale) + 110.0).round().clamp(0.0, 255.0);
        let paper_1693 = (16.93 * f64::from(x) + 110.0).round().clamp(0.0, 255.0);
        assert_eq!(f64::from(codes[i]), paper_exact, "x = {x}");
        assert_eq!(f64::from(codes[i]), paper_1693, "x = {x}");
    }
    assert_eq!(codes, vec![190, 160, 0, 110, 53, 21, 255, 147, 48]);

    // the slide differs only where its own arithmetic slipped
    let differ: Vec<usize> = (0..9).filter(|&i| codes[i] != SLIDE[i]).collect();
    assert_eq!(differ, vec![5, 8]);
    assert!((16.93f64 * -5.26 + 110.0 - 20.9482).abs() < 1e-9);
    assert!((16.93f64 * -3.67 + 110.0 - 47.8669).abs() < 1e-9);

    // 0 is exactly representable: it maps to the zero point and back to 0
    let back = q.dequantize(&qt).unwrap();
    assert_eq!(back[3], 0.0);
    for (a, b) in X.iter().zip(back.iter()) {
        assert!((a - b).abs() <= scale / 2.0 + 1e-6, "{a} -> {b}");
    }
}

#[test]
fn the_slides_codes_follow_from_zero_point_110_and_a_scale_of_one_over_17_04() {
    let spec = spec();
    // every code constrains 1/scale = t through |t·x − (q − 110)| ≤ 1/2 (saturated ends: one-sided)
    let (mut lo, mut hi) = (f64::NEG_INFINITY, f64::INFINITY);
    for (&x, &q) in X.iter().zip(&SLIDE) {
        let x = f64::from(x);
        if x == 0.0 {
            assert_eq!(q, 110);
            continue;
        }
        let k = f64::from(q - 110);
        let (a, b) = match q {
            255 => (k - 0.5, f64::INFINITY),
            0 => (f64::NEG_INFINITY, k + 0.5),
            _ => (k - 0.5, k + 0.5),
        };
        let (t1, t2) = if x > 0.0 { (a / x, b / x) } else { (b / x, a / x) };
        lo = lo.max(t1);
        hi = hi.min(t2);
    }
    assert!((lo - 17.0300).abs() < 1e-3 && (hi - 17.0548).abs() < 1e-3, "[{lo}, {hi}]");
    assert!(16.93 < lo, "the min-max reciprocal 16.93 lies outside the slide's interval");

    let t = 17.04f32;
    let p = GroupParams { scale: 1.0 / t, zero_point: 110, inv: t };
    let codes: Vec<i32> = X.iter().map(|&x| quantize_value(x, p, &spec)).collect();
    assert_eq!(codes, SLIDE);
    assert_eq!(dequantize_value(110, p), 0.0);
}
