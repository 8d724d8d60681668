//! Output paths: checked before any work, never an input, written through a temporary file
//! that is renamed into place (so a reader never sees half a file, and an interrupted run
//! leaves none).
//!
//! Every temporary file is registered while it exists; [`remove_staged`](crate::outputs::remove_staged) deletes the ones
//! left when the program is interrupted (the `eai` binary calls it on SIGINT/SIGTERM/SIGHUP).

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::error::{Error, Result};

static STAGED: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn register(p: &Path) {
    if let Ok(mut v) = STAGED.lock() {
        v.push(p.to_path_buf());
    }
}

fn unregister(p: &Path) {
    if let Ok(mut v) = STAGED.lock() {
        v.retain(|q| q != p);
    }
}

/// Removes every temporary output still on disk (those of outputs neither committed nor
/// dropped: the program is being interrupted). Returns how many were removed.
pub fn remove_staged() -> usize {
    let list = match STAGED.lock() {
        Ok(mut v) => std::mem::take(&mut *v),
        Err(p) => std::mem::take(&mut *p.into_inner()),
    };
    list.iter().filter(|p| std::fs::remove_file(p).is_ok()).count()
}

/// The absolute, symlink-resolved form of `p` as far as it exists (the missing tail is
/// appended as given), so that `a/../b`, `./b` and a link to `b` compare equal.
fn resolve(p: &Path) -> PathBuf {
    let abs = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().map(|d| d.join(p)).unwrap_or_else(|_| p.to_path_buf())
    };
    let mut existing = abs.as_path();
    let mut tail = Vec::new();
    loop {
        if let Ok(c) = existing.canonicalize() {
            let mut out = c;
            for t in tail.iter().rev() {
                out.push(t);
            }
            return out;
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                tail.push(name.to_os_string());
                existing = parent;
            }
            _ => return abs,
        }
    }
}

/// Refuses `output` when it is, contains or lies inside one of `inputs` (named by `flag`
/// and the input's own description).
///
/// # Errors
/// [`Error::Config`] naming the output flag and the input.
pub fn refuse_overlap(flag: &'static str, output: &Path, inputs: &[(&str, &Path)]) -> Result<()> {
    let out = resolve(output);
    for (what, input) in inputs {
        let inp = resolve(input);
        let why = if out == inp {
            "is"
        } else if inp.starts_with(&out) {
            "contains"
        } else if out.starts_with(&inp) {
            "lies inside"
        } else {
            continue;
        };
        return Err(Error::Config {
            field: flag,
            reason: format!(
                "{} {why} the {what} {}: an output never replaces or holds an input",
                output.display(),
                input.display()
            ),
        });
    }
    Ok(())
}

/// Checks a folder output before any work: not an existing file, its parent a folder we can
/// create it in, and no overlap with `inputs` (see [`refuse_overlap`]).
///
/// # Errors
/// [`Error::Config`] naming `flag`.
pub fn check_dir(flag: &'static str, dir: &Path, inputs: &[(&str, &Path)]) -> Result<()> {
    refuse_overlap(flag, dir, inputs)?;
    let bad = |reason: String| Error::Config { field: flag, reason };
    if dir.exists() && !dir.is_dir() {
        return Err(bad(format!("{} exists and is not a folder", dir.display())));
    }
    if !dir.exists() {
        let parent = match dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        if !parent.is_dir() {
            return Err(bad(format!("{} is not a folder", parent.display())));
        }
    }
    // Can we write there? Create (and remove) a probe file: the only honest test.
    let probe_dir = if dir.is_dir() { dir.to_path_buf() } else { parent_of(dir) };
    let probe = probe_dir.join(format!(".eai-probe-{}", std::process::id()));
    std::fs::write(&probe, b"")
        .map_err(|e| bad(format!("cannot write in {}: {e}", probe_dir.display())))?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

fn parent_of(p: &Path) -> PathBuf {
    match p.parent() {
        Some(q) if !q.as_os_str().is_empty() => q.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// A file output reserved before any work: its temporary file beside it already exists (so
/// a path that cannot be written fails first), is renamed over the destination by
/// [`OutputFile::commit`], and is removed if the output is dropped uncommitted.
#[derive(Debug)]
pub struct OutputFile {
    path: PathBuf,
    tmp: PathBuf,
    committed: bool,
}

impl OutputFile {
    /// Reserves `path` (named by `flag` in errors), refusing a folder, a path under a
    /// missing folder, an unwritable place and any overlap with `inputs`.
    ///
    /// # Errors
    /// [`Error::Config`] naming `flag` and why.
    pub fn reserve(flag: &'static str, path: &Path, inputs: &[(&str, &Path)]) -> Result<Self> {
        refuse_overlap(flag, path, inputs)?;
        let bad = |reason: String| Error::Config { field: flag, reason };
        if path.is_dir() {
            return Err(bad(format!("{} is a folder", path.display())));
        }
        let name = path
            .file_name()
            .ok_or_else(|| bad(format!("{} names no file", path.display())))?
            .to_string_lossy()
            .into_owned();
        let tmp = parent_of(path).join(format!(".{name}.eai-tmp-{}", std::process::id()));
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|e| bad(format!("cannot write {}: {e}", path.display())))?;
        register(&tmp);
        Ok(Self { path: path.to_path_buf(), tmp, committed: false })
    }

    /// The destination.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The temporary file to write.
    pub fn tmp(&self) -> &Path {
        &self.tmp
    }

    /// Renames the temporary file over the destination.
    ///
    /// # Errors
    /// [`Error::Io`] naming the destination.
    pub fn commit(mut self) -> Result<()> {
        std::fs::rename(&self.tmp, &self.path).map_err(|e| Error::io(&self.path, e))?;
        unregister(&self.tmp);
        self.committed = true;
        Ok(())
    }
}

impl Drop for OutputFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.tmp);
            unregister(&self.tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlap_is_refused_both_ways() {
        let d = tempfile::tempdir().unwrap();
        let model = d.path().join("m/model.gguf");
        std::fs::create_dir_all(model.parent().unwrap()).unwrap();
        std::fs::write(&model, b"x").unwrap();
        let inputs = [("model", model.as_path())];
        assert!(refuse_overlap("--out", &model, &inputs).unwrap_err().to_string().contains(" is "));
        let e = refuse_overlap("--out", &d.path().join("m"), &inputs).unwrap_err().to_string();
        assert!(e.contains("contains"), "{e}");
        let e = refuse_overlap("--out", &model.join("x"), &inputs).unwrap_err().to_string();
        assert!(e.contains("lies inside"), "{e}");
        // Spelled differently, same file.
        let odd = d.path().join("m/../m/./model.gguf");
        assert!(refuse_overlap("--out", &odd, &inputs).is_err());
        refuse_overlap("--out", &d.path().join("out"), &inputs).unwrap();
    }

    #[test]
    fn a_file_output_is_reserved_then_renamed_or_removed() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("r.json");
        let o = OutputFile::reserve("--json", &p, &[]).unwrap();
        let tmp = o.tmp().to_path_buf();
        assert!(tmp.exists() && !p.exists());
        std::fs::write(&tmp, b"{}").unwrap();
        o.commit().unwrap();
        assert!(p.exists() && !tmp.exists());
        let o = OutputFile::reserve("--json", &p, &[]).unwrap();
        let tmp = o.tmp().to_path_buf();
        drop(o);
        assert!(!tmp.exists());
        assert_eq!(std::fs::read(&p).unwrap(), b"{}");
        let e = OutputFile::reserve("--trace", Path::new("/proc/x.csv"), &[]).unwrap_err();
        assert!(e.to_string().starts_with("invalid --trace: cannot write /proc/x.csv"), "{e}");
        assert!(OutputFile::reserve("--trace", d.path(), &[]).is_err());
    }
}
