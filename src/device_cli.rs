//! `--cuda` device sets: one ordinal, a list (data-parallel), `all`; and `eai study` over
//! several sets (`--cuda 0 --cuda 0,1`), one sub-folder each, with `scaling.md`.

use std::path::Path;

use eai_study::devices::{DeviceSet, scaling, scaling_markdown};
use eai_study::{Device, Error, GgufLoader, Result, Scheme, StudyTask};

use crate::cli::StudyArgs;

/// `scaling.md`: the scaling table of a study over several device sets.
pub const SCALING_MD: &str = "scaling.md";
/// `scaling.json`: its rows.
pub const SCALING_JSON: &str = "scaling.json";

/// Parses one `--cuda` value: `N`, `N,M,…` or `all` (every GPU `all` finds).
///
/// # Errors
/// [`Error::Config`] naming `--cuda` for an empty list, a non-number, or `all` without a GPU.
pub fn parse_set(
    spec: &str,
    all: impl FnOnce() -> std::result::Result<Vec<usize>, String>,
) -> Result<Vec<usize>> {
    let bad = |reason: String| Error::Config { field: "--cuda", reason };
    let spec = spec.trim();
    if spec.eq_ignore_ascii_case("all") {
        return all().map_err(|e| bad(format!("`all`: {e}")));
    }
    let set = spec
        .split(',')
        .map(|x| {
            x.trim().parse::<usize>().map_err(|_| {
                bad(format!("`{spec}`: expected a GPU ordinal, a list like 0,1, or `all`"))
            })
        })
        .collect::<Result<Vec<usize>>>()?;
    if set.is_empty() {
        return Err(bad("an empty device list".into()));
    }
    Ok(set)
}

/// Every CUDA ordinal of this process (for `--cuda all`).
fn all_ordinals() -> std::result::Result<Vec<usize>, String> {
    Ok(Device::all_cuda()?
        .into_iter()
        .filter_map(|d| match d {
            Device::Cuda(n) => Some(n),
            _ => None,
        })
        .collect())
}

/// The device sets of `--cuda` values (`all` resolved).
///
/// # Errors
/// As [`parse_set`].
pub fn sets(specs: &[String]) -> Result<Vec<Vec<usize>>> {
    specs.iter().map(|s| parse_set(s, all_ordinals)).collect()
}

/// A set's folder name: `cuda0`, `cuda0-1`.
pub fn set_label(set: &[usize]) -> String {
    let ids: Vec<String> = set.iter().map(ToString::to_string).collect();
    format!("cuda{}", ids.join("-"))
}

/// `--cuda` as saved in `study-args.json`: a list, or (by older eai) one ordinal or null.
pub(crate) fn de_cuda<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Vec<String>, D::Error> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Saved {
        List(Vec<String>),
        One(usize),
        Null,
    }
    Ok(match <Saved as serde::Deserialize>::deserialize(d)? {
        Saved::List(v) => v,
        Saved::One(n) => vec![n.to_string()],
        Saved::Null => Vec::new(),
    })
}

/// `eai study --cuda A --cuda B …`: the same study on each device set, in `<out>/<set>/`
/// (each resumable on its own), then `scaling.md`/`scaling.json` in `<out>`.
pub(crate) fn study_sets(
    a: &StudyArgs,
    resuming: bool,
    schemes: &[Scheme],
    tasks: &[StudyTask],
    model: &Path,
) -> Result<()> {
    use eai_study::files::STUDY_ARGS_JSON;
    let sets = sets(&a.device.cuda)?;
    for (i, set) in sets.iter().enumerate() {
        if sets[..i].contains(set) {
            return Err(Error::Config {
                field: "--cuda",
                reason: format!("the device set {} is listed twice", set_label(set)),
            });
        }
    }
    std::fs::create_dir_all(&a.out).map_err(|e| Error::io(&a.out, e))?;
    if !resuming {
        let o =
            eai_study::outputs::OutputFile::reserve("--out", &a.out.join(STUDY_ARGS_JSON), &[])?;
        let text =
            serde_json::to_string_pretty(a).map_err(|e| Error::format("study arguments", e))?;
        std::fs::write(o.tmp(), text).map_err(|e| Error::io(o.tmp(), e))?;
        o.commit()?;
    }
    let mut done = Vec::with_capacity(sets.len());
    for (i, set) in sets.iter().enumerate() {
        let label = set_label(set);
        let mut sub = a.clone();
        sub.out = a.out.join(&label);
        sub.device.cuda = vec![set.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")];
        sub.resume = None;
        let sub_resuming = crate::cli::saved_args_or_journal(&sub.out);
        if sub_resuming && !resuming {
            return Err(Error::Config {
                field: "--out",
                reason: format!("{} already holds a study", sub.out.display()),
            });
        }
        eprintln!("eai: device set {} of {}: {label}", i + 1, sets.len());
        let loader = if a.model.model.starts_with("synthetic:") {
            GgufLoader::synthetic(model)
        } else {
            GgufLoader::new(model)
        };
        let loader = sub.device.apply(loader)?;
        let r =
            crate::cli::run_study(&sub, schemes.to_vec(), tasks.to_vec(), loader, sub_resuming)?;
        done.push((label, set.len(), r));
    }
    let views: Vec<DeviceSet<'_>> =
        done.iter().map(|(label, n, r)| DeviceSet { label, devices: *n, results: r }).collect();
    let rows = scaling(&views);
    let md = scaling_markdown(&rows);
    let write = |name: &str, text: String| -> Result<()> {
        let o = eai_study::outputs::OutputFile::reserve("--out", &a.out.join(name), &[])?;
        std::fs::write(o.tmp(), text).map_err(|e| Error::io(o.tmp(), e))?;
        o.commit()
    };
    write(SCALING_MD, md.clone())?;
    let json = serde_json::to_string_pretty(&rows).map_err(|e| Error::format("scaling rows", e))?;
    write(SCALING_JSON, json)?;
    if !a.json {
        println!("\n{md}\nscaling: {}", a.out.join(SCALING_MD).display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuda_specs_parse() {
        let none = || Err::<Vec<usize>, _>("no GPU".to_string());
        assert_eq!(parse_set("1", none).unwrap(), vec![1]);
        assert_eq!(parse_set(" 0, 1 ,3", none).unwrap(), vec![0, 1, 3]);
        assert_eq!(parse_set("ALL", || Ok(vec![0, 1])).unwrap(), vec![0, 1]);
        let e = parse_set("all", none).unwrap_err().to_string();
        assert!(e.contains("--cuda") && e.contains("no GPU"), "{e}");
        assert!(parse_set("0,x", none).is_err());
        assert!(parse_set("", none).is_err());
        assert!(parse_set("0,", none).is_err());
        assert_eq!(set_label(&[0, 1]), "cuda0-1");
        assert_eq!(set_label(&[2]), "cuda2");
        // Saved arguments of older eai (one ordinal, null) and of this one (a list).
        #[derive(serde::Deserialize)]
        struct S {
            #[serde(default, deserialize_with = "de_cuda")]
            cuda: Vec<String>,
        }
        let p = |j: &str| serde_json::from_str::<S>(j).unwrap().cuda;
        assert_eq!(p(r#"{"cuda":1}"#), vec!["1"]);
        assert_eq!(p(r#"{"cuda":null}"#), Vec::<String>::new());
        assert_eq!(p(r#"{}"#), Vec::<String>::new());
        assert_eq!(p(r#"{"cuda":["0","0,1"]}"#), vec!["0", "0,1"]);
    }
}
