//! [`QuantizedTensor`] (plain data) and [`GroupLayout`] (which element belongs to which scale).

use serde::{Deserialize, Serialize};

use crate::error::{QuantError, Result};
use crate::kernel::GroupParams;
use crate::spec::{Granularity, Mapping, QuantSpec};

/// Integer codes, stored in the byte type the spec's range calls for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Codes {
    /// Signed codes (`−128..=127` or `−127..=127`).
    I8(Vec<i8>),
    /// Unsigned codes (`0..=255`).
    U8(Vec<u8>),
}

impl Codes {
    /// Number of codes.
    pub fn len(&self) -> usize {
        match self {
            Codes::I8(v) => v.len(),
            Codes::U8(v) => v.len(),
        }
    }

    /// Whether there are no codes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Code `i` widened to `i32`, or `None` when out of bounds.
    pub fn get(&self, i: usize) -> Option<i32> {
        match self {
            Codes::I8(v) => v.get(i).map(|&q| i32::from(q)),
            Codes::U8(v) => v.get(i).map(|&q| i32::from(q)),
        }
    }

    /// All codes widened to `i32`.
    pub fn to_i32(&self) -> Vec<i32> {
        match self {
            Codes::I8(v) => v.iter().map(|&q| i32::from(q)).collect(),
            Codes::U8(v) => v.iter().map(|&q| i32::from(q)).collect(),
        }
    }

    /// The raw bytes (`i8` reinterpreted as two's-complement `u8`).
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Codes::I8(v) => v.iter().map(|&q| q.to_ne_bytes()[0]).collect(),
            Codes::U8(v) => v.clone(),
        }
    }
}

/// A quantized tensor: codes in row-major order, one scale and zero point per group, the spec
/// that made them and the original shape. Plain data: no handles, no backend.
///
/// Element `i` (row-major flat index) belongs to group `layout().group_of(i)` and dequantizes to
/// `(codes[i] − zero_points[g]) · scales[g]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuantizedTensor {
    /// The scheme.
    pub spec: QuantSpec,
    /// Shape of the original tensor.
    pub shape: Vec<usize>,
    /// Codes, row-major, `shape.iter().product()` of them.
    pub codes: Codes,
    /// One scale per group (values exactly representable in `spec.scale_dtype`).
    pub scales: Vec<f32>,
    /// Shape of `scales` (see [`Granularity`]).
    pub scale_shape: Vec<usize>,
    /// One zero point per group (all equal to the symmetric zero point when symmetric).
    pub zero_points: Vec<i32>,
}

impl QuantizedTensor {
    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// The group layout of this tensor.
    ///
    /// # Errors
    /// As [`GroupLayout::new`].
    pub fn layout(&self) -> Result<GroupLayout> {
        GroupLayout::new("<quantized>", &self.shape, self.spec.granularity)
    }

    /// Parameters of group `g` (`inv` recomputed as `1 / scale`).
    pub fn group(&self, g: usize) -> Option<GroupParams> {
        let scale = *self.scales.get(g)?;
        let zero_point = *self.zero_points.get(g)?;
        let inv = if scale == 0.0 { 0.0 } else { 1.0 / scale };
        Some(GroupParams { scale, zero_point, inv })
    }

    /// Bytes this tensor occupies when stored: one byte per code, scales in their dtype, and zero
    /// points (as stored bytes, one per group) only for asymmetric specs.
    pub fn storage_bytes(&self) -> usize {
        let scale_bytes = match self.spec.scale_dtype {
            crate::ScaleDtype::F32 => 4,
            _ => 2,
        };
        let zp = if self.spec.mapping == Mapping::Asymmetric { self.zero_points.len() } else { 0 };
        self.codes.len() + self.scales.len() * scale_bytes + zp
    }

    /// Check internal consistency (lengths, code range, finite non-negative scales).
    ///
    /// # Errors
    /// [`QuantError::ShapeMismatch`] describing the first inconsistency, or the errors of
    /// [`QuantSpec::validate`] and [`GroupLayout::new`].
    pub fn validate(&self) -> Result<()> {
        self.spec.validate()?;
        let layout = self.layout()?;
        let mismatch = |detail: String| QuantError::ShapeMismatch {
            context: "QuantizedTensor".into(),
            detail,
        };
        if self.codes.len() != self.numel() {
            return Err(mismatch(format!(
                "{} codes for shape {:?} ({} elements)",
                self.codes.len(),
                self.shape,
                self.numel()
            )));
        }
        if self.scales.len() != layout.groups() || self.zero_points.len() != layout.groups() {
            return Err(mismatch(format!(
                "{} scales and {} zero points for {} groups",
                self.scales.len(),
                self.zero_points.len(),
                layout.groups()
            )));
        }
        if self.scale_shape != layout.scale_shape() {
            return Err(mismatch(format!(
                "scale shape {:?}, layout wants {:?}",
                self.scale_shape,
                layout.scale_shape()
            )));
        }
        let signed = matches!(self.codes, Codes::I8(_));
        if signed != self.spec.range.is_signed() {
            return Err(mismatch("code type does not match the spec's range".into()));
        }
        if let Some(s) = self.scales.iter().find(|s| !(s.is_finite() && **s >= 0.0)) {
            return Err(mismatch(format!("scale {s} is not finite and non-negative")));
        }
        Ok(())
    }
}

/// How a tensor's elements are divided into groups that share a scale.
///
/// Every granularity splits the row-major element order into *runs*: contiguous stretches whose
/// elements share one group. A run is `(start, len, group)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupLayout {
    numel: usize,
    kind: LayoutKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum LayoutKind {
    /// Contiguous blocks of `len` elements, block `b` is group `b`.
    Blocks { len: usize, scale_shape: Vec<usize> },
    /// `outer × channels × inner`: group is the channel.
    Channel { channels: usize, inner: usize },
}

impl GroupLayout {
    /// The layout of a tensor of `shape` under `granularity`. `tensor` names it in errors.
    ///
    /// # Errors
    /// [`QuantError::Empty`] for a tensor without elements, [`QuantError::AxisOutOfRange`] for a
    /// channel axis beyond the rank, [`QuantError::BadGroup`] for a group size that is zero or
    /// does not divide the last axis.
    pub fn new(tensor: &str, shape: &[usize], granularity: Granularity) -> Result<GroupLayout> {
        let numel: usize = shape.iter().product();
        if numel == 0 {
            return Err(QuantError::Empty { tensor: tensor.into(), shape: shape.to_vec() });
        }
        let last = shape.last().copied().unwrap_or(1);
        let rows = numel / last;
        let kind = match granularity {
            Granularity::PerTensor => LayoutKind::Blocks { len: numel, scale_shape: vec![1] },
            Granularity::PerToken => LayoutKind::Blocks { len: last, scale_shape: vec![rows] },
            Granularity::PerGroup { size } => {
                if size == 0 || last % size != 0 {
                    return Err(QuantError::BadGroup {
                        tensor: tensor.into(),
                        len: last,
                        group: size,
                    });
                }
                let lead: Vec<usize> = if shape.len() > 1 { vec![rows] } else { vec![] };
                let mut scale_shape = lead;
                scale_shape.push(last / size);
                LayoutKind::Blocks { len: size, scale_shape }
            }
            Granularity::PerChannel { axis } => {
                if axis >= shape.len() {
                    return Err(QuantError::AxisOutOfRange {
                        tensor: tensor.into(),
                        axis,
                        rank: shape.len(),
                    });
                }
                let channels = shape[axis];
                let inner: usize = shape[axis + 1..].iter().product();
                LayoutKind::Channel { channels, inner }
            }
        };
        Ok(GroupLayout { numel, kind })
    }

    /// Number of groups (= number of scales).
    pub fn groups(&self) -> usize {
        match &self.kind {
            LayoutKind::Blocks { len, .. } => self.numel / len,
            LayoutKind::Channel { channels, .. } => *channels,
        }
    }

    /// Shape of the scales array.
    pub fn scale_shape(&self) -> Vec<usize> {
        match &self.kind {
            LayoutKind::Blocks { scale_shape, .. } => scale_shape.clone(),
            LayoutKind::Channel { channels, .. } => vec![*channels],
        }
    }

    /// Number of elements covered.
    pub fn numel(&self) -> usize {
        self.numel
    }

    /// Group of the element at row-major flat index `i`.
    pub fn group_of(&self, i: usize) -> usize {
        match &self.kind {
            LayoutKind::Blocks { len, .. } => i / len,
            LayoutKind::Channel { channels, inner } => (i / inner) % channels,
        }
    }

    /// Length of every run (runs all have the same length).
    pub fn run_len(&self) -> usize {
        match &self.kind {
            LayoutKind::Blocks { len, .. } => *len,
            LayoutKind::Channel { inner, .. } => *inner,
        }
    }

    /// `Some(channels)` when the groups are the channels of the last axis (per-channel on the
    /// last axis): then every row of `channels` elements visits groups `0..channels` in order.
    pub fn channels_last(&self) -> Option<usize> {
        match &self.kind {
            LayoutKind::Channel { channels, inner: 1 } => Some(*channels),
            _ => None,
        }
    }

    /// The runs `(start, len, group)` in increasing `start` order.
    pub fn runs(&self) -> impl Iterator<Item = (usize, usize, usize)> + '_ {
        let len = self.run_len();
        (0..self.numel / len).map(move |r| (r * len, len, self.group_of(r * len)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts() {
        let l = GroupLayout::new("t", &[4, 6], Granularity::PerChannel { axis: 0 }).unwrap();
        assert_eq!((l.groups(), l.run_len(), l.scale_shape()), (4, 6, vec![4]));
        let l = GroupLayout::new("t", &[2, 3, 4], Granularity::PerChannel { axis: 1 }).unwrap();
        assert_eq!(l.groups(), 3);
        assert_eq!(l.runs().map(|r| r.2).collect::<Vec<_>>(), [0, 1, 2, 0, 1, 2]);
        let l = GroupLayout::new("t", &[2, 3, 4], Granularity::PerChannel { axis: 2 }).unwrap();
        assert_eq!((l.groups(), l.run_len(), l.group_of(7)), (4, 1, 3));
        let l = GroupLayout::new("t", &[3, 64], Granularity::PerGroup { size: 32 }).unwrap();
        assert_eq!((l.groups(), l.scale_shape()), (6, vec![3, 2]));
        let l = GroupLayout::new("t", &[5, 7], Granularity::PerToken).unwrap();
        assert_eq!((l.groups(), l.scale_shape()), (5, vec![5]));
        let l = GroupLayout::new("t", &[5, 7], Granularity::PerTensor).unwrap();
        assert_eq!((l.groups(), l.scale_shape()), (1, vec![1]));
    }

    #[test]
    fn layout_errors() {
        assert!(matches!(
            GroupLayout::new("w", &[3, 0], Granularity::PerTensor),
            Err(QuantError::Empty { .. })
        ));
        assert!(matches!(
            GroupLayout::new("w", &[3, 10], Granularity::PerGroup { size: 4 }),
            Err(QuantError::BadGroup { len: 10, group: 4, .. })
        ));
        assert!(matches!(
            GroupLayout::new("w", &[3, 10], Granularity::PerChannel { axis: 2 }),
            Err(QuantError::AxisOutOfRange { axis: 2, rank: 2, .. })
        ));
    }
}
