//! `cargo xtask`: everything the README's two commands need, installed idempotently.
//!
//! - `cargo xtask serve`: set up, build the app and serve it at http://127.0.0.1:8080
//! - `cargo xtask test`: set up, then every check and test (what `.ci/run` runs)
//! - `cargo xtask models`: fetch and verify the bundled models only
//! - `cargo xtask reference`: regenerate the llama.cpp reference records
//! - `cargo xtask bench-native [--threads 1,2] [FILES]`: `omp bench` next to llama.cpp on the same files
//! - `cargo xtask bench-browser`: omp against wllama in headless Chromium (see `bench.rs`)
//! - `cargo xtask bench-kernels`: A/B timing of two engine builds in one page (see `kernels.rs`)

mod bench;
mod faults;
mod fuzz;
mod kernels;
mod models;
mod security;
mod server;
mod setup;
mod util;

use anyhow::{bail, Context, Result};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = util::root();
    std::env::set_current_dir(&root)?;
    match args.first().map(String::as_str) {
        Some("models") => models::ensure_all(&root),
        Some("setup") => setup::all(&root),
        Some("test") => test(&root),
        Some("serve") => serve(&root, &args[1..]),
        Some("build") => build(&root),
        // The browser tests alone, against the `dist/` there is (after `cargo xtask build`).
        Some("test-browser") => browser_tests(&root),
        Some("reference") => reference(&root),
        Some("bench-native") => bench_native(&root, &args[1..]),
        Some("fuzz") => fuzz::run(&root, &args[1..]),
        Some("bench-browser") => bench::browser(&root, &args[1..]),
        Some("bench-kernels") => kernels::run(&root, &args[1..]),
        _ => {
            eprintln!(
                "usage: cargo xtask <serve|test|test-browser|build|setup|models|reference|bench-native|bench-browser|bench-kernels|fuzz>"
            );
            bail!("unknown or missing command")
        }
    }
}

/// Every check: formatting, lints (native and wasm32), the Rust tests (unit, CLI and the
/// llama.cpp reference checks on the bundled model), the release build, and the browser tests
/// in headless Chromium against it.
fn test(root: &std::path::Path) -> Result<()> {
    setup::all(root)?;
    util::run("cargo", &["fmt", "--all", "--", "--check"])?;
    util::run(
        "cargo",
        &["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"],
    )?;
    util::run(
        "cargo",
        &[
            "clippy",
            "--target",
            "wasm32-unknown-unknown",
            "-p",
            "omp-engine",
            "-p",
            "omp-worker",
            "-p",
            "omp-app",
            "-p",
            "omp-lessons",
            "-p",
            "omp-kernel-bench",
            "--",
            "-D",
            "warnings",
        ],
    )?;
    util::run("cargo", &["test", "--workspace"])?;
    wasm_tests(root)?;
    build(root)?;
    browser_tests(root)?;
    println!("xtask: all tests passed");
    Ok(())
}

/// The release build of the app into `dist/`, offline.
fn build(root: &std::path::Path) -> Result<()> {
    setup::all(root)?;
    let path = setup::tool_path(root);
    let trunk = setup::tools_bin(root).join("trunk");
    util::run_in(
        util::s(&trunk),
        &["build", "--release"],
        Some(root),
        &[("PATH", &path)],
    )?;
    security::externalize_inline_scripts(&root.join("dist"))?;
    for b in &WORKER_BUILDS {
        extra_worker(root, b)?;
    }
    Ok(())
}

/// The flags of every wasm build (`.cargo/config.toml`), plus relaxed SIMD.
pub(crate) const RELAXED_RUSTFLAGS: &str =
    "-C target-feature=+simd128,+relaxed-simd --cfg getrandom_backend=\"wasm_js\"";

/// The relaxed build's flags plus atomics and a shared memory that the page creates (imported),
/// with the thread-local storage exports wasm-bindgen's thread support needs; the maximum is
/// the whole 4 GiB of wasm32 (a shared memory must declare one).
const THREADS_RUSTFLAGS: &str =
    "-C target-feature=+simd128,+relaxed-simd,+atomics,+bulk-memory,+mutable-globals \
     -C link-arg=--shared-memory -C link-arg=--import-memory -C link-arg=--max-memory=4294967296 \
     -C link-arg=--export=__wasm_init_tls -C link-arg=--export=__tls_size \
     -C link-arg=--export=__tls_align -C link-arg=--export=__tls_base \
     --cfg getrandom_backend=\"wasm_js\"";

/// A worker build besides Trunk's plain one.
struct WorkerBuild {
    /// The files' stem in `dist/` (`NAME.js`, `NAME_bg.wasm`), as `worker-loader.js` names it.
    name: &'static str,
    /// Target directory under `target/`.
    target_dir: &'static str,
    rustflags: &'static str,
    /// Nightly with the standard library rebuilt (it must be, for atomics).
    build_std: bool,
}

/// The extra worker builds `worker-loader.js` chooses from.
const WORKER_BUILDS: [WorkerBuild; 2] = [
    WorkerBuild {
        name: "worker-relaxed",
        target_dir: "wasm-relaxed",
        rustflags: RELAXED_RUSTFLAGS,
        build_std: false,
    },
    WorkerBuild {
        name: "worker-threads",
        target_dir: "wasm-threads",
        rustflags: THREADS_RUSTFLAGS,
        build_std: true,
    },
];

/// Builds one extra worker next to Trunk's plain one in `dist/`, with the same wasm-bindgen
/// and wasm-opt as Trunk's, in its own target directory.
fn extra_worker(root: &std::path::Path, build: &WorkerBuild) -> Result<()> {
    let target_dir = root.join("target").join(build.target_dir);
    let toolchain = format!("+{}", setup::NIGHTLY);
    let mut args = vec![];
    if build.build_std {
        args.push(toolchain.as_str());
    }
    args.extend([
        "build",
        "--release",
        "--target",
        "wasm32-unknown-unknown",
        "-p",
        "omp-worker",
        "--bin",
        "worker",
        "--target-dir",
        util::s(&target_dir),
    ]);
    if build.build_std {
        args.extend(["-Z", "build-std=panic_abort,std"]);
    }
    util::run_in(
        "cargo",
        &args,
        Some(root),
        &[("CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS", build.rustflags)],
    )?;
    let wasm = target_dir.join("wasm32-unknown-unknown/release/worker.wasm");
    let dist = root.join("dist");
    util::run(
        util::s(&setup::tools_bin(root).join("wasm-bindgen")),
        &[
            "--target",
            "no-modules",
            "--no-typescript",
            "--out-dir",
            util::s(&dist),
            "--out-name",
            build.name,
            util::s(&wasm),
        ],
    )?;
    let out = dist.join(format!("{}_bg.wasm", build.name));
    let mut opt = vec!["-O3"];
    if build.build_std {
        opt.push("--enable-threads");
    }
    opt.extend([util::s(&out), "-o", util::s(&out)]);
    util::run(util::s(&root.join("tests/node_modules/.bin/wasm-opt")), &opt)
}

/// The site as the server presents it, with the security headers of `policy`.
fn site(root: &std::path::Path, policy: &security::Policy) -> server::Site {
    server::Site {
        mounts: vec![
            ("/models/".into(), root.join("public/models")),
            ("/".into(), root.join("dist")),
        ],
        headers: policy.headers(),
        faults: None,
    }
}

/// Builds, then serves at http://127.0.0.1:8080 (or `--port N`) until interrupted.
fn serve(root: &std::path::Path, args: &[String]) -> Result<()> {
    let port = args
        .iter()
        .position(|a| a == "--port")
        .and_then(|i| args.get(i + 1))
        .and_then(|p| p.parse().ok())
        .unwrap_or(8080);
    if !args.iter().any(|a| a == "--no-build") {
        build(root)?;
    }
    // `--faults` adds the browser tests' fault-injecting routes (for running them by hand).
    let faults = args
        .iter()
        .any(|a| a == "--faults")
        .then(|| root.join("public/models"));
    let (port, listener) = server::bind(port)?;
    println!("Open Model Playground: http://127.0.0.1:{port}/  (Ctrl-C stops)");
    let policy = security::Policy::from_args(args)?;
    server::serve(
        listener,
        server::Site {
            faults,
            ..site(root, &policy)
        },
    );
    Ok(())
}

/// The GGUF parser's malformed-file corpus and the kernel tests again, as 32-bit wasm in headless Chromium
/// (wasm-bindgen-test; browser flags in `crates/engine/webdriver.json`).
fn wasm_tests(root: &std::path::Path) -> Result<()> {
    let runner = setup::tools_bin(root).join("wasm-bindgen-test-runner");
    let relaxed_dir = root.join("target/wasm-relaxed");
    // The parser's corpus, the simd128 kernels against their scalar definition, and the
    // relaxed-SIMD kernels (the second worker build's) against it too.
    for (filter, relaxed) in [("gguf::", false), ("kernels::", false), ("kernels::", true)] {
        // Debug builds: overflow checks and debug assertions on, as 32-bit wasm.
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
            env.push(("CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS", RELAXED_RUSTFLAGS));
        }
        util::run_in("cargo", &args, Some(root), &env)?;
    }
    Ok(())
}

/// Runs `tests/e2e` in headless Chromium against the built app on a free port.
fn browser_tests(root: &std::path::Path) -> Result<()> {
    // A course page that embeds the app, and a page on a third origin (different ports are
    // different origins), for the embed and postMessage tests.
    let pages = || server::Site {
        mounts: vec![("/".into(), root.join("tests/e2e/host"))],
        headers: vec![],
        faults: None,
    };
    let host = start(pages())?;
    let third = start(pages())?;
    // The app as deployed, allowing the course page (only) to embed it.
    // Not isolated, as when a deployer leaves isolation off to be embeddable anywhere: the
    // single-threaded builds.
    let policy = security::Policy {
        frame_ancestors: format!("'self' {}", host.trim_end_matches('/')),
        isolated: false,
        ..Default::default()
    };
    let base = start(server::Site {
        faults: Some(root.join("public/models")),
        ..site(root, &policy)
    })?;
    // As `cargo xtask serve` deploys it: cross-origin isolated, so the threaded build.
    let isolated = start(site(root, &security::Policy::default()))?;
    let model = models::bundled_path(root)?;
    util::run("cargo", &["build", "--release", "-p", "omp-cli"])?;
    util::run_in(
        "node",
        &["tests/e2e/run.mjs"],
        Some(root),
        &[
            ("OMP_BASE_URL", &base),
            ("OMP_HOST_URL", &host),
            ("OMP_THIRD_URL", &third),
            ("OMP_ISOLATED_URL", &isolated),
            ("OMP_MODEL", util::s(&model)),
            ("OMP_BIN", "target/release/omp"),
        ],
    )
}

/// Serves `site` on a free port in a background thread; returns its base URL.
fn start(site: server::Site) -> Result<String> {
    let (port, listener) = server::bind(0)?;
    std::thread::spawn(move || server::serve(listener, site));
    Ok(format!("http://127.0.0.1:{port}/"))
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

/// One table: omp (as stored and with --convert) and llama.cpp on the same files and prompt,
/// at each thread count of `--threads` (a comma list, default 1); then this machine's own
/// 2-thread compute scaling (see [`compute_scaling`]).
fn bench_native(root: &std::path::Path, args: &[String]) -> Result<()> {
    let mut threads = vec![1usize];
    let mut files = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--threads" {
            let list = it.next().context("--threads needs a list, e.g. 1,2")?;
            threads = list
                .split(',')
                .map(|t| t.trim().parse::<usize>().ok().filter(|&t| t > 0))
                .collect::<Option<Vec<_>>>()
                .with_context(|| format!("--threads {list}: expected counts like 1,2"))?;
        } else {
            files.push(a.clone());
        }
    }
    models::ensure_all(root)?;
    setup::npm_ci(&root.join("tools/llamacpp"))?;
    util::run("cargo", &["build", "--release", "-p", "omp-cli"])?;
    if files.is_empty() {
        files.push(util::s(&models::bundled_path(root)?).to_string());
    }
    println!(
        "{:<48} {:>8} {:>14} {:>14}",
        "file / engine", "threads", "prefill tok/s", "decode tok/s"
    );
    let row = |label: String, t: usize, v: &serde_json::Value| {
        println!(
            "{:<48} {:>8} {:>14.1} {:>14.1}",
            label,
            t,
            v["prefill_tokens_per_s"].as_f64().unwrap_or(0.0),
            v["decode_tokens_per_s"].as_f64().unwrap_or(0.0)
        );
    };
    for f in &files {
        let name = std::path::Path::new(f)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or(f);
        for &t in &threads {
            let ts = t.to_string();
            for (label, extra) in [("omp", None), ("omp --convert", Some("--convert"))] {
                let mut args = vec!["bench", f.as_str(), "--threads", ts.as_str(), "--json"];
                args.extend(extra);
                let v = serde_json::from_str(&util::output("target/release/omp", &args)?)?;
                row(format!("{name} / {label}"), t, &v);
            }
            let v = serde_json::from_str(&util::output(
                "node",
                &["tools/llamacpp/bench.mjs", "--model", f, "--threads", ts.as_str()],
            )?)?;
            row(format!("{name} / llama.cpp"), t, &v);
        }
    }
    print_compute_scaling();
    Ok(())
}

/// Prints [`compute_scaling`] (after a benchmark's table, which it puts in context).
pub(crate) fn print_compute_scaling() {
    let (one, two) = compute_scaling();
    println!(
        "this machine, 2 threads of pure arithmetic: {:.2}x the work of 1 thread per second \
         ({one:.0} and {two:.0} M steps/s), a rough ceiling for 2-thread speed-ups measured now",
        two / one
    );
}

/// Steps per second (millions) of a register-only arithmetic loop on 1 thread, and on 2
/// threads together: how much two threads can gain on this machine before any memory,
/// synchronisation or engine cost. Why: on shared cloud cores two threads can give well under
/// 2x (measured here: 1.6-1.95x, by the minute), which roughly bounds every 2-thread target
/// (roughly: a single benchmark round can land above it). Best of 3 rounds of about a second
/// each.
fn compute_scaling() -> (f64, f64) {
    fn spin(steps: u64) -> u64 {
        // Four independent multiply-add chains (wrapping), kept opaque to the optimiser.
        let mut a = [1u64, 2, 3, 4];
        for i in 0..steps {
            for (k, x) in a.iter_mut().enumerate() {
                *x = x.wrapping_mul(6364136223846793005).wrapping_add(i ^ k as u64);
            }
        }
        std::hint::black_box(a).iter().fold(0, |s, x| s ^ x)
    }
    let rate = |threads: usize| {
        let t0 = std::time::Instant::now();
        let round = std::time::Duration::from_secs(1);
        let steps: u64 = std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|_| {
                    s.spawn(|| {
                        let mut done = 0u64;
                        while t0.elapsed() < round {
                            spin(std::hint::black_box(100_000));
                            done += 100_000;
                        }
                        done
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap_or(0)).sum()
        });
        steps as f64 / t0.elapsed().as_secs_f64() / 1e6
    };
    let best = |threads| (0..3).map(|_| rate(threads)).fold(0.0, f64::max);
    (best(1), best(2))
}
