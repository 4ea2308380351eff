//! `cargo xtask fuzz [SECONDS]`: the cargo-fuzz targets in `fuzz/`, each for SECONDS (default
//! 60), starting from the corpus committed in `fuzz/corpus/<target>/`. Not part of `test`:
//! it needs the nightly toolchain and runs for as long as it is asked to. A crash leaves its
//! input in `fuzz/artifacts/` and makes the command fail; turn it into a named regression test.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::cache::Tool;
use crate::{setup, util};

const CARGO_FUZZ_VERSION: &str = "0.13.2";
const TARGETS: &[&str] = &["gguf_parse", "gguf_structured", "tokenizer", "chat_template"];

/// First inputs for an empty corpus: valid files, texts and templates to mutate from.
fn seed(target: &str, corpus: &Path) -> Result<()> {
    use omp_engine::fixtures::{tiny_llama, TinyConfig, TinyVocab, CHATML_TEMPLATE};
    let seeds: Vec<(&str, Vec<u8>)> = match target {
        "gguf_parse" => [("bpe", TinyVocab::Bpe), ("spm", TinyVocab::Spm)]
            .into_iter()
            .map(|(n, vocab)| {
                let cfg = TinyConfig { vocab, layers: 1, ..Default::default() };
                (n, tiny_llama(&cfg).to_bytes())
            })
            .collect(),
        "gguf_structured" => vec![("bpe", vec![0]), ("spm", vec![1]), ("count", vec![0, 8, 0, 0xff])],
        "tokenizer" => ["Hello world", "안녕하세요, 세계! 🌍", "<|im_start|>user\nhi<|im_end|>", "  tabs\tand\nnewlines 12345 'quotes' 3.14"]
            .iter()
            .enumerate()
            .map(|(i, t)| (["hello", "korean", "chatml", "spaces"][i], t.as_bytes().to_vec()))
            .collect(),
        "chat_template" => vec![
            ("chatml", CHATML_TEMPLATE.as_bytes().to_vec()),
            ("llama2", b"{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}[INST] {{ m['content'] }} [/INST]{% else %}{{ m['content'] }}{{ eos_token }}{% endif %}{% endfor %}".to_vec()),
            ("loop", b"{% for i in range(1000000) %}{{ i }}{% endfor %}".to_vec()),
        ],
        _ => vec![],
    };
    for (name, bytes) in seeds {
        std::fs::write(corpus.join(format!("seed-{name}")), bytes)?;
    }
    Ok(())
}

/// `cargo xtask fuzz` flags.
#[derive(clap::Args)]
pub struct Args {
    /// Seconds per target.
    #[arg(default_value_t = 60)]
    seconds: u64,
}

/// Installs what fuzzing needs, seeds empty corpora, runs every target and prints a table.
pub fn run(root: &Path, args: &Args) -> Result<()> {
    let seconds = args.seconds;
    // The same pinned nightly as the threaded worker build, so a machine needs only one.
    setup::nightly()?;
    let toolchain = format!("+{}", setup::NIGHTLY);
    let cargo_fuzz = Tool {
        krate: "cargo-fuzz",
        version: CARGO_FUZZ_VERSION.into(),
        bin: "cargo-fuzz",
        locked: true,
        toolchain: Some(setup::NIGHTLY),
    };
    cargo_fuzz.ensure()?;
    let path = format!(
        "{}:{}",
        util::s(&cargo_fuzz.bin_dir()),
        std::env::var("PATH").unwrap_or_default()
    );
    let dir = root.join("fuzz");
    let mut rows = Vec::new();
    for target in TARGETS {
        let corpus = dir.join("corpus").join(target);
        std::fs::create_dir_all(&corpus)?;
        if std::fs::read_dir(&corpus)?.next().is_none() {
            seed(target, &corpus)?;
        }
        let out = Command::new("cargo")
            .current_dir(&dir)
            .env("PATH", &path)
            .args([
                &toolchain,
                "fuzz",
                "run",
                target,
                "--",
                &format!("-max_total_time={seconds}"),
            ])
            .output()
            .with_context(|| format!("running cargo fuzz for {target}"))?;
        let log = String::from_utf8_lossy(&out.stderr);
        // libFuzzer ends with "Done 123456 runs in 60 second(s)".
        let done = log
            .lines()
            .rev()
            .find(|l| l.starts_with("Done "))
            .unwrap_or("")
            .to_string();
        let corpus_files = std::fs::read_dir(&corpus)?.count();
        if !out.status.success() {
            eprintln!("{log}");
            bail!("fuzz target {target} failed: see fuzz/artifacts/{target}/");
        }
        rows.push((target, done, corpus_files));
    }
    println!("{:<18} {:<40} {:>8}", "target", "libFuzzer", "corpus");
    for (t, done, n) in rows {
        println!("{t:<18} {done:<40} {n:>8}");
    }
    Ok(())
}
