//! `cargo xtask build`: the release build of the app into `dist/`, offline.
//!
//! The app (Yew, `--target web`) and three builds of the engine worker (`--target no-modules`:
//! plain simd128, relaxed SIMD, and threads) go through the pinned wasm-bindgen and npm's
//! binaryen `wasm-opt`; `www/index.html` is filled in with content-hashed file names and
//! subresource integrity, and its boot code is a file, never an inline script, so the
//! Content-Security-Policy needs no `'unsafe-inline'`. `www/worker-loader.js` picks a worker
//! build in the browser. Everything is written to a staging directory that replaces `dist/`
//! only when complete, so a failed build never leaves a half-written site.
//!
//! Why not Trunk: it did the same steps plus an inline boot script that had to be moved out
//! afterwards, and building Trunk from source took 6.5 minutes of every cold CI run.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use sha2::{Digest, Sha384};

use crate::{setup, util};

/// The crates that compile for wasm32 (clippy checks them for that target too).
pub const WASM_PACKAGES: [&str; 5] = [
    "omp-engine",
    "omp-worker",
    "omp-app",
    "omp-lessons",
    "omp-kernel-bench",
];

/// The flags of every wasm build (`.cargo/config.toml`), plus relaxed SIMD.
pub const RELAXED_RUSTFLAGS: &str =
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

/// A build of the engine worker.
struct WorkerBuild {
    /// The files' stem in `dist/` (`NAME.js`, `NAME_bg.wasm`), as `worker-loader.js` names it.
    name: &'static str,
    /// Its own target directory under `target/` (other flags), or `None` for the default one.
    target_dir: Option<&'static str>,
    rustflags: Option<&'static str>,
    /// Nightly with the standard library rebuilt (it must be, for atomics).
    build_std: bool,
}

/// The worker builds `worker-loader.js` chooses from.
const WORKER_BUILDS: [WorkerBuild; 3] = [
    WorkerBuild {
        name: "worker",
        target_dir: None,
        rustflags: None,
        build_std: false,
    },
    WorkerBuild {
        name: "worker-relaxed",
        target_dir: Some("wasm-relaxed"),
        rustflags: Some(RELAXED_RUSTFLAGS),
        build_std: false,
    },
    WorkerBuild {
        name: "worker-threads",
        target_dir: Some("wasm-threads"),
        rustflags: Some(THREADS_RUSTFLAGS),
        build_std: true,
    },
];

/// Static files copied as they are (the loader and the thread script are fetched by name).
const COPIED: [&str; 2] = ["worker-loader.js", "worker-thread.js"];

/// Builds `dist/` (the tools must be set up).
pub fn app(root: &Path) -> Result<()> {
    let stage = root.join("target/dist-staging");
    std::fs::remove_dir_all(&stage).ok();
    std::fs::create_dir_all(&stage)?;
    let release = root.join("target/wasm32-unknown-unknown/release");

    // The app and the plain worker share the default target directory (same flags).
    util::run(
        "cargo",
        &[
            "build",
            "--release",
            "--target",
            "wasm32-unknown-unknown",
            "-p",
            "omp-app",
            "--bin",
            "app",
            "-p",
            "omp-worker",
            "--bin",
            "worker",
        ],
    )?;
    bindgen(root, &release.join("app.wasm"), &stage, "app", "web")?;
    wasm_opt(root, &stage.join("app_bg.wasm"), &["-Oz"])?;
    for b in &WORKER_BUILDS {
        let wasm = match b.target_dir {
            None => release.join("worker.wasm"),
            Some(_) => extra_worker(root, b)?,
        };
        bindgen(root, &wasm, &stage, b.name, "no-modules")?;
        let opt: &[&str] = if b.build_std {
            &["-O3", "--enable-threads"]
        } else {
            &["-O3"]
        };
        wasm_opt(root, &stage.join(format!("{}_bg.wasm", b.name)), opt)?;
    }
    for f in COPIED {
        std::fs::copy(root.join("www").join(f), stage.join(f)).with_context(|| format!("www/{f}"))?;
    }

    // Content-hashed names for what the page itself loads, so a new build is never mixed with
    // a cached old one.
    let css = hashed_copy(&root.join("www/styles.css"), &stage, "styles", "css")?;
    let app_js = std::fs::read(stage.join("app.js"))?;
    let app_wasm = std::fs::read(stage.join("app_bg.wasm"))?;
    let tag = short_hash(&[&app_js, &app_wasm]);
    let js = format!("app-{tag}.js");
    let wasm = format!("app-{tag}_bg.wasm");
    std::fs::rename(stage.join("app.js"), stage.join(&js))?;
    std::fs::rename(stage.join("app_bg.wasm"), stage.join(&wasm))?;
    let boot_code = format!("import init from './{js}';\nawait init({{ module_or_path: './{wasm}' }});\n");
    let boot = format!("boot-{}.js", short_hash(&[boot_code.as_bytes()]));
    std::fs::write(stage.join(&boot), &boot_code)?;

    let assets = Assets {
        css: (css.clone(), sri(&std::fs::read(stage.join(&css))?)),
        js: (js, sri(&app_js)),
        wasm: (wasm, sri(&app_wasm)),
        boot: (boot, sri(boot_code.as_bytes())),
    };
    let template = std::fs::read_to_string(root.join("www/index.html"))?;
    std::fs::write(stage.join("index.html"), render_index(&template, &assets)?)?;

    let dist = root.join("dist");
    std::fs::remove_dir_all(&dist).ok();
    std::fs::rename(&stage, &dist).context("moving the build into dist/")?;
    Ok(())
}

/// Builds one worker with its own flags in its own target directory; returns its wasm.
fn extra_worker(root: &Path, build: &WorkerBuild) -> Result<PathBuf> {
    let dir = build
        .target_dir
        .context("an extra worker build has its own target directory")?;
    let target_dir = root.join("target").join(dir);
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
    let flags = build.rustflags.unwrap_or_default();
    util::run_in(
        "cargo",
        &args,
        Some(root),
        &[("CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS", flags)],
    )?;
    Ok(target_dir.join("wasm32-unknown-unknown/release/worker.wasm"))
}

/// wasm-bindgen's JS glue and final wasm for `wasm`, as `out/NAME.js` and `out/NAME_bg.wasm`.
fn bindgen(root: &Path, wasm: &Path, out: &Path, name: &str, target: &str) -> Result<()> {
    let mut args = vec!["--target", target, "--no-typescript", "--out-dir", util::s(out)];
    args.extend(["--out-name", name]);
    if target == "web" {
        // Closures handed to JS are freed when JS drops them.
        args.push("--weak-refs");
    }
    args.push(util::s(wasm));
    util::run(util::s(&setup::wasm_bindgen(root)?.path("wasm-bindgen")), &args)
}

fn wasm_opt(root: &Path, wasm: &Path, flags: &[&str]) -> Result<()> {
    let mut args = flags.to_vec();
    args.extend([util::s(wasm), "-o", util::s(wasm)]);
    util::run(util::s(&setup::node_bin(root).join("wasm-opt")), &args)
}

/// Copies `src` into `dir` as `STEM-<hash>.EXT`; returns the new name.
fn hashed_copy(src: &Path, dir: &Path, stem: &str, ext: &str) -> Result<String> {
    let bytes = std::fs::read(src).with_context(|| src.display().to_string())?;
    let name = format!("{stem}-{}.{ext}", short_hash(&[&bytes]));
    std::fs::write(dir.join(&name), bytes)?;
    Ok(name)
}

/// The first 16 hex digits of the SHA-384 of `parts` in order.
fn short_hash(parts: &[&[u8]]) -> String {
    let mut h = Sha384::new();
    for p in parts {
        h.update(p);
    }
    h.finalize()[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// A subresource-integrity value (`sha384-<base64>`).
fn sri(bytes: &[u8]) -> String {
    format!("sha384-{}", base64(&Sha384::digest(bytes)))
}

/// Standard base64 with padding.
fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                s.push(char::from(ABC[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                s.push('=');
            }
        }
    }
    s
}

/// The files the page loads, each with its integrity value.
struct Assets {
    css: (String, String),
    js: (String, String),
    wasm: (String, String),
    boot: (String, String),
}

/// Where the build puts the page's links in `www/index.html`.
const MARKER: &str = "<!-- omp:assets -->";

/// `template` with [`MARKER`] replaced by the stylesheet, the preloads and the boot module.
fn render_index(template: &str, a: &Assets) -> Result<String> {
    anyhow::ensure!(
        template.matches(MARKER).count() == 1,
        "www/index.html must hold {MARKER} exactly once"
    );
    anyhow::ensure!(
        !template.contains("<script"),
        "www/index.html must not hold a script: the build adds the boot module"
    );
    let links = format!(
        "<link rel=\"stylesheet\" href=\"./{css}\" integrity=\"{css_i}\">\n    \
         <link rel=\"modulepreload\" href=\"./{js}\" integrity=\"{js_i}\">\n    \
         <link rel=\"preload\" href=\"./{wasm}\" as=\"fetch\" type=\"application/wasm\" crossorigin=\"anonymous\" integrity=\"{wasm_i}\">\n    \
         <script type=\"module\" src=\"./{boot}\" integrity=\"{boot_i}\"></script>",
        css = a.css.0,
        css_i = a.css.1,
        js = a.js.0,
        js_i = a.js.1,
        wasm = a.wasm.0,
        wasm_i = a.wasm.1,
        boot = a.boot.0,
        boot_i = a.boot.1,
    );
    Ok(template.replace(MARKER, &links))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_standard_vectors() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }

    #[test]
    fn the_page_gets_hashed_files_with_integrity_and_no_inline_script() {
        let a = Assets {
            css: ("styles-1.css".into(), "sha384-a".into()),
            js: ("app-2.js".into(), "sha384-b".into()),
            wasm: ("app-2_bg.wasm".into(), "sha384-c".into()),
            boot: ("boot-3.js".into(), "sha384-d".into()),
        };
        let page = render_index("<head>\n    <!-- omp:assets -->\n</head>", &a).unwrap();
        assert!(page.contains("<script type=\"module\" src=\"./boot-3.js\" integrity=\"sha384-d\"></script>"));
        assert!(page.contains("href=\"./styles-1.css\" integrity=\"sha384-a\""));
        assert!(page.contains("rel=\"preload\" href=\"./app-2_bg.wasm\""));
        // Every script has a src: nothing inline.
        assert_eq!(
            page.matches("<script").count(),
            page.matches("<script type=\"module\" src=").count()
        );
        assert!(render_index("<head></head>", &a).is_err());
        assert!(render_index("<!-- omp:assets --><script>x()</script>", &a).is_err());
    }

    /// `www/index.html` leaves the links to the build.
    #[test]
    fn the_real_template_has_one_marker() {
        let t = std::fs::read_to_string(crate::util::root().join("www/index.html")).unwrap();
        assert_eq!(t.matches(MARKER).count(), 1);
        assert!(!t.contains("data-trunk"));
    }
}
