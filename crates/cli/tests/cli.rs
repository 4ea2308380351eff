//! The `omp` binary end to end on tiny models written to a temporary directory: every command
//! works, and every bad input exits with code 2 and one `error:` line (never a panic).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use omp_engine::fixtures::{tiny_llama, TinyConfig};
use serde_json::Value;

fn omp(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_omp"))
        .args(args)
        .env("RAYON_NUM_THREADS", "1")
        .output()
        .expect("omp runs")
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("omp-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn tiny_file(name: &str, cfg: &TinyConfig) -> PathBuf {
    let p = tmp(name);
    std::fs::write(&p, tiny_llama(cfg).to_bytes()).unwrap();
    p
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON on stdout")
}

/// Exit code 2 and exactly one line on stderr, starting with `error:`.
fn assert_clean_error(out: &Output, needle: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.starts_with("warning:")).collect();
    assert_eq!(lines.len(), 1, "one line: {err}");
    assert!(lines[0].starts_with("error: "), "{err}");
    assert!(err.contains(needle), "{err:?} should mention {needle:?}");
}

#[test]
fn inspect_tokenize_generate_score() {
    let model = tiny_file("ok.gguf", &TinyConfig::default());
    let info = json(&omp(&["inspect", s(&model), "--json"]));
    assert_eq!(info["architecture"], "llama");
    assert_eq!(info["layers"], 2);
    assert_eq!(info["fits_browser"], true);
    let human = omp(&["inspect", s(&model), "--metadata"]);
    assert!(String::from_utf8_lossy(&human.stdout).contains("memory estimate"));

    let t = json(&omp(&[
        "tokenize",
        s(&model),
        "--text",
        "Hello the world",
        "--json",
    ]));
    let ids: Vec<u64> = t["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert_eq!(ids.len(), 3);
    let special = json(&omp(&[
        "tokenize",
        s(&model),
        "--text",
        "<|im_start|>",
        "--special",
        "--json",
    ]));
    assert_eq!(special["ids"], serde_json::json!([1]));

    let g = json(&omp(&[
        "generate",
        s(&model),
        "--prompt",
        "Hello",
        "--chat",
        "--temperature",
        "0",
        "--max-tokens",
        "5",
        "--json",
    ]));
    let gen_ids = g["ids"].as_array().unwrap().clone();
    assert!(!gen_ids.is_empty() && gen_ids.len() <= 5);
    assert!(g["stats"]["generated_tokens"].as_u64().unwrap() >= 1);

    // Greedy output fed back through `score`: the model's argmax is each token.
    let prompt: Vec<String> = g["prompt_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.to_string())
        .collect();
    let cont: Vec<String> = gen_ids.iter().map(|v| v.to_string()).collect();
    let sc = json(&omp(&[
        "score",
        s(&model),
        "--prompt-ids",
        &prompt.join(","),
        "--ids",
        &cont.join(","),
        "--json",
    ]));
    assert_eq!(sc["argmax_matches"], sc["positions"]);
}

#[test]
fn sampling_is_reproducible_by_seed() {
    let model = tiny_file("seed.gguf", &TinyConfig::default());
    let run = |seed: &str| {
        json(&omp(&[
            "generate",
            s(&model),
            "--prompt",
            "Hello the world",
            "--temperature",
            "1.5",
            "--top-k",
            "0",
            "--top-p",
            "1",
            "--min-p",
            "0",
            "--seed",
            seed,
            "--max-tokens",
            "24",
            "--json",
        ]))["ids"]
            .clone()
    };
    assert_eq!(run("7"), run("7"));
    assert_ne!(run("7"), run("8"));
}

#[test]
fn quantize_and_bench() {
    let model = tiny_file("q.gguf", &TinyConfig::default());
    let out = tmp("q4_1.gguf");
    let q = omp(&["quantize", s(&model), s(&out), "--type", "q4_1"]);
    assert!(q.status.success(), "{}", String::from_utf8_lossy(&q.stderr));
    let info = json(&omp(&["inspect", s(&out), "--json"]));
    assert_eq!(info["quantization"], "Q4_1");
    let b = json(&omp(&[
        "bench",
        s(&out),
        "--tokens",
        "4",
        "--runs",
        "1",
        "--json",
    ]));
    assert!(b["decode_tokens_per_s"].as_f64().unwrap() >= 0.0);
    let conv = json(&omp(&[
        "bench",
        s(&out),
        "--tokens",
        "4",
        "--runs",
        "1",
        "--convert",
        "--json",
    ]));
    assert_eq!(conv["convert"], "q8_0");
    assert_clean_error(
        &omp(&["quantize", s(&model), s(&out), "--type", "iq2_xxs"]),
        "--type",
    );
}

#[test]
fn bad_files_exit_2_with_one_line() {
    let good = tiny_llama(&TinyConfig::default()).to_bytes();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", Vec::new(), "GGUF"),
        (
            "html",
            b"<!doctype html><html></html>".to_vec(),
            "not a GGUF model file",
        ),
        ("truncated-header", good[..100].to_vec(), "truncated"),
        ("truncated-data", good[..good.len() - 1000].to_vec(), "truncated"),
        (
            "version",
            {
                let mut b = good.clone();
                b[4] = 9;
                b
            },
            "version 9",
        ),
        (
            "tensor-count",
            {
                let mut b = good.clone();
                b[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
                b
            },
            "cannot fit",
        ),
    ];
    for (name, bytes, needle) in cases {
        let p = tmp(&format!("{name}.gguf"));
        std::fs::write(&p, bytes).unwrap();
        for cmd in [
            vec!["inspect", s(&p)],
            vec!["tokenize", s(&p), "--text", "x"],
            vec!["generate", s(&p), "--prompt", "x"],
        ] {
            assert_clean_error(&omp(&cmd), needle);
        }
    }
    let mut w = tiny_llama(&TinyConfig::default());
    w.str("general.architecture", "rwkv7");
    let p = tmp("arch.gguf");
    std::fs::write(&p, w.to_bytes()).unwrap();
    assert_clean_error(&omp(&["generate", s(&p), "--prompt", "x"]), "rwkv7");
    let mut w = tiny_llama(&TinyConfig::default());
    w.remove_tensor("blk.1.attn_v.weight");
    let p = tmp("tensor.gguf");
    std::fs::write(&p, w.to_bytes()).unwrap();
    assert_clean_error(&omp(&["generate", s(&p), "--prompt", "x"]), "blk.1.attn_v.weight");
}

#[test]
fn bad_arguments_exit_2() {
    let model = tiny_file("args.gguf", &TinyConfig::default());
    assert_clean_error(
        &omp(&["generate", "/no/such/file.gguf", "--prompt", "x"]),
        "/no/such/file.gguf",
    );
    assert_clean_error(
        &omp(&["generate", s(&model), "--prompt", "x", "--top-p", "3"]),
        "top_p",
    );
    assert_clean_error(
        &omp(&["generate", s(&model), "--prompt", "x", "--convert", "q9"]),
        "--convert",
    );
    assert_clean_error(
        &omp(&["score", s(&model), "--prompt-ids", "1,x", "--ids", "2"]),
        "--prompt-ids",
    );
    assert_clean_error(
        &omp(&["score", s(&model), "--prompt-ids", "1", "--ids", "99999999"]),
        "outside the vocabulary",
    );
    // Usage errors from the argument parser also exit 2.
    assert_eq!(omp(&["generate"]).status.code(), Some(2));
    assert_eq!(omp(&["no-such-command"]).status.code(), Some(2));
}
