//! `cargo xtask bench-browser`: omp against wllama (llama.cpp in wasm) in headless Chromium.
//!
//! The bundled Q4_1 model and copies of it re-quantized by `omp quantize` to Q4_0, Q5_0, Q5_1
//! and Q8_0 are served with the benchmark page (`tests/bench`), the app's release build (its
//! worker is what runs) and wllama's own files. A second server adds the cross-origin isolation
//! headers (COOP/COEP) that multi-threaded wasm needs; runs with 2 threads use it.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::{models, server, setup, start, util};

/// Types the bundled model is re-quantized to (K-quants need rows of 256; this model's are 576).
const TYPES: [&str; 4] = ["Q4_0", "Q5_0", "Q5_1", "Q8_0"];

/// Runs the benchmark; `args`: `--runs N`, `--tokens N`, `--types Q4_1,Q8_0,...`,
/// `--engines omp,wllama`, `--no-threads`, `--no-build` (use the `dist/` there is),
/// `--json FILE`, `--convert q8_0` (in the main table omp converts at load, as the app's
/// option); `--full-context` measures instead omp's memory and decode with a whole 2048-token
/// context cached, once per key/value cache type on 1 thread and with the f16 cache on 2
/// threads (unless `--no-threads`); `--paired N` measures instead omp's 2-thread
/// gain in N rounds of runs back to back: 1 thread, the threaded build on 1 thread, and 2
/// threads; `--no-native` leaves out the main table's comparison with native llama.cpp.
pub fn browser(root: &Path, args: &[String]) -> Result<()> {
    let opt = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    models::ensure_all(root)?;
    setup::npm_ci(&root.join("tools/wllama"))?;
    if !args.iter().any(|a| a == "--no-build") {
        crate::build(root)?;
    }
    util::run("cargo", &["build", "--release", "-p", "omp-cli"])?;
    let bundled = models::bundled_path(root)?;
    let dir = root.join("target/bench-models");
    std::fs::create_dir_all(&dir)?;
    let wanted: Vec<String> = match opt("--types") {
        Some(t) => t.split(',').map(str::to_string).collect(),
        None => std::iter::once("Q4_1".to_string())
            .chain(TYPES.iter().map(|t| t.to_string()))
            .collect(),
    };
    let mut urls = Vec::new();
    let mut files = Vec::new();
    for ty in &wanted {
        let file = model_file(root, &bundled, &dir, ty)?;
        let name = file.file_name().and_then(|n| n.to_str()).context("file name")?;
        urls.push(format!("/models/{name}"));
        files.push((name.to_string(), file));
    }
    // The target for the main table is relative to native llama.cpp on 1 thread, so
    // the table carries that ratio too: llama.cpp runs each file first (`--no-native` skips it).
    let main_table = !["--paired", "--full-context", "--no-native"]
        .iter()
        .any(|f| args.iter().any(|a| a == f))
        && opt("--engines").is_none_or(|e| e.split(',').any(|x| x == "omp"));
    let mut native = Vec::new();
    if main_table {
        setup::npm_ci(&root.join("tools/llamacpp"))?;
        let tokens = opt("--tokens").unwrap_or_else(|| "128".into());
        for (name, file) in &files {
            eprintln!("  llama.cpp (native) {name} 1 thread(s)");
            let out = util::output(
                "node",
                &[
                    "tools/llamacpp/bench.mjs",
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
            ("/bench/".into(), root.join("tests/bench")),
            (
                "/wllama/".into(),
                root.join("tools/wllama/node_modules/@wllama/wllama"),
            ),
        ],
        headers,
        faults: None,
    };
    let plain = start(site(vec![]))?;
    let isolated = start(site(crate::security::isolation_headers()))?;
    let mut drive = vec![
        "tests/bench/drive.mjs".to_string(),
        "--plain".into(),
        plain,
        "--models".into(),
        urls.join(","),
    ];
    if !args.iter().any(|a| a == "--no-threads") {
        drive.extend(["--isolated".into(), isolated]);
    }
    if args.iter().any(|a| a == "--full-context") {
        drive.push("--full-context".into());
    }
    if !native.is_empty() {
        drive.extend(["--native".into(), native.join(",")]);
    }
    for (flag, name) in [
        ("--runs", "--runs"),
        ("--tokens", "--tokens"),
        ("--engines", "--engines"),
        ("--json", "--json"),
        ("--paired", "--paired"),
        ("--convert", "--convert"),
    ] {
        if let Some(v) = opt(flag) {
            drive.extend([name.to_string(), v]);
        }
    }
    let refs: Vec<&str> = drive.iter().map(String::as_str).collect();
    util::run_in("node", &refs, Some(root), &[])?;
    // Without threads there is no 2-thread result to put in context.
    if !args.iter().any(|a| a == "--no-threads") {
        crate::print_compute_scaling();
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
