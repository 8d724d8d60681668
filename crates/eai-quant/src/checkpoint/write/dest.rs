//! The destination of a write: refused when it overlaps an input, written through a temporary
//! directory that is removed on every failure (a guard, so a panic cleans up too), then renamed
//! into place.

use std::path::{Component, Path, PathBuf};

use super::config::SIDE_FILES;
use crate::checkpoint::read::Checkpoint;
use crate::error::{QuantError, Result};

/// Every path the write reads: the path the checkpoint was opened from, its shards, its index,
/// `config.json` and the side files that are copied.
fn inputs(src: &Checkpoint) -> Vec<PathBuf> {
    let mut v = vec![src.opened_path().to_path_buf()];
    v.extend(src.shard_paths().iter().map(|p| p.to_path_buf()));
    let root = src.root();
    for name in ["model.safetensors.index.json", "config.json"].iter().chain(SIDE_FILES) {
        let p = root.join(name);
        if p.exists() {
            v.push(p);
        }
    }
    v
}

/// `p` made absolute with symbolic links resolved, also when (its tail) does not exist yet: the
/// longest existing ancestor is canonicalized and the rest appended (`..` folded lexically).
fn resolve(p: &Path) -> Result<PathBuf> {
    let abs = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().map_err(|e| QuantError::io(p, e))?.join(p)
    };
    let mut existing = abs.as_path();
    let mut tail: Vec<Component<'_>> = Vec::new();
    loop {
        match std::fs::canonicalize(existing) {
            Ok(mut base) => {
                for c in tail.iter().rev() {
                    match c {
                        Component::ParentDir => {
                            base.pop();
                        }
                        Component::CurDir => {}
                        c => base.push(c.as_os_str()),
                    }
                }
                return Ok(base);
            }
            Err(e) => {
                let (Some(parent), Some(last)) =
                    (existing.parent(), existing.components().next_back())
                else {
                    return Err(QuantError::io(p, e));
                };
                tail.push(last);
                existing = parent;
            }
        }
    }
}

/// Refuses an output that is, contains or lies inside an input (inputs resolved through
/// symbolic links), and an existing output without `overwrite`. Touches nothing.
pub(super) fn check_destination(src: &Checkpoint, out_dir: &Path, overwrite: bool) -> Result<()> {
    let out = resolve(out_dir)?;
    // The strongest overlap over all inputs: `is`, then `contains`, then `lies inside`.
    let mut worst: Option<(u8, &'static str, PathBuf)> = None;
    for input in inputs(src) {
        let inp = resolve(&input)?;
        let (rank, relation) = if out == inp {
            (0, "is")
        } else if inp.starts_with(&out) {
            (1, "contains")
        } else if out.starts_with(&inp) {
            (2, "lies inside")
        } else {
            continue;
        };
        if worst.as_ref().is_none_or(|w| rank < w.0) {
            worst = Some((rank, relation, input));
        }
    }
    if let Some((_, relation, input)) = worst {
        return Err(QuantError::UnsafeDestination {
            destination: out_dir.to_path_buf(),
            input,
            relation,
        });
    }
    if out_dir.exists() && !overwrite {
        return Err(QuantError::io(
            out_dir,
            std::io::Error::new(std::io::ErrorKind::AlreadyExists, "destination exists"),
        ));
    }
    Ok(())
}

/// A temporary directory removed when dropped (on an error return or a panic), unless it was
/// renamed into place.
#[derive(Debug)]
pub(super) struct TempDir {
    path: PathBuf,
    keep: bool,
}

impl TempDir {
    /// A fresh directory `.{base}.tmp-…` in `parent`.
    pub(super) fn new_in(parent: &Path, base: &str) -> Result<Self> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        for i in 0..100u32 {
            let p = parent.join(format!(".{base}.tmp-{}-{nanos}-{i}", std::process::id()));
            match std::fs::create_dir(&p) {
                Ok(()) => return Ok(TempDir { path: p, keep: false }),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(QuantError::io(&p, e)),
            }
        }
        Err(QuantError::io(
            parent,
            std::io::Error::new(std::io::ErrorKind::AlreadyExists, "no free temporary name"),
        ))
    }

    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// Moves the directory to `dst` (see [`replace_dir`]); the guard then has nothing to remove.
    pub(super) fn persist(mut self, dst: &Path) -> Result<()> {
        replace_dir(&self.path, dst)?;
        self.keep = true;
        Ok(())
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// Move `tmp` to `dst`; an existing `dst` is moved aside first and removed only afterwards.
fn replace_dir(tmp: &Path, dst: &Path) -> Result<()> {
    if dst.exists() {
        let aside = dst.with_file_name(format!(
            ".{}.old-{}",
            dst.file_name().map_or("out".into(), |n| n.to_string_lossy().into_owned()),
            std::process::id()
        ));
        std::fs::rename(dst, &aside).map_err(|e| QuantError::io(dst, e))?;
        if let Err(e) = std::fs::rename(tmp, dst) {
            let _ = std::fs::rename(&aside, dst);
            return Err(QuantError::io(dst, e));
        }
        if aside.is_dir() {
            std::fs::remove_dir_all(&aside).map_err(|e| QuantError::io(&aside, e))?;
        } else {
            std::fs::remove_file(&aside).map_err(|e| QuantError::io(&aside, e))?;
        }
        Ok(())
    } else {
        std::fs::rename(tmp, dst).map_err(|e| QuantError::io(dst, e))
    }
}

/// Gives `files` the permissions of `like` (the safetensors crate writes through a temporary
/// file created 0600; every other output is created with the process's default mode).
pub(super) fn match_permissions(files: &[PathBuf], like: &Path) -> Result<()> {
    let perm = std::fs::metadata(like).map_err(|e| QuantError::io(like, e))?.permissions();
    for f in files {
        std::fs::set_permissions(f, perm.clone()).map_err(|e| QuantError::io(f, e))?;
    }
    Ok(())
}
