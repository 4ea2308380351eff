//! Model-level tests on tiny random-weight models built in code.

use omp_engine::clock::NoClock;
use omp_engine::fixtures::{tiny_llama, TinyConfig, TinyVocab};
use omp_engine::gguf::{GgmlType, Value};
use omp_engine::{Error, Model, Step};
use omp_protocol::{ChatMessage, ConvertMode, LoadOptions, SamplingParams, StopReason};
use std::sync::Arc;

fn load(cfg: &TinyConfig, opts: &LoadOptions) -> Model {
    Model::load(tiny_llama(cfg).to_bytes(), opts).expect("tiny model loads")
}

fn run(model: &mut Model, prompt: &[u32], params: &SamplingParams) -> (Vec<u32>, String, StopReason) {
    let mut gen = model.generate(prompt, params, Arc::new(NoClock)).unwrap();
    let mut text = String::new();
    loop {
        match gen.step().unwrap() {
            Step::Prefill { .. } => {}
            Step::Token(t) => text.push_str(&t.text),
            Step::Done {
                reason, text: tail, ..
            } => {
                text.push_str(&tail);
                return (gen.generated().to_vec(), text, reason);
            }
        }
    }
}

fn prompt(model: &Model) -> Vec<u32> {
    model
        .encode_chat(&[ChatMessage::new("user", "Hello the world")])
        .unwrap()
}

#[test]
fn greedy_generation_is_deterministic_and_seeds_matter() {
    let mut m = load(&TinyConfig::default(), &LoadOptions::default());
    let p = prompt(&m);
    let greedy = SamplingParams::greedy(20);
    let a = run(&mut m, &p, &greedy);
    let b = run(&mut m, &p, &greedy);
    assert_eq!(a, b);
    let sampled = |seed| SamplingParams {
        temperature: 1.5,
        top_k: 0,
        top_p: 1.0,
        min_p: 0.0,
        seed,
        max_tokens: 24,
        ..SamplingParams::default()
    };
    let s7 = run(&mut m, &p, &sampled(7));
    assert_eq!(s7, run(&mut m, &p, &sampled(7)), "same seed, same text");
    assert_ne!(s7.0, run(&mut m, &p, &sampled(8)).0, "another seed, another text");
}

#[test]
fn stops_at_max_tokens_and_stop_strings() {
    let mut m = load(&TinyConfig::default(), &LoadOptions::default());
    let p = prompt(&m);
    let (ids, text, reason) = run(&mut m, &p, &SamplingParams::greedy(12));
    if reason == StopReason::MaxTokens {
        assert_eq!(ids.len(), 12);
    }
    // Stop at a piece of the greedy text: the output ends right before it.
    let chars: Vec<char> = text.chars().collect();
    if chars.len() >= 4 {
        let stop: String = chars[2..4].iter().collect();
        let first = text.find(&stop).unwrap();
        let params = SamplingParams {
            stop: vec![stop],
            ..SamplingParams::greedy(12)
        };
        let (_, cut, reason) = run(&mut m, &p, &params);
        assert_eq!(reason, StopReason::StopString);
        assert_eq!(cut, text[..first]);
    }
}

#[test]
fn chunked_prefill_cache_reuse_and_scoring_agree() {
    let mut m = load(&TinyConfig::default(), &LoadOptions::default());
    // A long prompt: several prefill chunks.
    let text = "Hello the world ".repeat(30);
    let p = m.encode_chat(&[ChatMessage::new("user", &text)]).unwrap();
    assert!(p.len() > 2 * omp_engine::PREFILL_CHUNK);
    let (ids, _, _) = run(&mut m, &p, &SamplingParams::greedy(10));
    // Teacher forcing the greedy continuation: the argmax is the fed token everywhere.
    m.reset();
    let scores = m.score(&p, &ids).unwrap();
    assert_eq!(scores.len(), ids.len());
    for (s, &id) in scores.iter().zip(&ids) {
        assert_eq!(s.argmax, id);
        assert!(s.logprob <= 0.0 && (s.logprob - s.argmax_logprob).abs() < 1e-6);
    }
    // Scoring again reuses the cache and gives the same numbers.
    let again = m.score(&p, &ids).unwrap();
    for (a, b) in scores.iter().zip(&again) {
        assert!((a.logprob - b.logprob).abs() < 1e-4);
    }
    // A second turn that extends the first reuses its prefix and generates the same as fresh.
    let mut turn2 = p.clone();
    turn2.extend_from_slice(&ids);
    let warm = run(&mut m, &turn2, &SamplingParams::greedy(6));
    m.reset();
    let cold = run(&mut m, &turn2, &SamplingParams::greedy(6));
    assert_eq!(warm, cold);
}

#[test]
fn spm_model_generates() {
    let cfg = TinyConfig {
        vocab: TinyVocab::Spm,
        ..TinyConfig::default()
    };
    let mut m = load(&cfg, &LoadOptions::default());
    let p = m.encode_chat(&[ChatMessage::new("user", "hello world")]).unwrap();
    assert_eq!(p[0], 1, "BOS first");
    let (ids, _, _) = run(&mut m, &p, &SamplingParams::greedy(8));
    assert!(!ids.is_empty());
}

#[test]
fn load_time_conversion_changes_slow_types_only() {
    let cfg = TinyConfig {
        weight_type: "Q4_1",
        ..TinyConfig::default()
    };
    let plain = load(&cfg, &LoadOptions::default());
    assert_eq!(plain.info().converted_tensors, 0);
    assert_eq!(plain.info().quantization, "Q4_1");
    let opts = LoadOptions {
        convert: ConvertMode::Q8_0,
        ..LoadOptions::default()
    };
    let mut conv = load(&cfg, &opts);
    assert_eq!(conv.info().convert, "q8_0");
    assert_eq!(conv.info().converted_tensors, 7 * cfg.layers);
    assert!(conv.info().memory.copied_weights_bytes > plain.info().memory.copied_weights_bytes);
    let p = prompt(&conv);
    let (ids, _, _) = run(&mut conv, &p, &SamplingParams::greedy(4));
    assert!(!ids.is_empty());
    // Q8_0 matrices are already fast: nothing to convert.
    let q8 = load(&TinyConfig::default(), &opts);
    assert_eq!(q8.info().converted_tensors, 0);
}

/// Regression: every matrix used to be copied out of the file, so a load held the weights
/// twice (and wasm memory, which never shrinks, kept the doubled peak).
#[test]
fn weights_are_read_in_place_unless_converted() {
    let cfg = TinyConfig {
        weight_type: "Q4_1",
        ..TinyConfig::default()
    };
    let bytes = tiny_llama(&cfg).to_bytes();
    let mut in_place = Model::load(bytes.clone(), &LoadOptions::default()).unwrap();
    assert_eq!(in_place.copied_weight_bytes(), 0);
    let mut copied = Model::load(bytes.as_slice(), &LoadOptions::default()).unwrap();
    let p = prompt(&in_place);
    assert_eq!(
        run(&mut in_place, &p, &SamplingParams::greedy(6)).0,
        run(&mut copied, &p, &SamplingParams::greedy(6)).0
    );
    let opts = LoadOptions {
        convert: ConvertMode::Q8_0,
        ..LoadOptions::default()
    };
    let conv = Model::load(bytes, &opts).unwrap();
    assert!(conv.copied_weight_bytes() > 0);
    assert!(conv.copied_weight_bytes() <= conv.resident_bytes());
}

#[test]
fn every_weight_type_runs() {
    for ty in [
        "F32", "F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K",
    ] {
        // K-quant rows are whole blocks of 256.
        let width = if ty.ends_with("_K") { 256 } else { 64 };
        let cfg = TinyConfig {
            weight_type: ty,
            layers: 1,
            embedding: width,
            feed_forward: width,
            ..TinyConfig::default()
        };
        let mut m = load(&cfg, &LoadOptions::default());
        let p = prompt(&m);
        let (ids, _, _) = run(&mut m, &p, &SamplingParams::greedy(3));
        assert!(!ids.is_empty(), "{ty}");
    }
}

fn load_err(edit: impl FnOnce(&mut omp_engine::gguf::GgufWriter)) -> Error {
    let mut w = tiny_llama(&TinyConfig {
        layers: 1,
        ..TinyConfig::default()
    });
    edit(&mut w);
    Model::load(w.to_bytes(), &LoadOptions::default()).unwrap_err()
}

#[test]
fn model_level_problems_are_named() {
    let e = load_err(|w| {
        w.str("general.architecture", "mamba");
    });
    assert!(matches!(e, Error::UnsupportedArchitecture(_)), "{e}");
    assert!(e.to_string().contains("mamba") && e.to_string().contains("llama"));

    let e = load_err(|w| {
        w.remove_tensor("blk.0.ffn_up.weight");
    });
    assert!(e.to_string().contains("blk.0.ffn_up.weight"), "{e}");

    let e = load_err(|w| {
        w.remove_kv("llama.embedding_length");
    });
    assert!(e.to_string().contains("llama.embedding_length"), "{e}");

    let e = load_err(|w| {
        w.u32("llama.attention.head_count", 0);
    });
    assert!(e.to_string().contains("head_count"), "{e}");

    let e = load_err(|w| {
        w.u32("llama.attention.head_count_kv", 3);
    });
    assert!(e.to_string().contains("head_count_kv"), "{e}");

    let e = load_err(|w| {
        w.u32("llama.feed_forward_length", 96);
    });
    assert!(
        e.to_string().contains("blk.0.ffn_gate.weight") && e.to_string().contains("shape"),
        "{e}"
    );

    let e = load_err(|w| {
        w.u32("llama.block_count", 2);
    });
    assert!(e.to_string().contains("blk.1."), "{e}");

    let e = load_err(|w| {
        let q41 = GgmlType::from_name("IQ2_XXS").unwrap();
        w.remove_tensor("blk.0.attn_q.weight");
        w.tensor("blk.0.attn_q.weight", &[256, 64], q41, vec![0; 66 * 64]);
    });
    assert!(
        e.to_string().contains("IQ2_XXS") || e.to_string().contains("blk.0.attn_q.weight"),
        "{e}"
    );

    let e = load_err(|w| {
        w.kv(
            "tokenizer.ggml.tokens",
            Value::Array(omp_engine::gguf::Array::Str(vec!["a".into(); 10])),
        );
        w.remove_kv("tokenizer.ggml.token_type");
    });
    assert!(e.to_string().contains("tokenizer.ggml.tokens"), "{e}");

    let e = load_err(|w| {
        w.kv("llama.rope.freq_base", Value::F32(f32::NAN));
    });
    assert!(e.to_string().contains("rope.freq_base"), "{e}");
}

#[test]
fn broken_chat_template_leaves_the_model_usable() {
    let mut w = tiny_llama(&TinyConfig::default());
    w.str("tokenizer.chat_template", "{% for m in messages %}{{ m.content ");
    let mut m = Model::load(w.to_bytes(), &LoadOptions::default()).unwrap();
    let e = m.encode_chat(&[ChatMessage::new("user", "hi")]).unwrap_err();
    assert!(matches!(e, Error::Template(_)), "{e}");
    // Plain completion still works.
    let ids = m.tokenizer().encode("Hello", false, false);
    let (out, _, _) = run(&mut m, &ids, &SamplingParams::greedy(3));
    assert!(!out.is_empty());
}

#[test]
fn requests_that_cannot_be_honoured_are_errors() {
    let opts = LoadOptions {
        context_length: 32,
        ..LoadOptions::default()
    };
    let mut m = load(&TinyConfig::default(), &opts);
    assert_eq!(m.context_length(), 32);
    let clock = Arc::new(NoClock);
    assert!(m
        .generate(&[], &SamplingParams::greedy(1), clock.clone())
        .is_err());
    assert!(m
        .generate(&[5; 40], &SamplingParams::greedy(1), clock.clone())
        .is_err());
    let bad = SamplingParams {
        top_p: 2.0,
        ..SamplingParams::default()
    };
    assert!(m.generate(&[5], &bad, clock.clone()).is_err());
    // An id outside the vocabulary.
    let mut g = m
        .generate(&[1_000_000], &SamplingParams::greedy(1), clock)
        .unwrap();
    assert!(g.step().is_err());
    // The context fills up: generation ends cleanly.
    let (_, _, reason) = run(&mut m, &[5; 28], &SamplingParams::greedy(100));
    assert!(
        matches!(reason, StopReason::ContextFull | StopReason::EndOfText),
        "{reason:?}"
    );
}

#[test]
fn memory_estimate_counts_weights_and_cache() {
    let m = load(&TinyConfig::default(), &LoadOptions::default());
    let mem = m.info().memory;
    assert_eq!(
        mem.total_bytes,
        mem.copied_weights_bytes + mem.kv_cache_bytes + mem.scratch_bytes
    );
    // 2 layers * (k + v) * 2 kv heads * 16 wide * 256 positions * 2 bytes: the cache is f16
    // (the estimate once counted 4 bytes, twice what the cache holds).
    assert_eq!(mem.kv_cache_bytes, 2 * 2 * 2 * 16 * 256 * 2);
    assert!(
        mem.copied_weights_bytes > 0,
        "the norm vectors are widened to f32"
    );
}

/// Regression: the estimate counted every quantized matrix as held beside the file, although
/// matrices kept in their stored type are read in place from it. Adding the file's size gave
/// about 254 MiB for the bundled 94 MiB model, and a model that fits a tab could be refused.
#[test]
fn memory_estimate_counts_only_the_weights_a_load_copies() {
    for (ty, convert) in [
        ("Q4_1", ConvertMode::None),
        ("Q4_1", ConvertMode::Q8_0),
        ("Q8_0", ConvertMode::None),
        ("Q8_0", ConvertMode::Q4_0),
        ("F16", ConvertMode::None),
    ] {
        let cfg = TinyConfig {
            weight_type: ty,
            ..TinyConfig::default()
        };
        let m = Model::load(
            tiny_llama(&cfg).to_bytes(),
            &LoadOptions {
                convert,
                ..LoadOptions::default()
            },
        )
        .unwrap();
        // Norm vectors: two per block and the output norm, as f32.
        let norms = (2 * cfg.layers as usize + 1) * cfg.embedding as usize * 4;
        assert_eq!(
            m.info().memory.copied_weights_bytes as usize,
            m.copied_weight_bytes() + norms,
            "{ty} converted with {convert:?}"
        );
    }
}

/// The error a tiny model of `arch` (its reference shape) gives once `edit` has changed it.
fn arch_err(key: &str, edit: impl FnOnce(&mut omp_engine::gguf::GgufWriter)) -> String {
    let (_, arch, shape) = omp_engine::fixtures::reference_models()
        .into_iter()
        .find(|(k, _, _)| k == key)
        .expect("a reference model");
    let mut w = omp_engine::fixtures::tiny(arch, &shape).expect("a tiny model");
    edit(&mut w);
    Model::load(w.to_bytes(), &LoadOptions::default())
        .expect_err("the edited model is refused")
        .to_string()
}

#[test]
fn new_hyper_parameters_are_checked_before_use() {
    let has = |e: &str, what: &[&str]| what.iter().all(|w| e.contains(w));
    let e = arch_err("qwen3moe", |w| {
        w.u32("qwen3moe.expert_used_count", 9);
    });
    assert!(has(&e, &["expert_used_count", "9"]), "{e}");
    let e = arch_err("granitemoe", |w| {
        w.u32("granitemoe.expert_count", 600);
    });
    assert!(has(&e, &["expert_count", "600"]), "{e}");
    let e = arch_err("gemma3", |w| {
        w.u32("gemma3.attention.head_count_kv", 3);
    });
    assert!(has(&e, &["head_count_kv"]), "{e}");
    let e = arch_err("gemma3", |w| {
        w.u32("gemma3.attention.value_length", 16);
    });
    assert!(has(&e, &["value_length", "16"]), "{e}");
    let e = arch_err("gemma3", |w| {
        w.u32("gemma3.attention.sliding_window_pattern", 0);
    });
    assert!(has(&e, &["sliding_window_pattern"]), "{e}");
    let e = arch_err("qwen2", |w| {
        w.u32("qwen2.attention.head_count", 0);
    });
    assert!(has(&e, &["head_count"]), "{e}");
    let e = arch_err("qwen2", |w| {
        w.u32("qwen2.block_count", 1 << 20);
    });
    assert!(has(&e, &["block_count", "1048576"]), "{e}");
    let e = arch_err("qwen2", |w| {
        w.u32("qwen2.attention.head_count", 1 << 20);
        w.u32("qwen2.attention.head_count_kv", 1 << 20);
        w.u32("qwen2.attention.key_length", 1 << 20);
    });
    assert!(has(&e, &["head_count"]), "{e}");
    let e = arch_err("llama-moe", |w| {
        w.remove_kv("llama.feed_forward_length");
    });
    assert!(has(&e, &["feed_forward_length"]), "{e}");
    let e = arch_err("phi3", |w| {
        w.u32("phi3.rope.dimension_count", 7);
    });
    assert!(has(&e, &["rope.dimension_count", "7"]), "{e}");
    let e = arch_err("falcon", |w| {
        w.remove_tensor("blk.1.attn_norm.bias");
    });
    assert!(has(&e, &["blk.1.attn_norm.bias"]), "{e}");
    let e = arch_err("olmo2", |w| {
        w.remove_tensor("blk.0.attn_q_norm.weight");
        w.f32_tensor("blk.0.attn_q_norm.weight", &[3], &[1.0; 3]);
    });
    assert!(has(&e, &["blk.0.attn_q_norm.weight", "shape"]), "{e}");
    let e = arch_err("granite", |w| {
        w.f32("granite.logit_scale", 0.0);
    });
    assert!(has(&e, &["logit_scale"]), "{e}");
    let e = arch_err("gemma3", |w| {
        w.f32_tensor("blk.0.attn_foo.weight", &[4], &[0.0; 4]);
    });
    assert!(has(&e, &["blk.0.attn_foo.weight", "gemma3"]), "{e}");
}

#[test]
fn a_base_model_continues_the_conversation_text() {
    // The SentencePiece tiny model has no chat template: a base model.
    let spm = load(
        &TinyConfig {
            vocab: TinyVocab::Spm,
            ..TinyConfig::default()
        },
        &LoadOptions::default(),
    );
    assert!(spm.is_base_model());
    let messages = [
        ChatMessage::new("system", "Facts."),
        ChatMessage::new("user", "hello"),
        ChatMessage::new("assistant", " world"),
        ChatMessage::new("user", " again"),
    ];
    let text = spm.render_prompt(&messages).unwrap();
    assert_eq!(text, "Facts.\n\nhello world again");
    assert_eq!(
        spm.encode_prompt(&messages).unwrap(),
        spm.tokenizer().encode(&text, true, false)
    );
    // A chat model keeps its template.
    let bpe = load(&TinyConfig::default(), &LoadOptions::default());
    assert!(!bpe.is_base_model());
    assert_eq!(
        bpe.encode_prompt(&messages).unwrap(),
        bpe.encode_chat(&messages).unwrap()
    );
    assert!(bpe.render_prompt(&messages).unwrap().contains("<|im_start|>"));
}
