//! The per-user cache every clone on a machine shares: pinned tools built from source, the
//! models' PyPI wheels and verified model files. Why: installing wasm-bindgen-cli took
//! minutes of compiling per fresh clone, and CI starts from a fresh clone every time.
//!
//! Location: `$OMP_CACHE_DIR`, else `$XDG_CACHE_HOME/omp`, else `~/.cache/omp`. Everything in
//! it is keyed by name and version (tools) or sha256 (models) and written through a temporary
//! name, so an interrupted install or download is never taken for a finished one. Deleting it
//! is always safe: the next command installs again. Compiled dependencies are shared through
//! cargo's `build-dir` instead (see `.cargo/config.toml`).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::util;

/// The cache's root directory (created on first use).
pub fn dir() -> PathBuf {
    let d = if let Some(d) = std::env::var_os("OMP_CACHE_DIR").filter(|d| !d.is_empty()) {
        PathBuf::from(d)
    } else if let Some(x) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        PathBuf::from(x).join("omp")
    } else if let Some(h) = std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        PathBuf::from(h).join(".cache/omp")
    } else {
        // No home (a bare container user): the clone's own `.cache`, as before.
        util::root().join(".cache")
    };
    std::fs::create_dir_all(&d).ok();
    d
}

/// A pinned tool: a crate installed with `cargo install` into its own directory.
pub struct Tool {
    /// The crate (`wasm-bindgen-cli`, `cargo-fuzz`).
    pub krate: &'static str,
    /// The exact version.
    pub version: String,
    /// The binary whose `--version` proves the install complete.
    pub bin: &'static str,
    /// `--locked`: build with the crate's own lockfile (not every crate's lockfile resolves).
    pub locked: bool,
    /// A rustup toolchain to build it with (the default one when `None`).
    pub toolchain: Option<&'static str>,
}

impl Tool {
    /// `<cache>/tools/<crate>-<version>`.
    pub fn root(&self) -> PathBuf {
        dir()
            .join("tools")
            .join(format!("{}-{}", self.krate, self.version))
    }

    /// The directory holding the tool's binaries.
    pub fn bin_dir(&self) -> PathBuf {
        self.root().join("bin")
    }

    /// Path of one of the tool's binaries.
    pub fn path(&self, bin: &str) -> PathBuf {
        self.bin_dir().join(bin)
    }

    /// Installs the tool unless this version is there already. The install goes to a
    /// temporary directory that is renamed into place once `cargo install` succeeded.
    pub fn ensure(&self) -> Result<()> {
        if util::prints(util::s(&self.path(self.bin)), &["--version"], &self.version) {
            return Ok(());
        }
        let root = self.root();
        let tmp = root.with_extension(format!("partial-{}", std::process::id()));
        std::fs::remove_dir_all(&tmp).ok();
        std::fs::create_dir_all(tmp.parent().context("tools directory")?)?;
        let version = format!("={}", self.version);
        let toolchain = self.toolchain.map(|t| format!("+{t}"));
        let mut args: Vec<&str> = toolchain.iter().map(String::as_str).collect();
        args.extend([
            "install",
            "--root",
            util::s(&tmp),
            self.krate,
            "--version",
            &version,
        ]);
        if self.locked {
            args.push("--locked");
        }
        util::run("cargo", &args)?;
        std::fs::remove_dir_all(&root).ok();
        std::fs::rename(&tmp, &root)
            .with_context(|| format!("cannot move {} to {}", tmp.display(), root.display()))?;
        Ok(())
    }
}

/// Puts a copy of `src` at `dest` (a hard link when both are on one file system, so a model
/// costs its disk space once), through a temporary name.
pub fn place(src: &Path, dest: &Path) -> Result<()> {
    let tmp = dest.with_extension("part");
    std::fs::remove_file(&tmp).ok();
    if std::fs::hard_link(src, &tmp).is_err() {
        std::fs::copy(src, &tmp)
            .with_context(|| format!("cannot copy {} to {}", src.display(), tmp.display()))?;
    }
    std::fs::rename(&tmp, dest)?;
    Ok(())
}

/// `cargo xtask cache`: the cache's location and the size of each part.
pub fn show() -> Result<()> {
    let d = dir();
    println!("{}", d.display());
    let mut parts: Vec<PathBuf> = vec![];
    for sub in ["tools", "models", "pip"] {
        let p = d.join(sub);
        if p.is_dir() {
            parts.extend(std::fs::read_dir(&p)?.filter_map(|e| e.ok().map(|e| e.path())));
        }
    }
    parts.sort();
    for p in parts {
        println!("{:>10}  {}", human(size(&p)), p.display());
    }
    if let Some(b) = build_dir() {
        println!("{:>10}  {} (cargo build-dir)", human(size(&b)), b.display());
    }
    Ok(())
}

/// Cargo's shared build directory (`.cargo/config.toml`'s `build-dir`), where it exists.
fn build_dir() -> Option<PathBuf> {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))?;
    Some(home.join("omp-build")).filter(|p| p.is_dir())
}

/// Bytes under `p` (files not followed through symlinks).
fn size(p: &Path) -> u64 {
    let Ok(m) = std::fs::symlink_metadata(p) else {
        return 0;
    };
    if !m.is_dir() {
        return m.len();
    }
    std::fs::read_dir(p)
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| size(&e.path())).sum())
        .unwrap_or(0)
}

fn human(b: u64) -> String {
    match b {
        b if b >= 1 << 30 => format!("{:.1} GiB", b as f64 / f64::from(1u32 << 30)),
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / f64::from(1u32 << 20)),
        b => format!("{:.1} KiB", b as f64 / 1024.0),
    }
}
