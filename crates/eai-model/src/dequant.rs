//! GGML tensor types and their dequantization (the CPU golden reference).
//!
//! Formulas follow ggml's `dequantize_row_*` (`src/ggml-quants.c`); see `docs/model.md`.

use half::{bf16, f16};

use crate::error::{Error, Result};

/// A GGML storage type that can appear in a GGUF file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GgmlType {
    /// 32-bit float.
    F32,
    /// IEEE half.
    F16,
    /// bfloat16.
    BF16,
    /// Blocks of 32: f16 scale, 32 × 4-bit, value = (q − 8)·d.
    Q4_0,
    /// Blocks of 32: f16 scale and min, 32 × 4-bit, value = q·d + m.
    Q4_1,
    /// Blocks of 32: f16 scale, 32 × 5-bit (no dequantizer here).
    Q5_0,
    /// Blocks of 32: f16 scale and min, 32 × 5-bit (no dequantizer here).
    Q5_1,
    /// Blocks of 32: f16 scale, 32 × i8.
    Q8_0,
    /// Blocks of 32: f16 scale and sum, 32 × i8 (activation format; no dequantizer here).
    Q8_1,
    /// K-quant, 2-bit (no dequantizer here).
    Q2K,
    /// K-quant, 3-bit (no dequantizer here).
    Q3K,
    /// K-quant super-blocks of 256 with 6-bit sub-block scales and mins, 4-bit values.
    Q4K,
    /// K-quant, 5-bit (no dequantizer here).
    Q5K,
    /// K-quant super-blocks of 256 with i8 sub-block scales, 6-bit values.
    Q6K,
    /// K-quant, 8-bit (no dequantizer here).
    Q8K,
    /// 8-bit integer (no dequantizer here).
    I8,
    /// 16-bit integer (no dequantizer here).
    I16,
    /// 32-bit integer (no dequantizer here).
    I32,
    /// 64-bit integer (no dequantizer here).
    I64,
    /// 64-bit float (no dequantizer here).
    F64,
}

impl GgmlType {
    /// The type for a ggml type id, if it is one this reader knows the layout of.
    pub fn from_id(id: u32) -> Option<Self> {
        Some(match id {
            0 => Self::F32,
            1 => Self::F16,
            2 => Self::Q4_0,
            3 => Self::Q4_1,
            6 => Self::Q5_0,
            7 => Self::Q5_1,
            8 => Self::Q8_0,
            9 => Self::Q8_1,
            10 => Self::Q2K,
            11 => Self::Q3K,
            12 => Self::Q4K,
            13 => Self::Q5K,
            14 => Self::Q6K,
            15 => Self::Q8K,
            24 => Self::I8,
            25 => Self::I16,
            26 => Self::I32,
            27 => Self::I64,
            28 => Self::F64,
            30 => Self::BF16,
            _ => return None,
        })
    }

    /// The ggml type id.
    pub fn id(self) -> u32 {
        match self {
            Self::F32 => 0,
            Self::F16 => 1,
            Self::Q4_0 => 2,
            Self::Q4_1 => 3,
            Self::Q5_0 => 6,
            Self::Q5_1 => 7,
            Self::Q8_0 => 8,
            Self::Q8_1 => 9,
            Self::Q2K => 10,
            Self::Q3K => 11,
            Self::Q4K => 12,
            Self::Q5K => 13,
            Self::Q6K => 14,
            Self::Q8K => 15,
            Self::I8 => 24,
            Self::I16 => 25,
            Self::I32 => 26,
            Self::I64 => 27,
            Self::F64 => 28,
            Self::BF16 => 30,
        }
    }

    /// `(elements per block, bytes per block)`.
    pub fn block(self) -> (u64, u64) {
        match self {
            Self::F32 | Self::I32 => (1, 4),
            Self::F16 | Self::BF16 | Self::I16 => (1, 2),
            Self::I8 => (1, 1),
            Self::I64 | Self::F64 => (1, 8),
            Self::Q4_0 => (32, 18),
            Self::Q4_1 => (32, 20),
            Self::Q5_0 => (32, 22),
            Self::Q5_1 => (32, 24),
            Self::Q8_0 => (32, 34),
            Self::Q8_1 => (32, 36),
            Self::Q2K => (256, 84),
            Self::Q3K => (256, 110),
            Self::Q4K => (256, 144),
            Self::Q5K => (256, 176),
            Self::Q6K => (256, 210),
            Self::Q8K => (256, 292),
        }
    }

    /// Whether [`dequantize_into`] supports this type.
    pub fn can_dequantize(self) -> bool {
        matches!(
            self,
            Self::F32
                | Self::F16
                | Self::BF16
                | Self::Q4_0
                | Self::Q4_1
                | Self::Q8_0
                | Self::Q4K
                | Self::Q6K
        )
    }
}

fn f16_at(b: &[u8], i: usize) -> f32 {
    f16::from_bits(u16::from_le_bytes([b[i], b[i + 1]])).to_f32()
}

/// Dequantizes `bytes` of type `ty` into `out` (whose length is the element count).
///
/// # Errors
/// [`Error::UnsupportedTensorType`] for types without a dequantizer; [`Error::BadTensor`]-style
/// [`Error::InvalidInput`] when `bytes` does not hold exactly `out.len()` elements.
pub fn dequantize_into(ty: GgmlType, bytes: &[u8], out: &mut [f32], tensor: &str) -> Result<()> {
    if !ty.can_dequantize() {
        return Err(Error::UnsupportedTensorType {
            tensor: tensor.to_string(),
            ty: format!("{ty:?}"),
        });
    }
    let (blk, bsz) = ty.block();
    let (blk, bsz) = (blk as usize, bsz as usize);
    if !out.len().is_multiple_of(blk) || out.len() / blk * bsz != bytes.len() {
        return Err(Error::invalid(format!(
            "tensor `{tensor}`: {} bytes of {ty:?} cannot hold {} elements",
            bytes.len(),
            out.len()
        )));
    }
    let blocks = bytes.chunks_exact(bsz).zip(out.chunks_exact_mut(blk));
    match ty {
        GgmlType::F32 => {
            for (b, y) in blocks {
                y[0] = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
        }
        GgmlType::F16 => {
            for (b, y) in blocks {
                y[0] = f16_at(b, 0);
            }
        }
        GgmlType::BF16 => {
            for (b, y) in blocks {
                y[0] = bf16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f32();
            }
        }
        GgmlType::Q8_0 => {
            for (b, y) in blocks {
                let d = f16_at(b, 0);
                for (yj, &q) in y.iter_mut().zip(&b[2..34]) {
                    *yj = f32::from(q as i8) * d;
                }
            }
        }
        GgmlType::Q4_0 => {
            for (b, y) in blocks {
                let d = f16_at(b, 0);
                let qs = &b[2..18];
                for j in 0..16 {
                    y[j] = (i32::from(qs[j] & 0xF) - 8) as f32 * d;
                    y[j + 16] = (i32::from(qs[j] >> 4) - 8) as f32 * d;
                }
            }
        }
        GgmlType::Q4_1 => {
            for (b, y) in blocks {
                let d = f16_at(b, 0);
                let m = f16_at(b, 2);
                let qs = &b[4..20];
                for j in 0..16 {
                    y[j] = f32::from(qs[j] & 0xF) * d + m;
                    y[j + 16] = f32::from(qs[j] >> 4) * d + m;
                }
            }
        }
        GgmlType::Q4K => {
            for (b, y) in blocks {
                let d = f16_at(b, 0);
                let dmin = f16_at(b, 2);
                let scales = &b[4..16];
                let qs = &b[16..144];
                for c in 0..4 {
                    let (s1, m1) = scale_min_k4(2 * c, scales);
                    let (s2, m2) = scale_min_k4(2 * c + 1, scales);
                    let (d1, mm1) = (d * f32::from(s1), dmin * f32::from(m1));
                    let (d2, mm2) = (d * f32::from(s2), dmin * f32::from(m2));
                    for l in 0..32 {
                        let q = qs[32 * c + l];
                        y[64 * c + l] = d1 * f32::from(q & 0xF) - mm1;
                        y[64 * c + 32 + l] = d2 * f32::from(q >> 4) - mm2;
                    }
                }
            }
        }
        GgmlType::Q6K => {
            for (b, y) in blocks {
                let d = f16_at(b, 208);
                for n in 0..2 {
                    let ql = &b[64 * n..64 * n + 64];
                    let qh = &b[128 + 32 * n..128 + 32 * n + 32];
                    let sc = &b[192 + 8 * n..192 + 8 * n + 8];
                    let y = &mut y[128 * n..128 * n + 128];
                    for l in 0..32 {
                        let is = l / 16;
                        let q1 = i32::from((ql[l] & 0xF) | ((qh[l] & 3) << 4)) - 32;
                        let q2 = i32::from((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                        let q3 = i32::from((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                        let q4 = i32::from((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                        let s = |k: usize| d * f32::from(sc[is + k] as i8);
                        y[l] = s(0) * q1 as f32;
                        y[l + 32] = s(2) * q2 as f32;
                        y[l + 64] = s(4) * q3 as f32;
                        y[l + 96] = s(6) * q4 as f32;
                    }
                }
            }
        }
        _ => {
            return Err(Error::UnsupportedTensorType {
                tensor: tensor.to_string(),
                ty: format!("{ty:?}"),
            });
        }
    }
    Ok(())
}

fn scale_min_k4(j: usize, q: &[u8]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        ((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4))
    }
}

/// Encodes f32 values as GGUF bytes of a simple type (F32, F16, BF16, Q8_0, Q4_0, Q4_1), using
/// ggml's reference quantizers. Used by the GGUF→HF converter's tests and to write test files.
///
/// # Errors
/// [`Error::InvalidInput`] when `ty` is not one of those or the length is not a block multiple.
pub fn quantize(ty: GgmlType, x: &[f32]) -> Result<Vec<u8>> {
    let (blk, _) = ty.block();
    if !(x.len() as u64).is_multiple_of(blk) {
        return Err(Error::invalid(format!(
            "{} values are not a multiple of the {ty:?} block",
            x.len()
        )));
    }
    let mut out = Vec::new();
    match ty {
        GgmlType::F32 => x.iter().for_each(|v| out.extend_from_slice(&v.to_le_bytes())),
        GgmlType::F16 => {
            x.iter().for_each(|v| out.extend_from_slice(&f16::from_f32(*v).to_le_bytes()))
        }
        GgmlType::BF16 => {
            x.iter().for_each(|v| out.extend_from_slice(&bf16::from_f32(*v).to_le_bytes()))
        }
        GgmlType::Q8_0 => {
            for b in x.chunks_exact(32) {
                let amax = b.iter().fold(0f32, |a, v| a.max(v.abs()));
                let d = amax / 127.0;
                let id = if d != 0.0 { 1.0 / d } else { 0.0 };
                out.extend_from_slice(&f16::from_f32(d).to_le_bytes());
                out.extend(b.iter().map(|v| (v * id).round() as i8 as u8));
            }
        }
        GgmlType::Q4_0 => {
            for b in x.chunks_exact(32) {
                // ggml: the value of largest magnitude maps to −8.
                let max = b.iter().fold(0f32, |a, &v| if v.abs() > a.abs() { v } else { a });
                let d = max / -8.0;
                let id = if d != 0.0 { 1.0 / d } else { 0.0 };
                out.extend_from_slice(&f16::from_f32(d).to_le_bytes());
                let q = |v: f32| ((v * id + 8.5) as i32).clamp(0, 15) as u8;
                for j in 0..16 {
                    out.push(q(b[j]) | (q(b[j + 16]) << 4));
                }
            }
        }
        GgmlType::Q4_1 => {
            for b in x.chunks_exact(32) {
                let min = b.iter().copied().fold(f32::INFINITY, f32::min);
                let max = b.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let d = (max - min) / 15.0;
                let id = if d != 0.0 { 1.0 / d } else { 0.0 };
                out.extend_from_slice(&f16::from_f32(d).to_le_bytes());
                out.extend_from_slice(&f16::from_f32(min).to_le_bytes());
                let q = |v: f32| (((v - min) * id + 0.5) as i32).clamp(0, 15) as u8;
                for j in 0..16 {
                    out.push(q(b[j]) | (q(b[j + 16]) << 4));
                }
            }
        }
        _ => return Err(Error::invalid(format!("no quantizer for {ty:?}"))),
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn deq(ty: GgmlType, b: &[u8], n: usize) -> Vec<f32> {
        let mut y = vec![0f32; n];
        dequantize_into(ty, b, &mut y, "t").unwrap();
        y
    }

    #[test]
    fn q4_0_nibble_order_and_offset() {
        // d = 2.0; low nibbles 0..15 are elements 0..15, high nibbles are elements 16..31.
        let mut b = f16::from_f32(2.0).to_le_bytes().to_vec();
        b.extend((0..16u8).map(|j| j | ((15 - j) << 4)));
        let y = deq(GgmlType::Q4_0, &b, 32);
        assert_eq!(y[0], -16.0);
        assert_eq!(y[15], 14.0);
        assert_eq!(y[16], 14.0);
        assert_eq!(y[31], -16.0);
    }

    #[test]
    fn q4_1_and_q8_0() {
        let mut b = f16::from_f32(0.5).to_le_bytes().to_vec();
        b.extend(f16::from_f32(-1.0).to_le_bytes());
        b.extend([0xF0u8; 16]);
        let y = deq(GgmlType::Q4_1, &b, 32);
        assert_eq!((y[0], y[16]), (-1.0, 6.5));
        let mut b = f16::from_f32(-0.25).to_le_bytes().to_vec();
        b.extend((0..32).map(|j| (j as i8 - 16) as u8));
        let y = deq(GgmlType::Q8_0, &b, 32);
        assert_eq!((y[0], y[31]), (4.0, -3.75));
    }

    #[test]
    fn q4_k_scale_packing_for_upper_sub_blocks() {
        let mut b = vec![0u8; 144];
        b[0..2].copy_from_slice(&f16::from_f32(1.0).to_le_bytes());
        b[2..4].copy_from_slice(&f16::from_f32(0.5).to_le_bytes());
        // scales[12] at 4..16: sub-block 5 (j=5 ≥ 4): sc = (q[9] & 0xF) | ((q[1] >> 6) << 4),
        // m = (q[9] >> 4) | ((q[5] >> 6) << 4).
        let s = &mut b[4..16];
        s[1] = 0b1100_0000 | 3; // sub-block 1 scale 3, and high bits 3 of sub-block 5's scale
        s[5] = 0b0100_0000 | 2; // sub-block 1 min 2, and high bits 1 of sub-block 5's min
        s[9] = 0x72; // sub-block 5: scale low 2, min low 7
        b[16 + 64 + 5] = 0x0A; // chunk c=2 (sub-blocks 4,5), l = 5: low nibble → sub-block 4, high → 5
        b[16 + 64 + 6] = 0x90;
        let y = deq(GgmlType::Q4K, &b, 256);
        let (sc5, m5) = (2 + (3 << 4), 7 + (1 << 4));
        assert_eq!(y[128 + 32 + 6], sc5 as f32 * 9.0 - 0.5 * m5 as f32);
        assert_eq!(y[128 + 32 + 5], -0.5 * m5 as f32);
        assert_eq!(y[32], -0.5 * 2.0); // sub-block 1, q = 0
    }

    #[test]
    fn q6_k_layout() {
        let mut b = vec![0u8; 210];
        b[208..210].copy_from_slice(&f16::from_f32(0.5).to_le_bytes());
        for (i, s) in b[192..208].iter_mut().enumerate() {
            *s = (i as i8 - 4) as u8;
        }
        b[3] = 0x5A; // ql[3]: low → y[3], high → y[67]
        b[128 + 3] = 0b1110_0100; // qh[3]: bits for y[3], y[35], y[67], y[99]
        let y = deq(GgmlType::Q6K, &b, 256);
        // y[3]: q = (0xA | (0 << 4)) - 32 = -22, scale index 0 → -4.
        assert_eq!(y[3], 0.5 * -4.0 * -22.0);
        // y[35]: q = (0 | (1 << 4)) - 32 = -16, scale index 2 → -2.
        assert_eq!(y[35], 0.5 * -2.0 * -16.0);
        // y[67]: q = (5 | (2 << 4)) - 32 = 5, scale index 4 → 0.
        assert_eq!(y[67], 0.0);
        // y[99]: q = (0 | (3 << 4)) - 32 = 16, scale index 6 → 2.
        assert_eq!(y[99], 0.5 * 2.0 * 16.0);
        // Second half uses scales 8..16 and ql/qh offsets 64/32.
        assert_eq!(y[128], 0.5 * 4.0 * -32.0);
    }

    #[test]
    fn bf16_and_rejections() {
        let b = bf16::from_f32(-3.5).to_le_bytes();
        assert_eq!(deq(GgmlType::BF16, &b, 1), vec![-3.5]);
        let mut y = vec![0f32; 32];
        assert!(matches!(
            dequantize_into(GgmlType::Q5_0, &[0; 22], &mut y, "t"),
            Err(Error::UnsupportedTensorType { .. })
        ));
        assert!(dequantize_into(GgmlType::Q8_0, &[0; 33], &mut y, "t").is_err());
    }

    proptest::proptest! {
        #[test]
        fn quantizers_round_trip_within_half_a_step(v in proptest::collection::vec(-4.0f32..4.0, 64)) {
            for (ty, steps) in [(GgmlType::Q8_0, 127.0f32), (GgmlType::Q4_1, 7.5), (GgmlType::Q4_0, 4.0)] {
                let b = quantize(ty, &v).unwrap();
                let mut y = vec![0f32; 64];
                dequantize_into(ty, &b, &mut y, "t").unwrap();
                for blk in 0..2 {
                    let s = &v[blk * 32..blk * 32 + 32];
                    let amax = s.iter().fold(0f32, |a, x| a.max(x.abs()));
                    let range = if ty == GgmlType::Q4_1 {
                        s.iter().copied().fold(f32::MIN, f32::max) - s.iter().copied().fold(f32::MAX, f32::min)
                    } else { amax };
                    let tol = range / steps * 0.51 + amax * 2e-3 + 1e-6;
                    for j in 0..32 {
                        let i = blk * 32 + j;
                        proptest::prop_assert!((y[i] - v[i]).abs() <= tol.max(range / steps), "{ty:?} {} vs {}", y[i], v[i]);
                    }
                }
            }
        }
    }
}
