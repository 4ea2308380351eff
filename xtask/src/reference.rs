//! `cargo xtask reference`: regenerates the llama.cpp reference records the Rust tests check
//! the engine against, with node-llama-cpp: the bundled model's tokenization, chat template and
//! greedy continuations (`crates/engine/tests/data/llamacpp-smollm2-135m-q4_1.json`), Gemma 3
//! 270M's tokenization and raw-prompt continuations (`llamacpp-gemma3-270m-q4_k_m.json`), and the
//! next-token choices on the tiny model of every architecture
//! (`crates/engine/tests/data/llamacpp-archs.json`).

use std::path::Path;

use anyhow::{Context, Result};
use omp_engine::fixtures::{reference_models, reference_tokens, tiny};

use crate::{models, setup, util};

/// Positions each tiny model is fed (the test wants at least 256 predictions).
const POSITIONS: usize = 300;

/// Which records to make.
#[derive(clap::Args)]
pub struct Args {
    /// Only this record (default: all).
    #[arg(long, value_enum)]
    only: Option<Record>,
}

/// One reference record.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Record {
    /// The bundled model: tokenization, chat template, greedy continuations.
    Bundled,
    /// Gemma 3 270M (a base model): tokenization, greedy continuations of raw prompts.
    Gemma3,
    /// The tiny model of every architecture: teacher-forced next-token choices.
    Archs,
}

/// Records what `args` asks for.
pub fn run(root: &Path, args: &Args) -> Result<()> {
    setup::npm_ci(&root.join("reference"))?;
    let all = args.only.is_none();
    if all || args.only == Some(Record::Bundled) {
        bundled(root)?;
    }
    if all || args.only == Some(Record::Gemma3) {
        gemma3(root)?;
    }
    if all || args.only == Some(Record::Archs) {
        archs(root)?;
    }
    Ok(())
}

/// Tokenization and raw-prompt continuations of the Gemma 3 270M file.
fn gemma3(root: &Path) -> Result<()> {
    models::ensure_all(root)?;
    util::run(
        "node",
        &[
            "reference/record-base.mjs",
            "--model",
            "public/models/gemma-3-270m-q4_k_m.gguf",
            "--data",
            "crates/engine/tests/data",
            "--out",
            "crates/engine/tests/data/llamacpp-gemma3-270m-q4_k_m.json",
        ],
    )
}

/// Tokenization, template and greedy continuations of the bundled model.
fn bundled(root: &Path) -> Result<()> {
    models::ensure_all(root)?;
    let model = models::bundled_path(root)?;
    util::run(
        "node",
        &[
            "reference/record.mjs",
            "--model",
            util::s(&model),
            "--data",
            "crates/engine/tests/data",
            "--out",
            "crates/engine/tests/data/llamacpp-smollm2-135m-q4_1.json",
        ],
    )
}

/// Writes every architecture's tiny model and its token sequence, then records llama.cpp's
/// choices on them.
fn archs(root: &Path) -> Result<()> {
    let dir = root.join("target/arch-fixtures");
    std::fs::remove_dir_all(&dir).ok();
    std::fs::create_dir_all(&dir)?;
    let mut tokens = serde_json::Map::new();
    for (key, arch, shape) in reference_models() {
        let w = tiny(arch, &shape).with_context(|| format!("{key}: no tiny model"))?;
        let bytes = w.to_bytes();
        let gguf = omp_engine::gguf::Gguf::parse(&bytes)?;
        let vocab = omp_engine::tokenizer::Tokenizer::from_gguf(&gguf)?.vocab_size();
        std::fs::write(dir.join(format!("{key}.gguf")), &bytes)?;
        tokens.insert(
            key.clone(),
            serde_json::json!(reference_tokens(&key, vocab, POSITIONS)),
        );
    }
    std::fs::write(
        dir.join("tokens.json"),
        serde_json::Value::Object(tokens).to_string(),
    )?;
    util::run(
        "node",
        &[
            "reference/record-archs.mjs",
            "--dir",
            util::s(&dir),
            "--out",
            "crates/engine/tests/data/llamacpp-archs.json",
        ],
    )
}
