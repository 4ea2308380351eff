//! `cargo xtask bench-kernels`: A/B timing of two engine builds in one browser page.
//!
//! - `bench-kernels build NAME [--plain]`: builds `crates/kernel-bench` for the browser (relaxed
//!   SIMD, or plain simd128) from the working tree, to `target/kernel-bench/NAME.wasm`.
//! - `bench-kernels ab A B [decode | TYPE,ROWS,COLS,M] [--model FILE] [--warmup STEPS]`: loads
//!   both modules in one headless Chromium page and alternates them (`tests/bench/kernels.mjs`):
//!   decode steps of a model (the bundled one by default), or a product such as
//!   `Q4_1,1536,576,1`. Prints each side's median and minimum and the median of the per-step
//!   time ratios B/A. `--warmup` steps (untimed, none by default) reach a longer context first.
//!
//! - `bench-kernels profile NAME [--model FILE] [--warmup STEPS]`: samples 120 decode steps of
//!   one module with the browser's CPU profiler (`tests/bench/profile.mjs`) and prints each wasm
//!   function's share of the time. `--warmup` steps run first (40 by default; 1500 profiles a
//!   long context).
//!
//! Typical use: `build base`, change a kernel, `build new`, `ab base new`. Ratios under 1 mean
//! B is faster; on this machine differences under ~3% are noise.

use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::util::{run_in, s};

/// Runs the subcommand in `args`.
pub fn run(root: &Path, args: &[String]) -> Result<()> {
    let usage = "usage: cargo xtask bench-kernels build NAME [--plain] | ab A B [decode|TYPE,ROWS,COLS,M] [--model FILE] [--warmup STEPS] | profile NAME [--model FILE] [--warmup STEPS]";
    let wasm = |n: &str| root.join("target/kernel-bench").join(format!("{n}.wasm"));
    let built = |n: &str| {
        if wasm(n).is_file() {
            Ok(())
        } else {
            Err(anyhow::anyhow!(
                "{} is missing: run `cargo xtask bench-kernels build {n}` first",
                wasm(n).display()
            ))
        }
    };
    match args.first().map(String::as_str) {
        Some("build") => {
            let Some(name) = args.get(1) else { bail!(usage) };
            build(root, name, args.iter().any(|a| a == "--plain"))
        }
        Some("ab") => {
            let (Some(a), Some(b)) = (args.get(1), args.get(2)) else {
                bail!(usage)
            };
            built(a)?;
            built(b)?;
            let (wa, wb) = (wasm(a), wasm(b));
            let mut js = vec![s(&wa), s(&wb)];
            js.extend(args[3..].iter().map(String::as_str));
            crate::setup::npm_ci(&root.join("tests"))?;
            run_in(
                "node",
                &[&["tests/bench/kernels.mjs"], &js[..]].concat(),
                Some(root),
                &[],
            )
        }
        Some("profile") => {
            let Some(name) = args.get(1) else { bail!(usage) };
            built(name)?;
            let w = wasm(name);
            let mut js = vec!["tests/bench/profile.mjs", s(&w)];
            js.extend(args[2..].iter().map(String::as_str));
            crate::setup::npm_ci(&root.join("tests"))?;
            run_in("node", &js, Some(root), &[])
        }
        _ => bail!(usage),
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
                crate::RELAXED_RUSTFLAGS,
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
