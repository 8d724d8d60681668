//! GGUF v2/v3 reader and writer.
//!
//! Layout (little-endian): magic `GGUF`, `u32` version, `u64` tensor count, `u64` metadata count,
//! typed key/value pairs, tensor infos (`name`, `n_dims ≤ 4`, `ne[..]` innermost first, `ggml_type`,
//! `offset`), zero padding to `general.alignment` (default 32), tensor data. Every count, length,
//! dimension and offset is checked against the file size before use; nothing is allocated from an
//! unchecked count.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::dequant::GgmlType;
use crate::error::{Error, Result};
use crate::mmap::Bytes;

/// Default data alignment when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u64 = 32;
const MAX_DIMS: usize = 4;
const MAX_STRING: u64 = 1 << 30;

/// A metadata value.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum GgufValue {
    /// `UINT8`
    U8(u8),
    /// `INT8`
    I8(i8),
    /// `UINT16`
    U16(u16),
    /// `INT16`
    I16(i16),
    /// `UINT32`
    U32(u32),
    /// `INT32`
    I32(i32),
    /// `FLOAT32`
    F32(f32),
    /// `BOOL`
    Bool(bool),
    /// `STRING` (UTF-8)
    String(String),
    /// `ARRAY` (homogeneous; nested arrays allowed)
    Array(Vec<GgufValue>),
    /// `UINT64`
    U64(u64),
    /// `INT64`
    I64(i64),
    /// `FLOAT64`
    F64(f64),
}

impl GgufValue {
    fn type_id(&self) -> u32 {
        match self {
            GgufValue::U8(_) => 0,
            GgufValue::I8(_) => 1,
            GgufValue::U16(_) => 2,
            GgufValue::I16(_) => 3,
            GgufValue::U32(_) => 4,
            GgufValue::I32(_) => 5,
            GgufValue::F32(_) => 6,
            GgufValue::Bool(_) => 7,
            GgufValue::String(_) => 8,
            GgufValue::Array(_) => 9,
            GgufValue::U64(_) => 10,
            GgufValue::I64(_) => 11,
            GgufValue::F64(_) => 12,
        }
    }

    /// The value as an unsigned integer, if it is a non-negative integer of any width.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            GgufValue::U8(v) => Some(v.into()),
            GgufValue::U16(v) => Some(v.into()),
            GgufValue::U32(v) => Some(v.into()),
            GgufValue::U64(v) => Some(v),
            GgufValue::I8(v) => u64::try_from(v).ok(),
            GgufValue::I16(v) => u64::try_from(v).ok(),
            GgufValue::I32(v) => u64::try_from(v).ok(),
            GgufValue::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// The value as a float, if it is any numeric type.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            GgufValue::F32(v) => Some(v.into()),
            GgufValue::F64(v) => Some(v),
            GgufValue::I8(v) => Some(v.into()),
            GgufValue::I16(v) => Some(v.into()),
            GgufValue::I32(v) => Some(v.into()),
            GgufValue::I64(v) => Some(v as f64),
            _ => self.as_u64().map(|v| v as f64),
        }
    }

    /// The string, if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            GgufValue::String(s) => Some(s),
            _ => None,
        }
    }

    /// The boolean, if this is a bool.
    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            GgufValue::Bool(b) => Some(b),
            _ => None,
        }
    }

    /// The elements, if this is an array.
    pub fn as_array(&self) -> Option<&[GgufValue]> {
        match self {
            GgufValue::Array(a) => Some(a),
            _ => None,
        }
    }
}

/// Where one tensor lives in a GGUF file.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorInfo {
    /// Tensor name, e.g. `blk.0.attn_q.weight`.
    pub name: String,
    /// Dimensions in GGUF order: `dims[0]` is the innermost (contiguous) one. A linear weight
    /// `[in, out]` here is the row-major `[out, in]` matrix of Hugging Face.
    pub dims: Vec<u64>,
    /// Storage type.
    pub ty: GgmlType,
    /// Offset relative to the start of the data section.
    pub offset: u64,
    /// Size in bytes (validated against the file).
    pub n_bytes: u64,
}

impl TensorInfo {
    /// Number of elements.
    pub fn n_elements(&self) -> u64 {
        self.dims.iter().product()
    }

    /// The shape in row-major order (outermost first), as Hugging Face and ndarray write it.
    pub fn shape(&self) -> Vec<usize> {
        self.dims.iter().rev().map(|&d| d as usize).collect()
    }
}

/// How much of a GGUF file's tensor data is present.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum GgufContents {
    /// Every listed tensor's data lies inside the file.
    Complete,
    /// The file ends early (e.g. the first part of a split upload): metadata and the tensor list
    /// are whole, but only `tensors_with_data` of the listed tensors have their bytes. Opened with
    /// [`GgufFile::open_metadata_only`]; reading an absent tensor is
    /// [`Error::TensorDataAbsent`].
    MetadataOnly {
        /// Listed tensors whose data lies wholly inside the file.
        tensors_with_data: usize,
        /// Bytes the complete file would have (end of the last tensor's data).
        full_len: u64,
    },
}

/// A parsed GGUF file. The tensor data stays memory-mapped; nothing is copied until asked for.
#[derive(Debug)]
pub struct GgufFile {
    path: PathBuf,
    contents: GgufContents,
    bytes: Bytes,
    version: u32,
    metadata: BTreeMap<String, GgufValue>,
    metadata_order: Vec<String>,
    tensors: Vec<TensorInfo>,
    by_name: BTreeMap<String, usize>,
    data_start: u64,
    alignment: u64,
}

struct Cursor<'a> {
    path: &'a Path,
    buf: &'a [u8],
    pos: usize,
    /// Bytes the parsed metadata may still take in memory (see [`metadata_budget`]).
    budget: u64,
}

/// How much memory the parsed metadata of a file of `file_len` bytes may take: 4× the file plus
/// 64 MiB. Each array element costs a [`GgufValue`] (32 bytes) however small it is on disk (a
/// `u8` costs 1), so a hostile array of `u8` as long as the file would need 32× its size; it is
/// refused before anything is allocated. Real files are dominated by tensor data and use a few
/// percent of this.
fn metadata_budget(file_len: u64) -> u64 {
    file_len.saturating_mul(4).saturating_add(64 << 20)
}

impl<'a> Cursor<'a> {
    fn err(&self, reason: impl Into<String>) -> Error {
        Error::Malformed {
            path: self.path.to_path_buf(),
            offset: self.pos as u64,
            reason: reason.into(),
        }
    }

    /// Reserves `bytes` of the metadata's memory budget, or fails naming `what`.
    fn charge(&mut self, bytes: u64, what: &str) -> Result<()> {
        if bytes > self.budget {
            return Err(self.err(format!(
                "{what}: the metadata would need more than {} bytes of memory for a file of {} \
                 bytes (a count or length out of proportion to the file)",
                metadata_budget(self.buf.len() as u64),
                self.buf.len()
            )));
        }
        self.budget -= bytes;
        Ok(())
    }

    fn take(&mut self, n: u64, what: &str) -> Result<&'a [u8]> {
        let remaining = (self.buf.len() - self.pos) as u64;
        if n > remaining {
            return Err(self.err(format!(
                "{what} needs {n} bytes but only {remaining} remain (truncated file?)"
            )));
        }
        let n = n as usize;
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N]> {
        let s = self.take(N as u64, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn u32(&mut self, what: &str) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    fn u64(&mut self, what: &str) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    fn string(&mut self, what: &str) -> Result<String> {
        let len = self.u64(what)?;
        if len > MAX_STRING {
            return Err(self.err(format!("{what}: string length {len} is absurd")));
        }
        self.charge(len, what)?;
        let bytes = self.take(len, what)?;
        String::from_utf8(bytes.to_vec())
            .map_err(|_| self.err(format!("{what}: string is not UTF-8")))
    }

    fn remaining(&self) -> u64 {
        (self.buf.len() - self.pos) as u64
    }

    fn value(&mut self, ty: u32, key: &str, depth: u32) -> Result<GgufValue> {
        Ok(match ty {
            0 => GgufValue::U8(self.array::<1>(key)?[0]),
            1 => GgufValue::I8(i8::from_le_bytes(self.array(key)?)),
            2 => GgufValue::U16(u16::from_le_bytes(self.array(key)?)),
            3 => GgufValue::I16(i16::from_le_bytes(self.array(key)?)),
            4 => GgufValue::U32(self.u32(key)?),
            5 => GgufValue::I32(i32::from_le_bytes(self.array(key)?)),
            6 => GgufValue::F32(f32::from_le_bytes(self.array(key)?)),
            7 => match self.array::<1>(key)?[0] {
                0 => GgufValue::Bool(false),
                1 => GgufValue::Bool(true),
                b => return Err(self.err(format!("{key}: bool byte {b} is neither 0 nor 1"))),
            },
            8 => GgufValue::String(self.string(key)?),
            9 => {
                if depth > 8 {
                    return Err(self.err(format!("{key}: arrays nested too deeply")));
                }
                let elem = self.u32(key)?;
                let count = self.u64(key)?;
                let min_size: u64 = match elem {
                    0 | 1 | 7 => 1,
                    2 | 3 => 2,
                    4..=6 => 4,
                    8 | 10..=12 => 8,
                    9 => 12,
                    t => return Err(self.err(format!("{key}: unknown array element type {t}"))),
                };
                if count.saturating_mul(min_size) > self.remaining() {
                    return Err(self.err(format!(
                        "{key}: array of {count} elements cannot fit in the {} bytes left",
                        self.remaining()
                    )));
                }
                let slot = std::mem::size_of::<GgufValue>() as u64;
                self.charge(count.saturating_mul(slot), key)?;
                let mut v = Vec::with_capacity(count as usize);
                for _ in 0..count {
                    v.push(self.value(elem, key, depth + 1)?);
                }
                GgufValue::Array(v)
            }
            10 => GgufValue::U64(self.u64(key)?),
            11 => GgufValue::I64(i64::from_le_bytes(self.array(key)?)),
            12 => GgufValue::F64(f64::from_le_bytes(self.array(key)?)),
            t => return Err(self.err(format!("{key}: unknown metadata value type {t}"))),
        })
    }
}

impl GgufFile {
    /// Memory-maps and parses `path`.
    ///
    /// The file must not be modified while the returned value is alive (it is mapped, not copied).
    ///
    /// # Errors
    /// [`Error::Io`] when the file cannot be read; [`Error::BadMagic`],
    /// [`Error::UnsupportedVersion`], [`Error::Malformed`] or [`Error::BadTensor`] when it is not a
    /// well-formed GGUF file.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = Bytes::map(path)?;
        Self::parse(path.to_path_buf(), bytes, false)
    }

    /// Opens a GGUF file that may end before its tensor data does (a header-only download, the
    /// first part of a split file): metadata and tensor infos are parsed and checked as by
    /// [`GgufFile::open`] (types, dimensions, alignment, overflow), but tensors may lie past the
    /// end. [`GgufFile::contents`] says which case it is; [`GgufFile::tensor_bytes`] of an absent
    /// tensor is [`Error::TensorDataAbsent`].
    ///
    /// # Errors
    /// As [`GgufFile::open`], except for tensor data past the end of the file.
    pub fn open_metadata_only(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = Bytes::map(path)?;
        Self::parse(path.to_path_buf(), bytes, true)
    }

    /// Whether all tensor data is present (see [`GgufContents`]).
    pub fn contents(&self) -> GgufContents {
        self.contents
    }

    /// Whether the named tensor's data lies inside the file (false when there is no such tensor).
    pub fn has_data(&self, name: &str) -> bool {
        self.tensor(name)
            .is_some_and(|t| self.data_start + t.offset + t.n_bytes <= self.bytes.len() as u64)
    }

    /// Parses a GGUF file held in memory; `name` is used in error messages.
    ///
    /// # Errors
    /// As [`GgufFile::open`], without the I/O errors.
    pub fn from_bytes(name: impl Into<PathBuf>, bytes: Vec<u8>) -> Result<Self> {
        Self::parse(name.into(), Bytes::Owned(bytes), false)
    }

    /// As [`GgufFile::from_bytes`] with [`GgufFile::open_metadata_only`]'s rules.
    ///
    /// # Errors
    /// As [`GgufFile::open_metadata_only`].
    pub fn from_bytes_metadata_only(name: impl Into<PathBuf>, bytes: Vec<u8>) -> Result<Self> {
        Self::parse(name.into(), Bytes::Owned(bytes), true)
    }

    fn parse(path: PathBuf, bytes: Bytes, metadata_only: bool) -> Result<Self> {
        let budget = metadata_budget(bytes.len() as u64);
        let mut c = Cursor { path: &path, buf: &bytes, pos: 0, budget };
        let magic: [u8; 4] = c.array("magic")?;
        if &magic != b"GGUF" {
            return Err(Error::BadMagic { path: path.clone(), found: magic });
        }
        let version = c.u32("version")?;
        if version != 2 && version != 3 {
            return Err(Error::UnsupportedVersion { path: path.clone(), version });
        }
        let n_tensors = c.u64("tensor count")?;
        let n_kv = c.u64("metadata count")?;
        // Each KV needs at least 8 (key len) + 4 (type) + 1 bytes; each tensor info at least 8+4+8+4+8.
        if n_kv.saturating_mul(13) > c.remaining() || n_tensors.saturating_mul(32) > c.remaining() {
            return Err(c.err(format!(
                "header declares {n_kv} metadata entries and {n_tensors} tensors, more than the file can hold"
            )));
        }
        let mut metadata = BTreeMap::new();
        let mut metadata_order = Vec::with_capacity(n_kv as usize);
        for _ in 0..n_kv {
            let key = c.string("metadata key")?;
            let ty = c.u32(&key)?;
            let v = c.value(ty, &key, 0)?;
            if metadata.insert(key.clone(), v).is_some() {
                return Err(c.err(format!("duplicate metadata key `{key}`")));
            }
            metadata_order.push(key);
        }
        let alignment = match metadata.get("general.alignment") {
            None => DEFAULT_ALIGNMENT,
            Some(GgufValue::U32(a)) if *a > 0 && a.is_power_of_two() => u64::from(*a),
            Some(v) => {
                return Err(
                    c.err(format!("general.alignment must be a power-of-two u32, found {v:?}"))
                );
            }
        };
        let mut infos = Vec::with_capacity(n_tensors as usize);
        for _ in 0..n_tensors {
            let name = c.string("tensor name")?;
            let n_dims = c.u32(&name)? as usize;
            if n_dims == 0 || n_dims > MAX_DIMS {
                return Err(Error::BadTensor {
                    path: path.clone(),
                    tensor: name,
                    reason: format!("{n_dims} dimensions (1..={MAX_DIMS} allowed)"),
                });
            }
            let mut dims = Vec::with_capacity(n_dims);
            for _ in 0..n_dims {
                dims.push(c.u64(&name)?);
            }
            let ty_id = c.u32(&name)?;
            let offset = c.u64(&name)?;
            infos.push((name, dims, ty_id, offset));
        }
        let end_of_infos = c.pos as u64;
        let data_start =
            if n_tensors > 0 { align_up(end_of_infos, alignment) } else { end_of_infos };
        let file_len = bytes.len() as u64;
        if data_start > file_len && !metadata_only {
            return Err(Error::Malformed {
                path: path.clone(),
                offset: end_of_infos,
                reason: "file ends before its tensor data section".into(),
            });
        }
        let mut tensors = Vec::with_capacity(infos.len());
        let mut by_name = BTreeMap::new();
        let (mut full_len, mut present) = (data_start, 0usize);
        for (name, dims, ty_id, offset) in infos {
            let bad = |reason: String| Error::BadTensor {
                path: path.clone(),
                tensor: name.clone(),
                reason,
            };
            let ty = GgmlType::from_id(ty_id)
                .ok_or_else(|| bad(format!("unknown or unsupported ggml type id {ty_id}")))?;
            let mut n: u64 = 1;
            for &d in &dims {
                n = n
                    .checked_mul(d)
                    .ok_or_else(|| bad(format!("element count of {dims:?} overflows")))?;
            }
            if n > (1 << 40) {
                return Err(bad(format!("{n} elements is absurd")));
            }
            let (blk, bsz) = ty.block();
            if dims[0] % blk != 0 {
                return Err(bad(format!(
                    "ne[0] = {} is not a multiple of the {ty:?} block size {blk}",
                    dims[0]
                )));
            }
            let n_bytes = n / blk * bsz;
            if offset % alignment != 0 {
                return Err(bad(format!("offset {offset} is not aligned to {alignment}")));
            }
            let end = data_start
                .checked_add(offset)
                .and_then(|s| s.checked_add(n_bytes))
                .ok_or_else(|| bad(format!("offset {offset} + size {n_bytes} overflows")))?;
            if end > file_len && !metadata_only {
                return Err(bad(format!(
                    "data [{}, {end}) lies past the end of the file ({file_len} bytes; \
                     GgufFile::open_metadata_only reads such a file's metadata)",
                    data_start + offset
                )));
            }
            full_len = full_len.max(end);
            present += usize::from(end <= file_len);
            if by_name.insert(name.clone(), tensors.len()).is_some() {
                return Err(bad("duplicate tensor name".into()));
            }
            tensors.push(TensorInfo { name, dims, ty, offset, n_bytes });
        }
        let contents = if full_len > file_len {
            GgufContents::MetadataOnly { tensors_with_data: present, full_len }
        } else {
            GgufContents::Complete
        };
        Ok(GgufFile {
            path,
            contents,
            bytes,
            version,
            metadata,
            metadata_order,
            tensors,
            by_name,
            data_start,
            alignment,
        })
    }

    /// The path (or name) the file was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The format version (2 or 3).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// Byte offset where tensor data starts.
    pub fn data_start(&self) -> u64 {
        self.data_start
    }

    /// The data alignment in bytes.
    pub fn alignment(&self) -> u64 {
        self.alignment
    }

    /// All metadata, sorted by key.
    pub fn metadata(&self) -> &BTreeMap<String, GgufValue> {
        &self.metadata
    }

    /// Metadata keys in file order.
    pub fn metadata_keys(&self) -> &[String] {
        &self.metadata_order
    }

    /// One metadata value.
    pub fn get(&self, key: &str) -> Option<&GgufValue> {
        self.metadata.get(key)
    }

    /// All tensor infos in file order.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    /// One tensor's info.
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.by_name.get(name).map(|&i| &self.tensors[i])
    }

    /// The raw bytes of a tensor (bounds were checked when the file was parsed).
    ///
    /// # Errors
    /// [`Error::MissingTensor`] when there is no tensor of that name.
    pub fn tensor_bytes(&self, name: &str) -> Result<&[u8]> {
        let info = self.tensor(name).ok_or_else(|| Error::MissingTensor {
            tensor: name.to_string(),
            source_name: self.path.display().to_string(),
        })?;
        if !self.has_data(name) {
            return Err(Error::TensorDataAbsent {
                path: self.path.clone(),
                tensor: name.to_string(),
                end: self.data_start + info.offset + info.n_bytes,
                file_len: self.bytes.len() as u64,
            });
        }
        let start = (self.data_start + info.offset) as usize;
        Ok(&self.bytes[start..start + info.n_bytes as usize])
    }

    /// Dequantizes a tensor to f32, row-major (`shape()` order).
    ///
    /// # Errors
    /// [`Error::MissingTensor`], or [`Error::UnsupportedTensorType`] for block types without a
    /// dequantizer.
    pub fn dequantize(&self, name: &str) -> Result<Vec<f32>> {
        let bytes = self.tensor_bytes(name)?;
        let info = self.tensor(name).ok_or_else(|| Error::MissingTensor {
            tensor: name.to_string(),
            source_name: self.path.display().to_string(),
        })?;
        let mut out = vec![0f32; info.n_elements() as usize];
        crate::dequant::dequantize_into(info.ty, bytes, &mut out, name)?;
        Ok(out)
    }

    /// The architecture named in `general.architecture`.
    ///
    /// # Errors
    /// [`Error::Config`] when the key is absent or not a string.
    pub fn architecture(&self) -> Result<&str> {
        self.get_str("general.architecture")
    }

    /// A required string value.
    ///
    /// # Errors
    /// [`Error::Config`] when absent or not a string.
    pub fn get_str(&self, key: &str) -> Result<&str> {
        self.get(key)
            .ok_or_else(|| self.missing(key))?
            .as_str()
            .ok_or_else(|| Error::config(self.path.display().to_string(), key, "is not a string"))
    }

    /// A required non-negative integer value (any integer width accepted).
    ///
    /// # Errors
    /// [`Error::Config`] when absent or not a non-negative integer.
    pub fn get_u64(&self, key: &str) -> Result<u64> {
        self.get(key).ok_or_else(|| self.missing(key))?.as_u64().ok_or_else(|| {
            Error::config(self.path.display().to_string(), key, "is not a non-negative integer")
        })
    }

    /// A required numeric value as f64.
    ///
    /// # Errors
    /// [`Error::Config`] when absent or not numeric.
    pub fn get_f64(&self, key: &str) -> Result<f64> {
        self.get(key)
            .ok_or_else(|| self.missing(key))?
            .as_f64()
            .ok_or_else(|| Error::config(self.path.display().to_string(), key, "is not a number"))
    }

    fn missing(&self, key: &str) -> Error {
        Error::config(self.path.display().to_string(), key, "missing")
    }
}

/// `o` rounded up to a multiple of `align`.
pub(crate) fn align_up(o: u64, align: u64) -> u64 {
    o + (align - o % align) % align
}

/// Writes GGUF v3 files: metadata in insertion order, tensors packed and aligned.
///
/// ```
/// use eai_model::{GgufFile, GgufValue, GgufWriter, GgmlType};
/// let mut w = GgufWriter::new();
/// w.metadata("general.architecture", GgufValue::String("llama".into()));
/// w.tensor("t", &[2, 3], GgmlType::F32, [0f32, 1., 2., 3., 4., 5.].iter().flat_map(|x| x.to_le_bytes()).collect())?;
/// let f = GgufFile::from_bytes("mem.gguf", w.to_bytes())?;
/// assert_eq!(f.tensor("t").unwrap().shape(), vec![3, 2]);
/// assert_eq!(f.dequantize("t")?[5], 5.0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Default)]
pub struct GgufWriter {
    metadata: Vec<(String, GgufValue)>,
    tensors: Vec<(String, Vec<u64>, GgmlType, Vec<u8>)>,
}

impl GgufWriter {
    /// An empty file.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a metadata entry.
    pub fn metadata(&mut self, key: impl Into<String>, value: GgufValue) -> &mut Self {
        let key = key.into();
        if let Some(slot) = self.metadata.iter_mut().find(|(k, _)| *k == key) {
            slot.1 = value;
        } else {
            self.metadata.push((key, value));
        }
        self
    }

    /// Adds a tensor; `dims` in GGUF order (innermost first), `data` already encoded as `ty`.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] when `data` does not have the size `dims` and `ty` imply.
    pub fn tensor(
        &mut self,
        name: impl Into<String>,
        dims: &[u64],
        ty: GgmlType,
        data: Vec<u8>,
    ) -> Result<&mut Self> {
        let name = name.into();
        let n: u64 = dims.iter().product();
        let (blk, bsz) = ty.block();
        if dims.is_empty() || !dims[0].is_multiple_of(blk) || n / blk * bsz != data.len() as u64 {
            return Err(Error::invalid(format!(
                "tensor `{name}`: {} bytes do not match dims {dims:?} of type {ty:?}",
                data.len()
            )));
        }
        self.tensors.push((name, dims.to_vec(), ty, data));
        Ok(self)
    }

    /// Serialises the file.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(b"GGUF");
        out.extend_from_slice(&3u32.to_le_bytes());
        out.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        out.extend_from_slice(&(self.metadata.len() as u64).to_le_bytes());
        let align = self
            .metadata
            .iter()
            .find(|(k, _)| k == "general.alignment")
            .and_then(|(_, v)| v.as_u64())
            .unwrap_or(DEFAULT_ALIGNMENT);
        for (k, v) in &self.metadata {
            write_str(&mut out, k);
            out.extend_from_slice(&v.type_id().to_le_bytes());
            write_value(&mut out, v);
        }
        let mut offset = 0u64;
        let mut offsets = Vec::with_capacity(self.tensors.len());
        for (name, dims, ty, data) in &self.tensors {
            write_str(&mut out, name);
            out.extend_from_slice(&(dims.len() as u32).to_le_bytes());
            for d in dims {
                out.extend_from_slice(&d.to_le_bytes());
            }
            out.extend_from_slice(&ty.id().to_le_bytes());
            out.extend_from_slice(&offset.to_le_bytes());
            offsets.push(offset);
            offset = align_up(offset + data.len() as u64, align);
        }
        if !self.tensors.is_empty() {
            let start = align_up(out.len() as u64, align) as usize;
            out.resize(start, 0);
            for ((_, _, _, data), off) in self.tensors.iter().zip(offsets) {
                out.resize(start + off as usize, 0);
                out.extend_from_slice(data);
            }
        }
        out
    }

    /// Writes the file to `path`.
    ///
    /// # Errors
    /// [`Error::Io`] when writing fails.
    pub fn write(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        std::fs::write(path, self.to_bytes()).map_err(|e| Error::io(path, e))
    }
}

fn write_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn write_value(out: &mut Vec<u8>, v: &GgufValue) {
    match v {
        GgufValue::U8(x) => out.push(*x),
        GgufValue::I8(x) => out.extend_from_slice(&x.to_le_bytes()),
        GgufValue::U16(x) => out.extend_from_slice(&x.to_le_bytes()),
        GgufValue::I16(x) => out.extend_from_slice(&x.to_le_bytes()),
        GgufValue::U32(x) => out.extend_from_slice(&x.to_le_bytes()),
        GgufValue::I32(x) => out.extend_from_slice(&x.to_le_bytes()),
        GgufValue::F32(x) => out.extend_from_slice(&x.to_le_bytes()),
        GgufValue::Bool(b) => out.push(u8::from(*b)),
        GgufValue::String(s) => write_str(out, s),
        GgufValue::Array(a) => {
            let elem = a.first().map_or(4, GgufValue::type_id);
            out.extend_from_slice(&elem.to_le_bytes());
            out.extend_from_slice(&(a.len() as u64).to_le_bytes());
            for x in a {
                write_value(out, x);
            }
        }
        GgufValue::U64(x) => out.extend_from_slice(&x.to_le_bytes()),
        GgufValue::I64(x) => out.extend_from_slice(&x.to_le_bytes()),
        GgufValue::F64(x) => out.extend_from_slice(&x.to_le_bytes()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn sample() -> GgufWriter {
        let mut w = GgufWriter::new();
        w.metadata("general.architecture", GgufValue::String("llama".into()));
        w.metadata("a.list", GgufValue::Array(vec![GgufValue::I32(-1), GgufValue::I32(7)]));
        w.metadata("a.flag", GgufValue::Bool(true));
        w.tensor("x", &[32, 2], GgmlType::F32, vec![0u8; 256]).unwrap();
        w.tensor("y", &[3], GgmlType::F16, vec![0u8; 6]).unwrap();
        w
    }

    #[test]
    fn round_trip() {
        let f = GgufFile::from_bytes("m", sample().to_bytes()).unwrap();
        assert_eq!(f.version(), 3);
        assert_eq!(f.architecture().unwrap(), "llama");
        assert_eq!(f.get("a.flag").unwrap().as_bool(), Some(true));
        assert_eq!(f.get("a.list").unwrap().as_array().unwrap()[1], GgufValue::I32(7));
        assert_eq!(f.tensors().len(), 2);
        assert_eq!(f.tensor("y").unwrap().offset, 256);
        assert_eq!(f.data_start() % 32, 0);
        assert_eq!(f.metadata_keys()[0], "general.architecture");
    }

    #[test]
    fn metadata_only_files_list_tensors_without_data() {
        let bytes = sample().to_bytes();
        let f = GgufFile::from_bytes("m", bytes.clone()).unwrap();
        assert_eq!(f.contents(), GgufContents::Complete);
        let y_start = (f.data_start() + f.tensor("y").unwrap().offset) as usize;
        // Cut inside tensor `y`: `x` is whole, `y` is not.
        let cut = bytes[..y_start + 3].to_vec();
        assert!(matches!(GgufFile::from_bytes("m", cut.clone()), Err(Error::BadTensor { .. })));
        let m = GgufFile::from_bytes_metadata_only("m", cut).unwrap();
        assert_eq!(
            m.contents(),
            GgufContents::MetadataOnly { tensors_with_data: 1, full_len: bytes.len() as u64 }
        );
        assert!(m.has_data("x") && !m.has_data("y") && !m.has_data("z"));
        assert_eq!(m.dequantize("x").unwrap().len(), 64);
        assert!(matches!(m.dequantize("y"), Err(Error::TensorDataAbsent { .. })));
        assert_eq!(m.architecture().unwrap(), "llama");
        // Cut before the data section: every tensor listed, none present.
        let head = bytes[..f.data_start() as usize - 1].to_vec();
        let h = GgufFile::from_bytes_metadata_only("m", head).unwrap();
        assert_eq!(h.tensors().len(), 2);
        assert!(matches!(h.contents(), GgufContents::MetadataOnly { tensors_with_data: 0, .. }));
        // A cut inside the metadata or the tensor infos is still an error.
        let infos_end = f.data_start() as usize - 40;
        for cut in [10, 40, infos_end] {
            assert!(
                GgufFile::from_bytes_metadata_only("m", bytes[..cut].to_vec()).is_err(),
                "{cut}"
            );
        }
    }

    #[test]
    fn every_truncation_is_an_error() {
        let bytes = sample().to_bytes();
        for cut in 0..bytes.len() {
            let r = GgufFile::from_bytes("m", bytes[..cut].to_vec());
            assert!(r.is_err(), "truncated at {cut} parsed");
        }
    }

    #[test]
    fn rejects_bad_magic_version_and_offsets() {
        let mut b = sample().to_bytes();
        b[0] = b'X';
        assert!(matches!(GgufFile::from_bytes("m", b), Err(Error::BadMagic { .. })));
        let mut b = sample().to_bytes();
        b[4] = 1;
        assert!(matches!(
            GgufFile::from_bytes("m", b),
            Err(Error::UnsupportedVersion { version: 1, .. })
        ));
        // Absurd tensor count.
        let mut b = sample().to_bytes();
        b[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(GgufFile::from_bytes("m", b), Err(Error::Malformed { .. })));
    }

    #[test]
    fn rejects_unknown_type_and_overflowing_dims() {
        let mut w = GgufWriter::new();
        w.tensor("t", &[32], GgmlType::F32, vec![0u8; 128]).unwrap();
        let good = w.to_bytes();
        // The type id sits 12 bytes before the end of the tensor info (u32 type, u64 offset).
        let info_end = 24 + 8 + 1 + 4 + 8 + 4 + 8;
        let mut b = good.clone();
        b[info_end - 12..info_end - 8].copy_from_slice(&99u32.to_le_bytes());
        assert!(matches!(GgufFile::from_bytes("m", b), Err(Error::BadTensor { .. })));
        let mut b = good.clone();
        b[info_end - 20..info_end - 12].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(GgufFile::from_bytes("m", b), Err(Error::BadTensor { .. })));
        let mut b = good;
        b[info_end - 8..info_end].copy_from_slice(&(1u64 << 40).to_le_bytes());
        assert!(matches!(GgufFile::from_bytes("m", b), Err(Error::BadTensor { .. })));
    }
}
