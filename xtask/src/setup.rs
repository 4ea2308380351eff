//! Installs what the commands need, each step skipped when already done. The pinned tool built
//! from source (wasm-bindgen-cli) goes to the per-user cache ([`crate::cache`]), shared by every clone; the wasm
//! target and the nightly toolchain go to rustup, Chromium to apt (they have no per-project
//! form), and the npm packages to the clone's `node_modules`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::cache::Tool;
use crate::{models, timing::Timer, util};

/// The nightly toolchain of the threaded worker build (`-Z build-std`, since the standard
/// library shipped for wasm32 is built without atomics) and of `cargo xtask fuzz`.
pub const NIGHTLY: &str = "nightly-2026-05-19";

/// Everything: models and the tools of the browser build and tests, each step timed.
pub fn all(root: &Path, t: &mut Timer) -> Result<()> {
    t.step("setup: models", || models::ensure_all(root))?;
    t.step("setup: rustup", || {
        wasm_target()?;
        nightly()
    })?;
    t.step("setup: wasm-bindgen", || wasm_bindgen(root)?.ensure())?;
    t.step("setup: npm", || npm_ci(root))?;
    t.step("setup: chromium", chromium)
}

/// `wasm-bindgen-cli` at the exact version of the `wasm-bindgen` crate in Cargo.lock (the CLI
/// must match the crate). Its `wasm-bindgen-test-runner` runs the wasm tests.
pub fn wasm_bindgen(root: &Path) -> Result<Tool> {
    Ok(Tool {
        krate: "wasm-bindgen-cli",
        version: locked_version(root, "wasm-bindgen")?,
        bin: "wasm-bindgen",
        // The CLI's own lockfile pins a crate version the registry lacks.
        locked: false,
        toolchain: None,
    })
}

/// The project's npm binaries (binaryen's `wasm-opt`, ...).
pub fn node_bin(root: &Path) -> PathBuf {
    root.join("node_modules/.bin")
}

/// Installs [`NIGHTLY`] with `rust-src` (minimal profile: no docs).
pub fn nightly() -> Result<()> {
    let toolchain = format!("+{NIGHTLY}");
    if !util::prints(
        "rustup",
        &[&toolchain, "component", "list", "--installed"],
        "rust-src",
    ) {
        util::run(
            "rustup",
            &[
                "toolchain",
                "install",
                NIGHTLY,
                "--profile",
                "minimal",
                "--component",
                "rust-src",
            ],
        )?;
    }
    Ok(())
}

fn wasm_target() -> Result<()> {
    if !util::prints(
        "rustup",
        &["target", "list", "--installed"],
        "wasm32-unknown-unknown",
    ) {
        util::run("rustup", &["target", "add", "wasm32-unknown-unknown"])?;
    }
    Ok(())
}

/// The version of package `name` in Cargo.lock.
fn locked_version(root: &Path, name: &str) -> Result<String> {
    let lock = std::fs::read_to_string(root.join("Cargo.lock")).context("Cargo.lock")?;
    let mut lines = lock.lines();
    let wanted = format!("name = \"{name}\"");
    while let Some(l) = lines.next() {
        if l == wanted {
            if let Some(v) = lines.next().and_then(|v| v.strip_prefix("version = \"")) {
                return Ok(v.trim_end_matches('"').to_string());
            }
        }
    }
    bail!("Cargo.lock has no {name}")
}

/// `npm ci` in `dir` unless its `node_modules` is up to date with its lockfile.
pub fn npm_ci(dir: &Path) -> Result<()> {
    let lock = dir.join("package-lock.json");
    if !lock.exists() {
        return Ok(());
    }
    let stamp = dir.join("node_modules/.package-lock.json");
    let fresh = match (std::fs::metadata(&lock), std::fs::metadata(&stamp)) {
        (Ok(l), Ok(s)) => s.modified()? >= l.modified()?,
        _ => false,
    };
    if !fresh {
        util::run_in("npm", &["ci", "--no-audit", "--no-fund"], Some(dir), &[])?;
    }
    Ok(())
}

/// Debian's Chromium and ChromeDriver (never a browser download from a test tool).
fn chromium() -> Result<()> {
    if Path::new("/usr/bin/chromium").exists() && Path::new("/usr/bin/chromedriver").exists() {
        return Ok(());
    }
    let root = util::prints("id", &["-u"], "0");
    let (cmd, pre): (&str, Vec<&str>) = if root {
        ("apt-get", vec![])
    } else {
        ("sudo", vec!["apt-get"])
    };
    let mut update = pre.clone();
    update.extend(["update", "-q"]);
    util::run_in(cmd, &update, None, &[])?;
    let mut install = pre;
    install.extend(["install", "-y", "-q", "chromium", "chromium-driver"]);
    util::run_in(cmd, &install, None, &[("DEBIAN_FRONTEND", "noninteractive")])?;
    if !Path::new("/usr/bin/chromium").exists() {
        bail!("apt installed chromium but /usr/bin/chromium is missing");
    }
    Ok(())
}
