//! `cargo xtask`: everything the README's two commands need, installed idempotently.
//!
//! - `cargo xtask serve`: set up, build the app and serve it at http://127.0.0.1:8080
//! - `cargo xtask test`: set up, then every check and test (what `.ci/run` runs)
//! - `cargo xtask models`: fetch and verify the bundled models only
//! - `cargo xtask reference`: regenerate the llama.cpp reference records
//! - `cargo xtask bench-native [FILES]`: `omp bench` next to llama.cpp on the same files

mod models;
mod setup;
mod util;

use anyhow::{bail, Result};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = util::root();
    std::env::set_current_dir(&root)?;
    match args.first().map(String::as_str) {
        Some("models") => models::ensure_all(&root),
        Some("setup") => setup::all(&root),
        Some("test") => test(&root),
        Some("reference") => reference(&root),
        Some("bench-native") => bench_native(&root, &args[1..]),
        _ => {
            eprintln!("usage: cargo xtask <serve|test|setup|models|reference|bench-native>");
            bail!("unknown or missing command")
        }
    }
}

/// Every check: formatting, lints, the Rust tests (unit, CLI and the llama.cpp reference
/// checks on the bundled model).
fn test(root: &std::path::Path) -> Result<()> {
    setup::all(root)?;
    util::run("cargo", &["fmt", "--all", "--", "--check"])?;
    util::run(
        "cargo",
        &["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"],
    )?;
    util::run("cargo", &["test", "--workspace"])?;
    println!("xtask: all tests passed");
    Ok(())
}

/// Regenerates `crates/engine/tests/data/llamacpp-*.json` with node-llama-cpp.
fn reference(root: &std::path::Path) -> Result<()> {
    models::ensure_all(root)?;
    setup::npm_ci(&root.join("tools/llamacpp"))?;
    let model = models::bundled_path(root)?;
    util::run(
        "node",
        &[
            "tools/llamacpp/record.mjs",
            "--model",
            util::s(&model),
            "--data",
            "crates/engine/tests/data",
            "--out",
            "crates/engine/tests/data/llamacpp-smollm2-135m-q4_1.json",
        ],
    )
}

/// One table: omp (as stored and with --convert) and llama.cpp, 1 thread, same prompt.
fn bench_native(root: &std::path::Path, files: &[String]) -> Result<()> {
    models::ensure_all(root)?;
    setup::npm_ci(&root.join("tools/llamacpp"))?;
    util::run("cargo", &["build", "--release", "-p", "omp-cli"])?;
    let files: Vec<String> = if files.is_empty() {
        vec![util::s(&models::bundled_path(root)?).to_string()]
    } else {
        files.to_vec()
    };
    println!(
        "{:<40} {:>10} {:>14} {:>14}",
        "file / engine", "threads", "prefill tok/s", "decode tok/s"
    );
    for f in &files {
        let name = std::path::Path::new(f)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or(f);
        for (label, extra) in [("omp", None), ("omp --convert", Some("--convert"))] {
            let mut args = vec!["bench", f.as_str(), "--threads", "1", "--json"];
            args.extend(extra);
            let v: serde_json::Value = serde_json::from_str(&util::output("target/release/omp", &args)?)?;
            println!(
                "{:<40} {:>10} {:>14.1} {:>14.1}",
                format!("{name} / {label}"),
                1,
                v["prefill_tokens_per_s"].as_f64().unwrap_or(0.0),
                v["decode_tokens_per_s"].as_f64().unwrap_or(0.0)
            );
        }
        let v: serde_json::Value = serde_json::from_str(&util::output(
            "node",
            &["tools/llamacpp/bench.mjs", "--model", f, "--threads", "1"],
        )?)?;
        println!(
            "{:<40} {:>10} {:>14.1} {:>14.1}",
            format!("{name} / llama.cpp"),
            1,
            v["prefill_tokens_per_s"].as_f64().unwrap_or(0.0),
            v["decode_tokens_per_s"].as_f64().unwrap_or(0.0)
        );
    }
    Ok(())
}
