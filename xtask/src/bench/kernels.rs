//! `cargo xtask bench kernels`: A/B timing of two engine builds in one browser page.
//!
//! - `build NAME [--plain]`: builds `bench/kernel-module` for the browser (relaxed SIMD, or
//!   plain simd128) from the working tree, to `target/kernel-bench/NAME.wasm`.
//! - `ab A B [decode | TYPE,ROWS,COLS,M] [--model FILE] [--warmup STEPS]`: loads both modules in
//!   one headless Chromium page and alternates them (`bench/kernels/kernels.mjs`): decode steps
//!   of a model (the bundled one by default), or a product such as `Q4_1,1536,576,1`. Prints
//!   each side's median and minimum and the median of the per-step time ratios B/A.
//! - `profile NAME [--model FILE] [--warmup STEPS]`: samples 120 decode steps of one module with
//!   the browser's CPU profiler (`bench/kernels/profile.mjs`) and prints each wasm function's
//!   share of the time.
//!
//! Typical use: `build base`, change a kernel, `build new`, `ab base new`. Ratios under 1 mean
//! B is faster; on this machine differences under ~3% are noise.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Subcommand;

use crate::util::{run_in, s};

/// The kernel benchmarks.
#[derive(Subcommand)]
pub enum Verb {
    /// Build the engine from the working tree as a bare wasm module `target/kernel-bench/NAME.wasm`.
    Build {
        /// The build's name (e.g. `base`, `new`).
        name: String,
        /// Plain simd128 instead of relaxed SIMD.
        #[arg(long)]
        plain: bool,
    },
    /// Alternate two builds in one page, step by step, and print the median time ratio B/A.
    Ab {
        /// The first build's name.
        a: String,
        /// The second build's name.
        b: String,
        /// `decode`, or a product `TYPE,ROWS,COLS,M` such as `Q4_1,1536,576,1`.
        #[arg(default_value = "decode")]
        what: String,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Each wasm function's share of 120 decode steps of one build (Chromium's CPU profiler).
    Profile {
        /// The build's name.
        name: String,
        #[command(flatten)]
        run: RunArgs,
    },
}

/// What a timed page runs.
#[derive(clap::Args)]
pub struct RunArgs {
    /// The model to decode (default: the bundled one).
    #[arg(long, value_name = "FILE")]
    model: Option<String>,
    /// Untimed decode steps first, e.g. 1500 to time a long context.
    #[arg(long, value_name = "STEPS")]
    warmup: Option<u32>,
}

impl RunArgs {
    fn to_js(&self) -> Vec<String> {
        let mut v = vec![];
        if let Some(m) = &self.model {
            v.extend(["--model".to_string(), m.clone()]);
        }
        if let Some(w) = self.warmup {
            v.extend(["--warmup".to_string(), w.to_string()]);
        }
        v
    }
}

/// A built module's path, or an error saying how to build it.
fn built(root: &Path, name: &str) -> Result<PathBuf> {
    let p = root.join("target/kernel-bench").join(format!("{name}.wasm"));
    anyhow::ensure!(
        p.is_file(),
        "{} is missing: run `cargo xtask bench kernels build {name}` first",
        p.display()
    );
    Ok(p)
}

/// Runs the subcommand.
pub fn run(root: &Path, verb: Verb) -> Result<()> {
    let node = |script: &str, mut args: Vec<String>| {
        crate::setup::npm_ci(root)?;
        args.insert(0, script.to_string());
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        run_in("node", &refs, Some(root), &[])
    };
    match verb {
        Verb::Build { name, plain } => build(root, &name, plain),
        Verb::Ab { a, b, what, run } => {
            let mut js = vec![
                s(&built(root, &a)?).to_string(),
                s(&built(root, &b)?).to_string(),
                what,
            ];
            js.extend(run.to_js());
            node("bench/kernels/kernels.mjs", js)
        }
        Verb::Profile { name, run } => {
            let mut js = vec![s(&built(root, &name)?).to_string()];
            js.extend(run.to_js());
            node("bench/kernels/profile.mjs", js)
        }
    }
}

/// Builds the kernel bench module from the working tree as `target/kernel-bench/NAME.wasm`.
fn build(root: &Path, name: &str, plain: bool) -> Result<()> {
    // The plain build takes `.cargo/config.toml`'s wasm flags as they are; the relaxed one
    // the relaxed worker's.
    let (dir, env): (&str, &[(&str, &str)]) = if plain {
        ("kernel-bench-plain", &[])
    } else {
        (
            "kernel-bench-relaxed",
            &[(
                "CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS",
                crate::build::RELAXED_RUSTFLAGS,
            )],
        )
    };
    let target_dir = root.join("target").join(dir);
    run_in(
        "cargo",
        &[
            "build",
            "--release",
            "-p",
            "omp-kernel-bench",
            "--target",
            "wasm32-unknown-unknown",
            "--target-dir",
            s(&target_dir),
        ],
        Some(root),
        env,
    )?;
    let out = root.join("target/kernel-bench");
    std::fs::create_dir_all(&out)?;
    let built = target_dir.join("wasm32-unknown-unknown/release/omp_kernel_bench.wasm");
    let dest = out.join(format!("{name}.wasm"));
    std::fs::copy(&built, &dest).with_context(|| format!("copy {}", built.display()))?;
    println!("xtask: {}", dest.display());
    Ok(())
}
