//! Small helpers: the repository root, running commands, hashing files.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

/// The workspace root, found at run time (see `clones`).
pub fn root() -> PathBuf {
    crate::clones::root()
}

/// A path as `&str` (paths here are ASCII).
pub fn s(p: &Path) -> &str {
    p.to_str().unwrap_or_default()
}

/// Runs a command, echoing it, and fails when it fails.
pub fn run(cmd: &str, args: &[&str]) -> Result<()> {
    run_in(cmd, args, None, &[])
}

/// Runs a command in `dir` with extra environment variables.
pub fn run_in(cmd: &str, args: &[&str], dir: Option<&Path>, env: &[(&str, &str)]) -> Result<()> {
    eprintln!("xtask: {cmd} {}", args.join(" "));
    let mut c = Command::new(cmd);
    c.args(args);
    if let Some(d) = dir {
        c.current_dir(d);
    }
    for (k, v) in env {
        c.env(k, v);
    }
    let status = c.status().with_context(|| format!("cannot start {cmd}"))?;
    if !status.success() {
        bail!("{cmd} {} failed ({status})", args.join(" "));
    }
    Ok(())
}

/// Runs a command and returns its stdout.
pub fn output(cmd: &str, args: &[&str]) -> Result<String> {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .with_context(|| format!("cannot start {cmd}"))?;
    if !out.status.success() {
        bail!(
            "{cmd} {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Whether a command runs and prints something containing `needle` for `args`.
pub fn prints(cmd: &str, args: &[&str], needle: &str) -> bool {
    Command::new(cmd)
        .args(args)
        .output()
        .map(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).contains(needle))
        .unwrap_or(false)
}

/// SHA-256 of a file, lowercase hex.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}
