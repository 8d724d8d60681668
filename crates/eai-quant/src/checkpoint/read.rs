//! Reading safetensors checkpoints (single file or sharded) through memory maps.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use safetensors::{Dtype, SafeTensors};

use crate::error::{QuantError, Result};

/// The element types this crate converts (others can still be copied byte for byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum FloatDtype {
    /// IEEE binary32.
    F32,
    /// IEEE binary16.
    F16,
    /// bfloat16.
    Bf16,
}

impl FloatDtype {
    fn of(d: Dtype) -> Option<Self> {
        match d {
            Dtype::F32 => Some(FloatDtype::F32),
            Dtype::F16 => Some(FloatDtype::F16),
            Dtype::BF16 => Some(FloatDtype::Bf16),
            _ => None,
        }
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            FloatDtype::F32 => 4,
            _ => 2,
        }
    }

    /// The safetensors dtype.
    pub fn to_safetensors(self) -> Dtype {
        match self {
            FloatDtype::F32 => Dtype::F32,
            FloatDtype::F16 => Dtype::F16,
            FloatDtype::Bf16 => Dtype::BF16,
        }
    }
}

/// Name, dtype, shape and location of one tensor in a checkpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorInfo {
    /// Tensor name.
    pub name: String,
    /// Element type as safetensors names it (`"F32"`, `"BF16"`, `"I64"`...).
    pub dtype: String,
    /// Float type, when it is one this crate converts.
    pub float: Option<FloatDtype>,
    /// Shape.
    pub shape: Vec<usize>,
    /// Bytes of data.
    pub nbytes: usize,
    /// Index of the shard file holding it (into [`Checkpoint::shard_paths`]).
    pub shard: usize,
}

pub(crate) struct Shard {
    pub(crate) path: PathBuf,
    pub(crate) mmap: Mmap,
    /// Offset of the data section (8 + header length).
    pub(crate) data_start: usize,
    pub(crate) metadata: Option<std::collections::HashMap<String, String>>,
}

impl std::fmt::Debug for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shard").field("path", &self.path).field("len", &self.mmap.len()).finish()
    }
}

/// A safetensors checkpoint opened for reading: one file, or a directory holding
/// `model.safetensors` or `model.safetensors.index.json` with its shards. Tensors are read
/// through memory maps, so opening costs nothing proportional to the checkpoint's size.
#[derive(Debug)]
pub struct Checkpoint {
    root: PathBuf,
    /// The path given to [`Checkpoint::open`] (a directory, a `.safetensors` file or an index).
    opened: PathBuf,
    pub(crate) shards: Vec<Shard>,
    pub(crate) tensors: BTreeMap<String, (TensorInfo, (usize, usize))>,
}

impl Checkpoint {
    /// Open a `.safetensors` file, or a directory with `model.safetensors` or
    /// `model.safetensors.index.json`.
    ///
    /// # Errors
    /// [`QuantError::Io`] when files cannot be opened, [`QuantError::Safetensors`] for a truncated or
    /// malformed file, [`QuantError::Json`] for a malformed index, [`QuantError::MissingShard`] for
    /// an index naming a file that does not exist, [`QuantError::MissingTensor`] for an index
    /// naming a tensor its shard does not hold.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let mut ck = Self::open_any(path)?;
        ck.opened = path.to_path_buf();
        Ok(ck)
    }

    fn open_any(path: &Path) -> Result<Self> {
        if path.is_dir() {
            let index = path.join("model.safetensors.index.json");
            if index.is_file() {
                return Self::open_index(path, &index);
            }
            let single = path.join("model.safetensors");
            if single.is_file() {
                return Self::open_files(path, &[single], None);
            }
            return Err(QuantError::io(
                path,
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "neither model.safetensors nor model.safetensors.index.json in this directory",
                ),
            ));
        }
        if path.file_name().is_some_and(|n| n.to_string_lossy().ends_with(".index.json")) {
            let dir = path.parent().unwrap_or(Path::new("."));
            return Self::open_index(dir, path);
        }
        let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        Self::open_files(&dir, &[path.to_path_buf()], None)
    }

    fn open_index(dir: &Path, index: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(index).map_err(|e| QuantError::io(index, e))?;
        let json: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| QuantError::Json { file: index.into(), detail: e.to_string() })?;
        let map = json.get("weight_map").and_then(|m| m.as_object()).ok_or_else(|| {
            QuantError::Json { file: index.into(), detail: "no \"weight_map\" object".into() }
        })?;
        let mut files: Vec<String> = Vec::new();
        let mut want: Vec<(String, String)> = Vec::new();
        for (tensor, file) in map {
            let file = file.as_str().ok_or_else(|| QuantError::Json {
                file: index.into(),
                detail: format!("weight_map[\"{tensor}\"] is not a string"),
            })?;
            if file.contains("..") || Path::new(file).is_absolute() {
                return Err(QuantError::Json {
                    file: index.into(),
                    detail: format!("shard path {file:?} leaves the checkpoint directory"),
                });
            }
            if !files.iter().any(|f| f == file) {
                if !dir.join(file).is_file() {
                    return Err(QuantError::MissingShard {
                        index: index.into(),
                        shard: dir.join(file),
                        tensor: tensor.clone(),
                    });
                }
                files.push(file.to_string());
            }
            want.push((tensor.clone(), file.to_string()));
        }
        files.sort();
        let paths: Vec<PathBuf> = files.iter().map(|f| dir.join(f)).collect();
        let ck = Self::open_files(dir, &paths, Some(index))?;
        for (tensor, file) in want {
            match ck.tensors.get(&tensor) {
                Some((info, _)) if ck.shards[info.shard].path == dir.join(&file) => {}
                _ => {
                    return Err(QuantError::MissingTensor { tensor, checkpoint: dir.join(file) });
                }
            }
        }
        Ok(ck)
    }

    fn open_files(root: &Path, paths: &[PathBuf], _index: Option<&Path>) -> Result<Self> {
        let mut shards = Vec::with_capacity(paths.len());
        let mut tensors = BTreeMap::new();
        for (si, p) in paths.iter().enumerate() {
            let file = File::open(p).map_err(|e| QuantError::io(p, e))?;
            let mmap = super::mmap::map(&file, p)?;
            let (n, meta) = SafeTensors::read_metadata(&mmap)
                .map_err(|e| QuantError::Safetensors { file: p.clone(), source: Box::new(e) })?;
            let data_start = 8 + n;
            for (name, info) in meta.tensors() {
                let (a, b) = info.data_offsets;
                let float = FloatDtype::of(info.dtype);
                let t = TensorInfo {
                    name: name.clone(),
                    dtype: format!("{:?}", info.dtype),
                    float,
                    shape: info.shape.clone(),
                    nbytes: b - a,
                    shard: si,
                };
                if tensors.insert(name.clone(), (t, (data_start + a, data_start + b))).is_some() {
                    return Err(QuantError::Json {
                        file: p.clone(),
                        detail: format!("tensor `{name}` appears in more than one shard"),
                    });
                }
            }
            shards.push(Shard {
                path: p.clone(),
                mmap,
                data_start,
                metadata: meta.metadata().clone(),
            });
        }
        Ok(Checkpoint { root: root.to_path_buf(), opened: root.to_path_buf(), shards, tensors })
    }

    /// The directory the checkpoint lives in (where `config.json` and tokenizer files are).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The path the checkpoint was opened from (a directory, a `.safetensors` file or an index).
    pub fn opened_path(&self) -> &Path {
        &self.opened
    }

    /// The shard files, in order.
    pub fn shard_paths(&self) -> Vec<&Path> {
        self.shards.iter().map(|s| s.path.as_path()).collect()
    }

    /// Whether the checkpoint came from several shard files.
    pub fn is_sharded(&self) -> bool {
        self.shards.len() > 1
    }

    /// All tensors, sorted by name.
    pub fn tensors(&self) -> impl Iterator<Item = &TensorInfo> {
        self.tensors.values().map(|(t, _)| t)
    }

    /// Information about one tensor.
    ///
    /// # Errors
    /// [`QuantError::MissingTensor`] when there is no such tensor.
    pub fn info(&self, name: &str) -> Result<&TensorInfo> {
        self.tensors.get(name).map(|(t, _)| t).ok_or_else(|| QuantError::MissingTensor {
            tensor: name.into(),
            checkpoint: self.root.clone(),
        })
    }

    /// The raw little-endian bytes of a tensor, borrowed from the memory map.
    ///
    /// # Errors
    /// [`QuantError::MissingTensor`] when there is no such tensor.
    pub fn bytes(&self, name: &str) -> Result<&[u8]> {
        let (info, (a, b)) = self.tensors.get(name).ok_or_else(|| QuantError::MissingTensor {
            tensor: name.into(),
            checkpoint: self.root.clone(),
        })?;
        Ok(&self.shards[info.shard].mmap[*a..*b])
    }

    /// A float tensor widened to `f32` (a copy; f16/bf16 are converted exactly).
    ///
    /// # Errors
    /// [`QuantError::MissingTensor`], or [`QuantError::UnsupportedDtype`] for non-float tensors.
    pub fn read_f32(&self, name: &str) -> Result<Vec<f32>> {
        let info = self.info(name)?;
        let float = self.float_of(info)?;
        let bytes = self.bytes(name)?;
        let mut out = vec![0f32; bytes.len() / float.size()];
        widen_bytes(bytes, float, &mut out);
        Ok(out)
    }

    pub(crate) fn float_of(&self, info: &TensorInfo) -> Result<FloatDtype> {
        info.float.ok_or_else(|| QuantError::UnsupportedDtype {
            tensor: info.name.clone(),
            file: self.shards[info.shard].path.clone(),
            dtype: info.dtype.clone(),
        })
    }

    /// Byte range of a tensor within its shard's map.
    pub(crate) fn range(&self, name: &str) -> Option<(usize, (usize, usize))> {
        self.tensors.get(name).map(|(t, r)| (t.shard, *r))
    }

    /// `__metadata__` of the first shard.
    pub fn metadata(&self) -> Option<&std::collections::HashMap<String, String>> {
        self.shards.first().and_then(|s| s.metadata.as_ref())
    }

    /// Tell the OS that the pages of `[a, b)` in shard `shard` are no longer needed, so they
    /// leave this process's resident set (they are re-read from the file if touched again).
    pub(crate) fn release(&self, shard: usize, a: usize, b: usize) {
        if let Some(s) = self.shards.get(shard) {
            super::mmap::release(&s.mmap, a, b);
        }
    }

    #[allow(dead_code)]
    pub(crate) fn data_start(&self, shard: usize) -> usize {
        self.shards.get(shard).map_or(0, |s| s.data_start)
    }
}

/// Convert little-endian bytes of `from` into `f32` (exact widening).
pub(crate) fn widen_bytes(bytes: &[u8], from: FloatDtype, out: &mut [f32]) {
    match from {
        FloatDtype::F32 => {
            for (o, c) in out.iter_mut().zip(bytes.chunks_exact(4)) {
                *o = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            }
        }
        FloatDtype::F16 => {
            for (o, c) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                *o = half::f16::from_le_bytes([c[0], c[1]]).to_f32();
            }
        }
        FloatDtype::Bf16 => {
            for (o, c) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                *o = half::bf16::from_le_bytes([c[0], c[1]]).to_f32();
            }
        }
    }
}
