//! `cargo xtask reference`: regenerates the llama.cpp reference records the Rust tests check
//! the engine against (`crates/engine/tests/data/llamacpp-*.json`), with node-llama-cpp.

use std::path::Path;

use anyhow::Result;

use crate::{models, setup, util};

/// Records tokenization, template and greedy continuations of the bundled model.
pub fn run(root: &Path) -> Result<()> {
    models::ensure_all(root)?;
    setup::npm_ci(&root.join("reference"))?;
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
