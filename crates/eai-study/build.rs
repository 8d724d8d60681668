//! Records the git commit eai was built from (`EAI_GIT_COMMIT`) when built from a checkout, for
//! the study report's environment block. Reads `.git` directly (no `git` program needed) and
//! records nothing, without failing, when there is no checkout (a published crate, a tarball).
//! The checkout is the workspace's, two levels up from this crate (`crates/eai-study`); a copy of
//! the crate anywhere else (registry, vendor folder) records nothing.

use std::fs;
use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let root = Path::new("../..");
    if !root.join("crates/eai-study/build.rs").is_file() {
        return;
    }
    if let Some(commit) = git_commit(&root.join(".git")) {
        println!("cargo:rustc-env=EAI_GIT_COMMIT={commit}");
    }
}

/// The commit `HEAD` points at, following a worktree's `gitdir:` file and packed refs.
fn git_commit(dot_git: &Path) -> Option<String> {
    let gitdir = if dot_git.is_file() {
        let text = fs::read_to_string(dot_git).ok()?;
        let p = PathBuf::from(text.strip_prefix("gitdir:")?.trim());
        if p.is_absolute() { p } else { dot_git.parent()?.join(p) }
    } else if dot_git.is_dir() {
        dot_git.to_path_buf()
    } else {
        return None;
    };
    let common = match fs::read_to_string(gitdir.join("commondir")) {
        Ok(c) => gitdir.join(c.trim()),
        Err(_) => gitdir.clone(),
    };
    let head_file = gitdir.join("HEAD");
    println!("cargo:rerun-if-changed={}", head_file.display());
    let head = fs::read_to_string(&head_file).ok()?;
    let head = head.trim();
    let Some(name) = head.strip_prefix("ref:").map(str::trim) else {
        return valid(head);
    };
    for dir in [&gitdir, &common] {
        let f = dir.join(name);
        if let Ok(c) = fs::read_to_string(&f) {
            println!("cargo:rerun-if-changed={}", f.display());
            return valid(c.trim());
        }
    }
    let packed = common.join("packed-refs");
    println!("cargo:rerun-if-changed={}", packed.display());
    let text = fs::read_to_string(packed).ok()?;
    text.lines()
        .filter_map(|l| l.split_once(' '))
        .find(|(_, r)| *r == name)
        .and_then(|(c, _)| valid(c))
}

fn valid(c: &str) -> Option<String> {
    (c.len() >= 40 && c.chars().all(|x| x.is_ascii_hexdigit())).then(|| c.to_string())
}
