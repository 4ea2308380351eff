//! `cargo xtask bench browser`: omp against wllama (llama.cpp in wasm) in headless Chromium.
//!
//! The bundled Q4_1 model and copies of it re-quantized by `omp quantize` to Q4_0, Q5_0, Q5_1
//! and Q8_0 are served with the benchmark page (`bench/browser`), the app's release build (its
//! worker is what runs) and wllama's own files. A second server adds the cross-origin isolation
//! headers (COOP/COEP) that multi-threaded wasm needs; runs with 2 threads use it.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::{build, models, server, setup, timing::Timer, util};

/// Types the bundled model is re-quantized to (K-quants need rows of 256; this model's are 576).
const TYPES: [&str; 4] = ["Q4_0", "Q5_0", "Q5_1", "Q8_0"];

/// `cargo xtask bench browser` flags.
#[derive(clap::Args)]
pub struct Args {
    /// Measured runs per engine and configuration (the median is printed).
    #[arg(long)]
    runs: Option<u32>,
    /// Tokens generated per run.
    #[arg(long)]
    tokens: Option<u32>,
    /// Weight types, comma-separated (default: Q4_1, the bundled file's, then Q4_0,Q5_0,Q5_1,Q8_0).
    #[arg(long, value_delimiter = ',')]
    types: Vec<String>,
    /// Engines, comma-separated: omp, wllama.
    #[arg(long)]
    engines: Option<String>,
    /// Only 1 thread (no cross-origin-isolated runs).
    #[arg(long)]
    no_threads: bool,
    /// Use the `dist/` there is instead of building.
    #[arg(long)]
    no_build: bool,
    /// Also write every run to FILE as JSON.
    #[arg(long, value_name = "FILE")]
    json: Option<String>,
    /// omp converts at load (`q8_0` or `q4_0`), as the app's option.
    #[arg(long, value_name = "TYPE")]
    convert: Option<String>,
    /// Instead: omp's memory and decode with a whole 2048-token context cached, per key/value
    /// cache type on 1 thread, and the f16 cache on 2 threads.
    #[arg(long)]
    full_context: bool,
    /// Instead: omp's 2-thread gain in N rounds of back-to-back runs (1 thread, the threaded
    /// build on 1 thread, 2 threads).
    #[arg(long, value_name = "N")]
    paired: Option<u32>,
    /// Leave out the main table's comparison with native llama.cpp.
    #[arg(long)]
    no_native: bool,
}

/// Runs the benchmark and prints its table.
pub fn run(root: &Path, args: &Args) -> Result<()> {
    models::ensure_all(root)?;
    setup::npm_ci(&root.join("bench/wllama"))?;
    if !args.no_build {
        let mut t = Timer::default();
        setup::all(root, &mut t)?;
        build::app(root)?;
    }
    util::run("cargo", &["build", "--release", "-p", "omp-cli"])?;
    let bundled = models::bundled_path(root)?;
    let dir = root.join("target/bench-models");
    std::fs::create_dir_all(&dir)?;
    let wanted: Vec<String> = if args.types.is_empty() {
        std::iter::once("Q4_1").chain(TYPES).map(str::to_string).collect()
    } else {
        args.types.clone()
    };
    let mut urls = Vec::new();
    let mut files = Vec::new();
    for ty in &wanted {
        let file = model_file(root, &bundled, &dir, ty)?;
        let name = file.file_name().and_then(|n| n.to_str()).context("file name")?;
        urls.push(format!("/models/{name}"));
        files.push((name.to_string(), file));
    }
    // The main table's target is relative to native llama.cpp on 1 thread, so the table carries
    // that ratio too: llama.cpp runs each file first (`--no-native` skips it).
    let main_table = !(args.paired.is_some() || args.full_context || args.no_native)
        && args
            .engines
            .as_deref()
            .is_none_or(|e| e.split(',').any(|x| x == "omp"));
    let mut native = Vec::new();
    if main_table {
        setup::npm_ci(&root.join("reference"))?;
        let tokens = args.tokens.unwrap_or(128).to_string();
        for (name, file) in &files {
            eprintln!("  llama.cpp (native) {name} 1 thread(s)");
            let out = util::output(
                "node",
                &[
                    "reference/bench.mjs",
                    "--model",
                    util::s(file),
                    "--threads",
                    "1",
                    "--tokens",
                    &tokens,
                ],
            )?;
            let v: serde_json::Value = serde_json::from_str(&out)
                .with_context(|| format!("llama.cpp's benchmark printed no JSON: {out}"))?;
            let decode = v["decode_tokens_per_s"]
                .as_f64()
                .context("llama.cpp's benchmark gave no decode speed")?;
            native.push(format!("{name}={decode}"));
        }
    }
    let site = |headers: Vec<(String, String)>| server::Site {
        mounts: vec![
            ("/models/".into(), dir.clone()),
            ("/app/".into(), root.join("dist")),
            ("/bench/".into(), root.join("bench/browser")),
            (
                "/wllama/".into(),
                root.join("bench/wllama/node_modules/@wllama/wllama"),
            ),
        ],
        headers,
        faults: None,
    };
    let plain = server::start(site(vec![]))?;
    let isolated = server::start(site(crate::security::isolation_headers()))?;
    let mut drive = vec![
        "bench/browser/drive.mjs".to_string(),
        "--plain".into(),
        plain,
        "--models".into(),
        urls.join(","),
    ];
    if !args.no_threads {
        drive.extend(["--isolated".into(), isolated]);
    }
    if args.full_context {
        drive.push("--full-context".into());
    }
    if !native.is_empty() {
        drive.extend(["--native".into(), native.join(",")]);
    }
    let numbers = [
        ("--runs", args.runs),
        ("--tokens", args.tokens),
        ("--paired", args.paired),
    ];
    for (flag, v) in numbers {
        if let Some(v) = v {
            drive.extend([flag.to_string(), v.to_string()]);
        }
    }
    let texts = [
        ("--engines", &args.engines),
        ("--json", &args.json),
        ("--convert", &args.convert),
    ];
    for (flag, v) in texts {
        if let Some(v) = v {
            drive.extend([flag.to_string(), v.clone()]);
        }
    }
    let refs: Vec<&str> = drive.iter().map(String::as_str).collect();
    util::run_in("node", &refs, Some(root), &[])?;
    // Without threads there is no 2-thread result to put in context.
    if !args.no_threads {
        super::native::print_compute_scaling();
    }
    Ok(())
}

/// The bundled model in type `ty`: the file itself for its own type, else a copy made once by
/// `omp quantize` into `dir`.
fn model_file(root: &Path, bundled: &Path, dir: &Path, ty: &str) -> Result<PathBuf> {
    let stem = bundled
        .file_stem()
        .and_then(|s| s.to_str())
        .context("model file name")?;
    let base = stem.rsplit_once('.').map_or(stem, |(b, _)| b);
    let out = dir.join(format!("{base}.{ty}.gguf"));
    if out.exists() {
        return Ok(out);
    }
    if stem.ends_with(&format!(".{ty}")) {
        std::fs::copy(bundled, &out)?;
    } else {
        let omp = root.join("target/release/omp");
        util::run(
            util::s(&omp),
            &["quantize", util::s(bundled), util::s(&out), "--type", ty],
        )?;
    }
    Ok(out)
}
