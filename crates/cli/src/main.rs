//! `omp`: the Open Model Playground engine on the command line.
//!
//! Exit codes: 0 on success, 2 for any bad input or bad file (with one `error: ...` line on
//! stderr).

mod bench;
mod commands;

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// Run small open language models (GGUF) with the same engine as the browser playground.
#[derive(Parser, Debug)]
#[command(name = "omp", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Describe a model: architecture, size, tensor types, tokenizer, memory estimate.
    Inspect {
        /// Path to a .gguf file.
        model: String,
        #[command(flatten)]
        load: LoadArgs,
        /// Also list every metadata key.
        #[arg(long)]
        metadata: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Turn text into token ids.
    Tokenize {
        /// Path to a .gguf file.
        model: String,
        /// Text to tokenize.
        #[arg(long)]
        text: String,
        /// Parse special tokens written in the text (e.g. `<|im_start|>`).
        #[arg(long)]
        special: bool,
        /// Add BOS/EOS when the model asks for them.
        #[arg(long)]
        add_special: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Generate text.
    Generate(GenerateArgs),
    /// Teacher-forced log-probabilities of a continuation.
    Score {
        /// Path to a .gguf file.
        model: String,
        /// Prompt token ids (comma- or space-separated).
        #[arg(long)]
        prompt_ids: String,
        /// Continuation token ids to score.
        #[arg(long)]
        ids: String,
        #[command(flatten)]
        load: LoadArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Measure prefill and decode speed.
    Bench(bench::BenchArgs),
    /// Re-quantize a model's matrices to another type.
    Quantize {
        /// Input .gguf file.
        input: String,
        /// Output .gguf file.
        output: String,
        /// Target type: q4_0, q4_1, q5_0, q5_1, q8_0, q2_k, q4_k, q6_k, f16.
        #[arg(long = "type")]
        ty: String,
    },
}

/// How to load a model.
#[derive(Args, Debug, Clone)]
struct LoadArgs {
    /// Convert slow weight types at load time (`q8_0` when given without a value).
    #[arg(long, num_args = 0..=1, default_missing_value = "q8_0", value_name = "TYPE")]
    convert: Option<String>,
    /// Key/value cache storage: f16 (as llama.cpp by default) or q8_0 (about half the memory).
    #[arg(long, default_value = "f16", value_name = "TYPE")]
    kv_cache: String,
    /// Context length to reserve.
    #[arg(long, default_value_t = 2048)]
    ctx: u32,
}

/// Options of `omp generate`.
#[derive(Args, Debug, Clone)]
struct GenerateArgs {
    /// Path to a .gguf file.
    model: String,
    /// The prompt.
    #[arg(long)]
    prompt: String,
    /// Wrap the prompt as a user message with the model's chat template.
    #[arg(long)]
    chat: bool,
    /// System prompt (implies --chat).
    #[arg(long)]
    system: Option<String>,
    /// Tokens to generate at most.
    #[arg(long, default_value_t = 256)]
    max_tokens: u32,
    /// Sampling temperature (0 = greedy).
    #[arg(long, default_value_t = 0.8)]
    temperature: f32,
    /// Top-k filter (0 = off).
    #[arg(long, default_value_t = 40)]
    top_k: u32,
    /// Top-p filter (1 = off).
    #[arg(long, default_value_t = 0.95)]
    top_p: f32,
    /// Min-p filter (0 = off).
    #[arg(long, default_value_t = 0.05)]
    min_p: f32,
    /// Repeat penalty (1 = off).
    #[arg(long, default_value_t = 1.0)]
    repeat_penalty: f32,
    /// Tokens the repeat penalty looks back over.
    #[arg(long, default_value_t = 64)]
    repeat_last_n: u32,
    /// Random seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Stop when the text contains this string (repeatable).
    #[arg(long)]
    stop: Vec<String>,
    /// Threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    #[command(flatten)]
    load: LoadArgs,
    /// Print one JSON object instead of streaming text.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match commands::run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let msg = format!("{e:#}").replace('\n', " ");
            eprintln!("error: {msg}");
            ExitCode::from(2)
        }
    }
}
