//! Several clones on one machine share cargo's build directory (`.cargo/config.toml`), and
//! cargo names a workspace member's compiled units by its path inside the workspace, so the
//! clones' members share units too; cargo then judges them fresh by modification times. After
//! a build in clone B, clone A (whose sources are older) would reuse B's build of a member,
//! even this xtask binary with B's root compiled in. So: the repository root is found at run
//! time, and when the last build came from another clone, this clone's member sources are
//! marked as changed (their times set to now) and a binary built for another clone hands over
//! to one built here. Compiled dependencies stay shared.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{bail, Context, Result};

/// Set on the second run, so a mismatch that survives a rebuild is an error, not a loop.
const REEXEC: &str = "OMP_XTASK_REBUILT";

/// Folders holding the workspace members and the files they compile in (`include_str!`).
const MEMBER_DIRS: &[&str] = &["crates", "xtask", "bench/kernel-module", "public/models", "www"];

/// The repository this run is for: the nearest folder above the current one with
/// `xtask/Cargo.toml` (cargo runs xtask in the folder it was invoked from), else the one this
/// binary was built from.
pub fn root() -> PathBuf {
    let here = std::env::current_dir().ok();
    here.as_deref()
        .and_then(|d| d.ancestors().find(|a| a.join("xtask/Cargo.toml").is_file()))
        .map(Path::to_path_buf)
        .unwrap_or_else(built_for)
}

/// The repository this binary was compiled from.
fn built_for() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The shared build directory of `.cargo/config.toml`.
fn build_dir() -> Option<PathBuf> {
    std::env::var_os("CARGO_HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .map(|h| h.join("omp-build"))
}

/// Makes sure this run builds and runs this clone's code. Returns the exit code when the run
/// was handed to a freshly built xtask (the caller exits with it).
pub fn ensure_own_build(root: &Path) -> Result<Option<i32>> {
    if let Some(dir) = build_dir() {
        let marker = dir.join(".omp-last-clone");
        let me = root.to_string_lossy().into_owned();
        if std::fs::read_to_string(&marker).ok().as_deref() != Some(me.as_str()) {
            let n = touch_members(root)?;
            std::fs::create_dir_all(&dir).ok();
            std::fs::write(&marker, &me).with_context(|| format!("cannot write {}", marker.display()))?;
            eprintln!("xtask: the shared build directory was last used by another clone: {n} source files here marked as changed");
        }
    }
    if same_dir(&built_for(), root) {
        return Ok(None);
    }
    if std::env::var_os(REEXEC).is_some() {
        bail!(
            "xtask was built for {} but runs in {}, even after a rebuild",
            built_for().display(),
            root.display()
        );
    }
    eprintln!(
        "xtask: this xtask was built for {}; rebuilding it here",
        built_for().display()
    );
    let status = std::process::Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .arg("xtask")
        .args(std::env::args_os().skip(1))
        .current_dir(root)
        .env(REEXEC, "1")
        .status()
        .context("cannot start cargo")?;
    Ok(Some(status.code().unwrap_or(1)))
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// Sets the modification time of every file under the member folders to now.
fn touch_members(root: &Path) -> Result<usize> {
    let now = SystemTime::now();
    let mut n = 0;
    let mut stack: Vec<PathBuf> = MEMBER_DIRS.iter().map(|d| root.join(d)).collect();
    while let Some(p) = stack.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        if meta.is_dir() {
            if p.file_name()
                .is_some_and(|n| n == "target" || n == "node_modules")
            {
                continue;
            }
            for e in std::fs::read_dir(&p)?.flatten() {
                stack.push(e.path());
            }
        } else if meta.is_file() && !is_model(&p) {
            let f = std::fs::File::options()
                .write(true)
                .open(&p)
                .with_context(|| format!("cannot open {}", p.display()))?;
            f.set_modified(now)?;
            n += 1;
        }
    }
    Ok(n)
}

/// Model files (linked from the shared model cache) are not sources: leave them alone.
fn is_model(p: &Path) -> bool {
    p.extension().is_some_and(|e| e == "gguf" || e == "part")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_is_found_from_the_current_folder() {
        let r = root();
        assert!(r.join("xtask/Cargo.toml").is_file(), "{}", r.display());
    }
}
