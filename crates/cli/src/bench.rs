//! `omp bench`: prefill and decode speed on a fixed chat prompt, as the browser benchmark
//! measures it (greedy, the same prompt, a warm-up run first).

use anyhow::Result;
use clap::Args;
use omp_engine::clock::default_clock;
use omp_engine::Step;
use omp_protocol::{ChatMessage, GenStats, SamplingParams};
use serde_json::json;

use crate::commands::{load_model, set_threads};
use crate::LoadArgs;

/// The benchmark's user message: 17 prompt tokens with SmolLM2's template and no system prompt
/// would be too few to measure prefill, so the template's default system prompt is kept.
pub const BENCH_PROMPT: &str = "Write a short story about a robot who learns to paint.";

/// Options of `omp bench`.
#[derive(Args, Debug, Clone)]
pub(crate) struct BenchArgs {
    /// Path to a .gguf file.
    model: String,
    /// Threads.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Tokens to generate per run.
    #[arg(long, default_value_t = 128)]
    tokens: u32,
    /// Measured runs (after one warm-up run).
    #[arg(long, default_value_t = 3)]
    runs: u32,
    #[command(flatten)]
    load: LoadArgs,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(a: &BenchArgs) -> Result<()> {
    set_threads(Some(a.threads));
    let clock = default_clock();
    let t0 = clock.now_ms();
    let mut model = load_model(&a.model, &a.load)?;
    let load_ms = clock.now_ms() - t0;
    // A base model takes the text itself, as the app sends it (`Model::encode_prompt`).
    let prompt = model.encode_prompt(&[ChatMessage::new("user", BENCH_PROMPT)])?;
    let mut params = SamplingParams::greedy(a.tokens);
    params.stop.clear();
    let mut runs: Vec<GenStats> = Vec::new();
    for i in 0..=a.runs {
        // Every run evaluates the whole prompt: nothing is reused from the previous one.
        model.reset();
        let mut gen = model.generate(&prompt, &params, clock.clone())?;
        let stats = loop {
            if let Step::Done { stats, .. } = gen.step()? {
                break stats;
            }
        };
        if i > 0 {
            runs.push(stats);
        }
    }
    let median = |f: fn(&GenStats) -> f64| {
        let mut v: Vec<f64> = runs.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let prefill = median(|s| s.prefill_tokens_per_s);
    let decode = median(|s| s.decode_tokens_per_s);
    let info = model.info();
    if a.json {
        println!(
            "{}",
            json!({
                "model": info.name,
                "quantization": info.quantization,
                "convert": info.convert,
                "threads": a.threads,
                "prompt_tokens": prompt.len(),
                "generated_tokens": runs.first().map_or(0, |s| s.generated_tokens),
                "load_ms": load_ms,
                "prefill_tokens_per_s": prefill,
                "decode_tokens_per_s": decode,
                "runs": runs,
            })
        );
    } else {
        println!(
            "{} ({}, convert {}), {} thread(s), {} prompt tokens, {} generated, median of {} runs:",
            info.name,
            info.quantization,
            info.convert,
            a.threads,
            prompt.len(),
            runs.first().map_or(0, |s| s.generated_tokens),
            runs.len()
        );
        println!("  load    {load_ms:8.0} ms");
        println!("  prefill {prefill:8.1} tok/s");
        println!("  decode  {decode:8.1} tok/s");
    }
    Ok(())
}
