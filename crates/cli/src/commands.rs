//! The subcommands.

use std::io::Write;

use anyhow::{bail, Context, Result};
use omp_engine::clock::default_clock;
use omp_engine::gguf::{GgmlType, Gguf, GgufWriter};
use omp_engine::{inspect, Model, Step};
use omp_protocol::{ChatMessage, ConvertMode, KvCacheType, LoadOptions, SamplingParams};
use serde_json::json;

use crate::{Command, GenerateArgs, LoadArgs};

pub(crate) fn run(cmd: Command) -> Result<()> {
    match cmd {
        Command::Inspect {
            model,
            load,
            metadata,
            json,
        } => cmd_inspect(&model, &load, metadata, json),
        Command::Tokenize {
            model,
            text,
            special,
            add_special,
            json,
        } => cmd_tokenize(&model, &text, special, add_special, json),
        Command::Generate(args) => cmd_generate(&args),
        Command::Score {
            model,
            prompt_ids,
            ids,
            load,
            json,
        } => cmd_score(&model, &prompt_ids, &ids, &load, json),
        Command::Bench(args) => crate::bench::run(&args),
        Command::Quantize { input, output, ty } => cmd_quantize(&input, &output, &ty),
    }
}

/// Sets the engine's thread count; must run before the first product.
pub(crate) fn set_threads(n: Option<usize>) {
    let n = n.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    omp_engine::pool::set_threads(n);
}

pub(crate) fn read_model(path: &str) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {path}"))
}

pub(crate) fn load_options(load: &LoadArgs) -> Result<LoadOptions> {
    let convert = match &load.convert {
        None => ConvertMode::None,
        Some(s) => {
            ConvertMode::parse(s).with_context(|| format!("--convert {s:?}: expected q8_0, q4_0 or none"))?
        }
    };
    let kv_cache = KvCacheType::parse(&load.kv_cache)
        .with_context(|| format!("--kv-cache {:?}: expected f16 or q8_0", load.kv_cache))?;
    Ok(LoadOptions {
        context_length: load.ctx,
        convert,
        kv_cache,
    })
}

pub(crate) fn load_model(path: &str, load: &LoadArgs) -> Result<Model> {
    let bytes = read_model(path)?;
    let model = Model::load(bytes, &load_options(load)?).with_context(|| format!("cannot load {path}"))?;
    for w in model.tokenizer().warnings() {
        eprintln!("warning: {w}");
    }
    Ok(model)
}

fn mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0))
}

fn cmd_inspect(path: &str, load: &LoadArgs, metadata: bool, json: bool) -> Result<()> {
    let bytes = read_model(path)?;
    let gguf = Gguf::parse(&bytes).with_context(|| format!("cannot read {path}"))?;
    let info = inspect(&gguf, &load_options(load)?).with_context(|| format!("cannot describe {path}"))?;
    // Build the tokenizer and template too, so that a file that would fail to load fails here.
    let tokenizer = omp_engine::tokenizer::Tokenizer::from_gguf(&gguf)?;
    let template_error = gguf
        .opt_str("tokenizer.chat_template")?
        .and_then(|src| omp_engine::chat::ChatTemplate::new(src, "", "").err())
        .map(|e| e.to_string());
    let fits = info.memory.total_bytes + info.file_bytes <= omp_engine::WASM32_MODEL_BUDGET_BYTES;
    if json {
        let mut v = serde_json::to_value(&info)?;
        v["fits_browser"] = json!(fits);
        v["chat_template_error"] = json!(template_error);
        v["tokenizer_warnings"] = json!(tokenizer.warnings());
        if metadata {
            v["metadata"] = gguf
                .metadata()
                .iter()
                .map(|(k, val)| (k.clone(), json!(val.summary())))
                .collect::<serde_json::Map<_, _>>()
                .into();
        }
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "name:            {}", info.name)?;
    writeln!(out, "architecture:    {}", info.architecture)?;
    writeln!(
        out,
        "parameters:      {} ({:.1} M)",
        info.parameters,
        info.parameters as f64 / 1e6
    )?;
    writeln!(
        out,
        "file size:       {} ({} bytes)",
        mib(info.file_bytes),
        info.file_bytes
    )?;
    writeln!(out, "quantization:    {}", info.quantization)?;
    writeln!(out, "tensor types:")?;
    for t in &info.tensor_types {
        writeln!(out, "  {:<8} {:>4} tensors  {}", t.ty, t.count, mib(t.bytes))?;
    }
    writeln!(
        out,
        "load conversion: {} ({} tensors would change)",
        info.convert, info.converted_tensors
    )?;
    writeln!(
        out,
        "layers:          {}   embedding {}   heads {} (kv {})",
        info.layers, info.embedding_length, info.heads, info.kv_heads
    )?;
    writeln!(
        out,
        "context length:  {} (estimate below for {})",
        info.context_length, info.loaded_context
    )?;
    writeln!(
        out,
        "vocabulary:      {} tokens, {}{}",
        info.vocab_size,
        info.tokenizer,
        info.pre_tokenizer
            .as_deref()
            .map(|p| format!(" / {p}"))
            .unwrap_or_default()
    )?;
    writeln!(
        out,
        "chat template:   {}",
        match (&template_error, info.has_chat_template) {
            (Some(e), _) => format!("present but unusable: {e}"),
            (None, true) => "present".into(),
            (None, false) => "absent (a generic format is used)".into(),
        }
    )?;
    writeln!(
        out,
        "license:         {}",
        info.license.as_deref().unwrap_or("not stated")
    )?;
    let m = &info.memory;
    writeln!(
        out,
        "memory estimate: {} = file {} + copied weights {} + KV cache {} ({}) + scratch {}",
        mib(info.file_bytes + m.total_bytes),
        mib(info.file_bytes),
        mib(m.copied_weights_bytes),
        mib(m.kv_cache_bytes),
        info.kv_cache,
        mib(m.scratch_bytes)
    )?;
    writeln!(
        out,
        "fits a browser tab (wasm32): {}",
        if fits { "yes" } else { "no" }
    )?;
    for w in tokenizer.warnings() {
        writeln!(out, "warning: {w}")?;
    }
    if metadata {
        writeln!(out, "metadata:")?;
        for (k, v) in gguf.metadata() {
            writeln!(out, "  {k} = {}", v.summary())?;
        }
    }
    Ok(())
}

fn cmd_tokenize(path: &str, text: &str, special: bool, add_special: bool, json: bool) -> Result<()> {
    let bytes = read_model(path)?;
    let gguf = Gguf::parse(&bytes).with_context(|| format!("cannot read {path}"))?;
    let tok = omp_engine::tokenizer::Tokenizer::from_gguf(&gguf)
        .with_context(|| format!("cannot build the tokenizer of {path}"))?;
    let ids = tok.encode(text, add_special, special);
    if json {
        println!("{}", json!({ "ids": ids }));
    } else {
        for id in ids {
            let piece = String::from_utf8_lossy(tok.piece(id, true)).into_owned();
            println!("{id:>7} {piece:?}");
        }
    }
    Ok(())
}

fn cmd_generate(a: &GenerateArgs) -> Result<()> {
    set_threads(a.threads);
    let mut model = load_model(&a.model, &a.load)?;
    let kv_cache = model.info().kv_cache.clone();
    let prompt_ids = if a.chat || a.system.is_some() {
        let mut messages = Vec::new();
        if let Some(s) = &a.system {
            messages.push(ChatMessage::new("system", s));
        }
        messages.push(ChatMessage::new("user", &a.prompt));
        model.encode_chat(&messages)?
    } else {
        model.tokenizer().encode(&a.prompt, true, false)
    };
    let params = SamplingParams {
        temperature: a.temperature,
        top_k: a.top_k,
        top_p: a.top_p,
        min_p: a.min_p,
        repeat_penalty: a.repeat_penalty,
        repeat_last_n: a.repeat_last_n,
        seed: a.seed,
        max_tokens: a.max_tokens,
        stop: a.stop.clone(),
        top_alternatives: 0,
    };
    params.validate().map_err(anyhow::Error::msg)?;
    let mut gen = model.generate(&prompt_ids, &params, default_clock())?;
    let mut text = String::new();
    let mut out = std::io::stdout().lock();
    let (reason, stats) = loop {
        match gen.step()? {
            Step::Prefill { .. } => {}
            Step::Token(t) => {
                if !a.json {
                    write!(out, "{}", t.text)?;
                    out.flush()?;
                }
                text.push_str(&t.text);
            }
            Step::Done {
                reason,
                text: tail,
                stats,
            } => {
                if !a.json {
                    write!(out, "{tail}")?;
                }
                text.push_str(&tail);
                break (reason, stats);
            }
        }
    };
    let ids = gen.generated().to_vec();
    if a.json {
        let v = json!({
            "prompt_ids": prompt_ids,
            "ids": ids,
            "text": text,
            "reason": reason,
            "stats": stats,
        });
        writeln!(out, "{v}")?;
    } else {
        writeln!(out)?;
        eprintln!(
            "[{} prompt tokens, {} generated; first token after {:.0} ms; prefill {:.1} tok/s, decode {:.1} tok/s; {}; convert {}; kv cache {}]",
            stats.prompt_tokens,
            stats.generated_tokens,
            stats.time_to_first_token_ms,
            stats.prefill_tokens_per_s,
            stats.decode_tokens_per_s,
            reason.describe(),
            stats.convert,
            kv_cache
        );
    }
    Ok(())
}

pub(crate) fn parse_ids(s: &str, what: &str) -> Result<Vec<u32>> {
    s.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.parse::<u32>()
                .with_context(|| format!("{what}: {p:?} is not a token id"))
        })
        .collect()
}

fn cmd_score(path: &str, prompt: &str, ids: &str, load: &LoadArgs, json: bool) -> Result<()> {
    set_threads(None);
    let prompt = parse_ids(prompt, "--prompt-ids")?;
    let ids = parse_ids(ids, "--ids")?;
    if prompt.is_empty() {
        bail!("--prompt-ids: at least one token is needed");
    }
    let mut model = load_model(path, load)?;
    let scores = model.score(&prompt, &ids)?;
    let matches = scores.iter().filter(|s| s.argmax == s.id).count();
    if json {
        println!(
            "{}",
            json!({ "scores": scores, "argmax_matches": matches, "positions": scores.len() })
        );
    } else {
        for (i, s) in scores.iter().enumerate() {
            println!(
                "{i:>4} id {:>6} logprob {:>8.3}   argmax {:>6} ({:.3}){}",
                s.id,
                s.logprob,
                s.argmax,
                s.argmax_logprob,
                if s.argmax == s.id { "" } else { "  *" }
            );
        }
        let nll: f64 = scores.iter().map(|s| -f64::from(s.logprob)).sum();
        let ppl = (nll / scores.len().max(1) as f64).exp();
        println!("argmax matches: {matches}/{}; perplexity {ppl:.3}", scores.len());
    }
    Ok(())
}

fn cmd_quantize(input: &str, output: &str, ty: &str) -> Result<()> {
    use omp_engine::weights::requantize;

    let target = GgmlType::from_name(ty)
        .filter(|&t| omp_engine::quant::Codec::of(t).is_some() && !matches!(t.name, "F32" | "BF16" | "Q8_K"))
        .with_context(|| format!("--type {ty:?}: expected one of q4_0, q4_1, q5_0, q5_1, q8_0, q2_k, q3_k, q4_k, q5_k, q6_k, f16"))?;
    let bytes = read_model(input)?;
    let gguf = Gguf::parse(&bytes).with_context(|| format!("cannot read {input}"))?;
    let mut w = GgufWriter::new();
    for (k, v) in gguf.metadata() {
        // The file type describes the old mix of types; readers do not need it.
        if k != "general.file_type" {
            w.kv(k.clone(), v.clone());
        }
    }
    let (mut changed, mut kept) = (0, 0);
    for t in &gguf.tensors {
        let data = gguf.tensor_data(&bytes, t)?;
        let is_matrix = t.dims.len() == 2 && t.name.ends_with(".weight");
        if is_matrix && t.ty != target && t.dims[0] % u64::from(target.block_size) == 0 {
            let out = requantize(&t.name, t.ty, data, target)?;
            w.tensor(t.name.clone(), &t.dims, target, out);
            changed += 1;
        } else {
            w.tensor(t.name.clone(), &t.dims, t.ty, data.to_vec());
            kept += 1;
        }
    }
    std::fs::write(output, w.to_bytes()).with_context(|| format!("cannot write {output}"))?;
    eprintln!(
        "{output}: {changed} tensors converted to {}, {kept} kept",
        target.name
    );
    Ok(())
}
