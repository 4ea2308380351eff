//! Every architecture of the registry: its tiny random-weight model (built from the
//! architecture's own tensor list) loads, generates, stays within its memory estimate, and
//! makes the same next-token choices as llama.cpp on a fixed token sequence
//! (`tests/data/llamacpp-archs.json`, recorded by `cargo xtask reference`).

use omp_engine::fixtures::{reference_models, reference_tokens, tiny, TinyShape};
use omp_engine::protocol::{LoadOptions, SamplingParams};
use omp_engine::{clock::default_clock, Model, Step};
use serde_json::Value;

fn model(arch: &str, shape: &TinyShape) -> (Vec<u8>, Model) {
    let bytes = tiny(arch, shape)
        .unwrap_or_else(|| panic!("{arch}: no tiny model"))
        .to_bytes();
    let m = Model::load(bytes.as_slice(), &LoadOptions::default()).unwrap_or_else(|e| panic!("{arch}: {e}"));
    (bytes, m)
}

#[test]
fn every_architecture_loads_generates_and_fits_its_estimate() {
    for (key, arch, shape) in reference_models() {
        let (_, mut m) = model(arch, &shape);
        assert_eq!(m.info().architecture, arch);
        let prompt = reference_tokens(&key, m.tokenizer().vocab_size(), 20);
        let mut gen = m
            .generate(&prompt, &SamplingParams::greedy(40), default_clock())
            .unwrap_or_else(|e| panic!("{key}: {e}"));
        let mut n = 0;
        loop {
            match gen.step().unwrap_or_else(|e| panic!("{key}: {e}")) {
                Step::Token(_) => n += 1,
                Step::Prefill { .. } => {}
                Step::Done { .. } => break,
            }
        }
        assert!(n > 0, "{key} generated nothing");
        drop(gen);
        // The estimate (made before loading) covers what the model holds beyond the file.
        let est = &m.info().memory;
        assert!(
            est.copied_weights_bytes as usize >= m.copied_weight_bytes(),
            "{key}: copied weights {} above the estimate {}",
            m.copied_weight_bytes(),
            est.copied_weights_bytes
        );
    }
}

/// The recorded llama.cpp choices for `arch`, if the record has it.
fn record() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/llamacpp-archs.json");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap()
}

#[test]
fn every_architecture_chooses_as_llama_cpp_does() {
    let rec = record();
    let (mut report, mut failed) = (Vec::new(), Vec::new());
    for (key, arch, shape) in reference_models() {
        let r = &rec["models"][key.as_str()];
        assert!(
            r.is_object(),
            "{key}: not recorded; run `cargo xtask reference --only archs`"
        );
        let (bytes, mut m) = model(arch, &shape);
        let sha = sha256(&bytes);
        assert_eq!(
            r["sha256"].as_str(),
            Some(sha.as_str()),
            "{key}: the tiny model changed; re-record"
        );
        let tokens: Vec<u32> = r["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_u64().unwrap() as u32)
            .collect();
        assert!(tokens.len() >= 257, "{key}: at least 256 positions");
        // Position i's prediction is scored against token i + 1.
        let scores = m
            .score(&tokens[..1], &tokens[1..])
            .unwrap_or_else(|e| panic!("{key}: {e}"));
        let top2 = r["top2"].as_array().unwrap();
        let (mut agree, mut worst, mut clear, mut sum, mut clear_misses) = (0, 0f32, 0, 0f32, 0);
        for (i, s) in scores.iter().enumerate() {
            let t = &top2[i];
            let best = t[0][0].as_u64().unwrap() as u32;
            let lp = t[0][1].as_f64().unwrap() as f32;
            let margin = lp - t[1][1].as_f64().unwrap() as f32;
            if s.argmax == best {
                agree += 1;
                worst = worst.max((s.argmax_logprob - lp).abs());
                sum += (s.argmax_logprob - lp).abs();
            } else {
                if margin >= 0.05 {
                    clear_misses += 1;
                }
                eprintln!(
                    "{key} position {i}: llama.cpp {best} (by {margin:.4} nats), omp {} (log-prob {:.4} against {lp:.4})",
                    s.argmax, s.argmax_logprob
                );
            }
            if margin > 0.05 {
                clear += 1;
            }
        }
        let rate = agree as f64 / scores.len() as f64;
        report.push(format!(
            "{key}: {agree}/{} argmax agree ({:.1}%), largest |Δ log-prob| of the agreed choice {worst:.4} (mean {:.4}), {clear} with a margin over 0.05",
            scores.len(),
            100.0 * rate,
            sum / agree.max(1) as f32
        ));
        // Two correct implementations part only at near-ties: every clear choice must agree,
        // and near-ties may flip (a tiny model of 6 layers has about 10 of them in 300).
        if clear_misses > 0 || rate < 0.985 {
            failed.push(report.last().cloned().unwrap_or_default());
        }
    }
    eprintln!("{}", report.join("\n"));
    assert!(
        failed.is_empty(),
        "a clear choice differs, or agreement is below 98.5%:\n{}",
        failed.join("\n")
    );
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}
