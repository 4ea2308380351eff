//! `cargo xtask bench`: every benchmark. Each prints numbers; none is a test.
//!
//! - `native`: `omp bench` next to native llama.cpp on the same files and prompt.
//! - `browser`: omp against wllama (llama.cpp in wasm) in headless Chromium.
//! - `kernels`: A/B timing of two engine builds in one page, and a profile of one.
//!
//! Their pages and scripts live in `bench/` (`bench/browser`, `bench/kernels`, the bare wasm
//! module `bench/kernel-module`, wllama's package in `bench/wllama`); llama.cpp's scripts are in
//! `reference/`, which the tests' reference records also come from.

mod browser;
mod kernels;
mod native;

use std::path::Path;

use anyhow::Result;
use clap::Subcommand;

/// The benchmarks.
#[derive(Subcommand)]
pub enum Verb {
    /// `omp bench` (as stored and with --convert) and llama.cpp on the same files and prompt.
    Native(native::Args),
    /// omp's worker against wllama in headless Chromium: speed, memory, thread scaling, and
    /// omp's 1-thread decode over native llama.cpp's.
    Browser(browser::Args),
    /// A/B timing of two engine builds in one browser page, or a profile of one.
    #[command(subcommand)]
    Kernels(kernels::Verb),
}

/// Runs one benchmark.
pub fn run(root: &Path, verb: Verb) -> Result<()> {
    match verb {
        Verb::Native(a) => native::run(root, &a),
        Verb::Browser(a) => browser::run(root, &a),
        Verb::Kernels(v) => kernels::run(root, v),
    }
}
