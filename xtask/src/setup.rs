//! Installs what the commands need, each step skipped when already done. Tools go to `.tools/`
//! in the repository (pinned versions, nothing global changed) except the wasm target (rustup)
//! and Chromium (apt), which have no per-project form.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::{models, util};

/// The Trunk release line that builds with this toolchain (0.22 needs a newer rustc).
const TRUNK_VERSION: &str = "0.21.14";

/// Everything: models and the tools of the browser build and tests.
pub fn all(root: &Path) -> Result<()> {
    models::ensure_all(root)?;
    wasm_target()?;
    nightly()?;
    trunk(root)?;
    wasm_bindgen(root)?;
    npm_ci(&root.join("tests"))?;
    chromium()?;
    Ok(())
}

/// `.tools/bin`, where pinned tools are installed.
pub fn tools_bin(root: &Path) -> PathBuf {
    root.join(".tools/bin")
}

/// PATH with the project's tools (and npm binaries such as binaryen's `wasm-opt`) first.
pub fn tool_path(root: &Path) -> String {
    let mut parts = vec![
        util::s(&tools_bin(root)).to_string(),
        util::s(&root.join("tests/node_modules/.bin")).to_string(),
    ];
    if let Ok(p) = std::env::var("PATH") {
        parts.push(p);
    }
    parts.join(":")
}

/// The nightly toolchain of the threaded worker build (`-Z build-std`, since the standard
/// library shipped for wasm32 is built without atomics) and of `cargo xtask fuzz`.
pub const NIGHTLY: &str = "nightly-2026-05-19";

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

fn trunk(root: &Path) -> Result<()> {
    let bin = tools_bin(root).join("trunk");
    if util::prints(util::s(&bin), &["--version"], TRUNK_VERSION) {
        return Ok(());
    }
    let tools = root.join(".tools");
    util::run(
        "cargo",
        &[
            "install",
            "--locked",
            "--root",
            util::s(&tools),
            "trunk",
            "--version",
            TRUNK_VERSION,
        ],
    )
}

/// The `wasm-bindgen` version pinned in Cargo.lock; the CLI must match it exactly or Trunk
/// would try to download one.
fn locked_wasm_bindgen(root: &Path) -> Result<Option<String>> {
    let lock = std::fs::read_to_string(root.join("Cargo.lock")).context("Cargo.lock")?;
    let mut lines = lock.lines();
    while let Some(l) = lines.next() {
        if l == "name = \"wasm-bindgen\"" {
            if let Some(v) = lines.next().and_then(|v| v.strip_prefix("version = \"")) {
                return Ok(Some(v.trim_end_matches('"').to_string()));
            }
        }
    }
    Ok(None)
}

fn wasm_bindgen(root: &Path) -> Result<()> {
    let Some(version) = locked_wasm_bindgen(root)? else {
        return Ok(());
    };
    let bin = tools_bin(root).join("wasm-bindgen");
    if util::prints(util::s(&bin), &["--version"], &version) {
        return Ok(());
    }
    let tools = root.join(".tools");
    // Without --locked: the CLI's own lockfile pins a crate version the registry lacks.
    util::run(
        "cargo",
        &[
            "install",
            "--root",
            util::s(&tools),
            "wasm-bindgen-cli",
            "--version",
            &format!("={version}"),
        ],
    )
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
