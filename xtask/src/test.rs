//! `cargo xtask test`: every check, in stages, each timed. With no flags it runs them all (what
//! `.ci/run` runs); `--quick` and `--only` run fewer for the edit–test loop.

use std::path::Path;

use anyhow::Result;
use clap::ValueEnum;

use crate::{build, models, server, setup, timing::Timer, util};

/// A stage of the full test run, in the order they run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub enum Stage {
    /// `cargo fmt --check`, clippy natively and for wasm32 (warnings are errors).
    Lint,
    /// `cargo test --workspace`: unit, CLI and llama.cpp reference tests.
    Rust,
    /// The GGUF parser's corpus and the kernel tests as wasm32 in headless Chromium (plain
    /// simd128 and relaxed SIMD).
    Wasm,
    /// The release build of the app into `dist/`.
    Build,
    /// The end-to-end tests (`tests/browser/`) in headless Chromium against the build.
    Browser,
}

/// `cargo xtask test` flags.
#[derive(clap::Args)]
pub struct Args {
    /// The inner loop: formatting, clippy and the host Rust tests (the same as `--only lint,rust`).
    #[arg(long, conflicts_with = "only")]
    quick: bool,
    /// Run only these stages (comma-separated). `browser` builds first (incrementally).
    #[arg(long, value_delimiter = ',', value_name = "STAGES")]
    only: Vec<Stage>,
    /// Only the tests whose name contains TEXT (Rust and browser stages).
    #[arg(long, value_name = "TEXT")]
    filter: Option<String>,
}

impl Args {
    /// The stages to run, in order.
    fn stages(&self) -> Vec<Stage> {
        let mut s = if self.quick {
            vec![Stage::Lint, Stage::Rust]
        } else if self.only.is_empty() {
            Stage::value_variants().to_vec()
        } else {
            self.only.clone()
        };
        if s.contains(&Stage::Browser) {
            s.push(Stage::Build);
        }
        s.sort();
        s.dedup();
        s
    }
}

/// Runs the chosen stages after the set-up, then prints each one's time (also on failure).
pub fn run(root: &Path, args: &Args) -> Result<()> {
    let mut t = Timer::default();
    let r = stages(root, args, &mut t);
    eprint!("{}", t.report());
    r?;
    println!("xtask: all tests passed");
    Ok(())
}

fn stages(root: &Path, args: &Args, t: &mut Timer) -> Result<()> {
    setup::all(root, t)?;
    let filter = args.filter.as_deref();
    for stage in args.stages() {
        match stage {
            Stage::Lint => t.step("lint", lint)?,
            Stage::Rust => t.step("rust tests", || rust(filter))?,
            Stage::Wasm => t.step("wasm tests", || wasm(root))?,
            Stage::Build => t.step("release build", || build::app(root))?,
            Stage::Browser => t.step("browser tests", || browser(root, filter))?,
        }
    }
    Ok(())
}

/// Formatting, and clippy natively and for wasm32, warnings as errors.
fn lint() -> Result<()> {
    util::run("cargo", &["fmt", "--all", "--", "--check"])?;
    util::run(
        "cargo",
        &["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"],
    )?;
    let mut wasm = vec!["clippy", "--target", "wasm32-unknown-unknown"];
    for p in build::WASM_PACKAGES {
        wasm.extend(["-p", p]);
    }
    wasm.extend(["--", "-D", "warnings"]);
    util::run("cargo", &wasm)
}

/// The workspace's Rust tests.
fn rust(filter: Option<&str>) -> Result<()> {
    let mut args = vec!["test", "--workspace"];
    args.extend(filter);
    util::run("cargo", &args)
}

/// The GGUF parser's malformed-file corpus and the kernel tests again, as 32-bit wasm in
/// headless Chromium (wasm-bindgen-test; browser flags in `crates/engine/webdriver.json`).
fn wasm(root: &Path) -> Result<()> {
    let runner = setup::wasm_bindgen(root)?.path("wasm-bindgen-test-runner");
    let relaxed_dir = root.join("target/wasm-relaxed");
    // The parser's corpus, the block formats, and the simd128 kernels against their scalar
    // definition, then the relaxed-SIMD kernels (the second worker build's) against it too.
    // Debug builds: overflow checks and debug assertions on, as 32-bit wasm.
    let runs = [
        ("gguf::", false),
        ("quant::", false),
        ("kernels::", false),
        ("kernels::", true),
    ];
    for (filter, relaxed) in runs {
        let mut args = vec![
            "test",
            "--target",
            "wasm32-unknown-unknown",
            "-p",
            "omp-engine",
            "--lib",
            filter,
        ];
        let mut env = vec![
            ("CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER", util::s(&runner)),
            ("CHROMEDRIVER", "/usr/bin/chromedriver"),
        ];
        if relaxed {
            args.extend(["--target-dir", util::s(&relaxed_dir)]);
            env.push((
                "CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS",
                build::RELAXED_RUSTFLAGS,
            ));
        }
        util::run_in("cargo", &args, Some(root), &env)?;
    }
    Ok(())
}

/// Runs `tests/browser` in headless Chromium against the built app on free ports.
fn browser(root: &Path, filter: Option<&str>) -> Result<()> {
    // A course page that embeds the app, and a page on a third origin (different ports are
    // different origins), for the embed and postMessage tests.
    let pages = || server::Site {
        mounts: vec![("/".into(), root.join("tests/browser/host"))],
        headers: vec![],
        faults: None,
    };
    let host = server::start(pages())?;
    let third = server::start(pages())?;
    // The app as deployed, allowing the course page (only) to embed it. Not isolated, as when
    // a deployer leaves isolation off to be embeddable anywhere: the single-threaded builds.
    let policy = crate::security::Policy {
        frame_ancestors: format!("'self' {}", host.trim_end_matches('/')),
        isolated: false,
        ..Default::default()
    };
    let base = server::start(server::Site {
        faults: Some(root.join("public/models")),
        ..crate::serve::site(root, &policy)
    })?;
    // As `cargo xtask serve` deploys it: cross-origin isolated, so the threaded build.
    let isolated = server::start(crate::serve::site(root, &crate::security::Policy::default()))?;
    let model = models::bundled_path(root)?;
    let gemma = root.join("public/models/gemma-3-270m-q4_k_m.gguf");
    // The native engine the browser's tokens are compared with: the test profile's build (the
    // engine is optimized there too), which the Rust stage has already made.
    util::run("cargo", &["build", "-p", "omp-cli"])?;
    let omp = root.join("target/debug/omp");
    let mut env = vec![
        ("OMP_BASE_URL", base.as_str()),
        ("OMP_HOST_URL", host.as_str()),
        ("OMP_THIRD_URL", third.as_str()),
        ("OMP_ISOLATED_URL", isolated.as_str()),
        ("OMP_MODEL", util::s(&model)),
        ("OMP_GEMMA3_MODEL", util::s(&gemma)),
        ("OMP_BIN", util::s(&omp)),
    ];
    if let Some(f) = filter {
        env.push(("OMP_ONLY", f));
    }
    util::run_in("node", &["tests/browser/run.mjs"], Some(root), &env)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        a: Args,
    }

    fn stages(args: &[&str]) -> Vec<Stage> {
        let mut v = vec!["test"];
        v.extend(args);
        T::try_parse_from(v).unwrap().a.stages()
    }

    #[test]
    fn stages_follow_the_flags() {
        use Stage::*;
        assert_eq!(stages(&[]), vec![Lint, Rust, Wasm, Build, Browser]);
        assert_eq!(stages(&["--quick"]), vec![Lint, Rust]);
        assert_eq!(stages(&["--only", "browser"]), vec![Build, Browser]);
        assert_eq!(stages(&["--only", "wasm,lint"]), vec![Lint, Wasm]);
        assert!(T::try_parse_from(["test", "--quick", "--only", "wasm"]).is_err());
    }
}
