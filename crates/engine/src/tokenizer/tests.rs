//! Tokenizer tests on the tiny vocabularies of [`crate::fixtures`]. The real model's tokenizer
//! is checked against llama.cpp in `tests/reference.rs`.

use super::*;
use crate::fixtures::{vocab_metadata, TinyVocab};
use crate::gguf::{GgufWriter, Value};

fn tokenizer(vocab: TinyVocab, edit: impl FnOnce(&mut GgufWriter)) -> Result<Tokenizer> {
    let mut w = GgufWriter::new();
    vocab_metadata(&mut w, vocab);
    edit(&mut w);
    let bytes = w.to_bytes();
    Tokenizer::from_gguf(&Gguf::parse(&bytes)?)
}

fn bpe() -> Tokenizer {
    tokenizer(TinyVocab::Bpe, |_| {}).unwrap()
}

fn texts(t: &Tokenizer, ids: &[u32]) -> Vec<String> {
    ids.iter()
        .map(|&i| t.token_text(i).unwrap().to_string())
        .collect()
}

#[test]
fn bpe_merges_by_rank() {
    let t = bpe();
    let ids = t.encode("Hello the world", false, false);
    assert_eq!(texts(&t, &ids), ["Hello", "Ġthe", "Ġworld"]);
    assert_eq!(t.decode(&ids, false), "Hello the world");
}

#[test]
fn bpe_round_trips_any_text() {
    let t = bpe();
    for s in [
        "",
        " ",
        "a  b\t\nc",
        "안녕하세요 😀",
        "x\u{200b}y\u{a0}z",
        "1234567",
        "<|im_start|>",
        "\r\n\r\n",
    ] {
        let ids = t.encode(s, false, false);
        assert_eq!(t.decode(&ids, false), s, "{s:?}");
    }
}

#[test]
fn control_tokens_need_special_parsing_user_defined_ones_do_not() {
    let t = bpe();
    let plain = t.encode("<|im_start|>user", false, false);
    assert!(plain.len() > 2, "parsed as text without special parsing");
    let special = t.encode("<|im_start|>user", false, true);
    assert_eq!(special[0], 1);
    assert_eq!(
        t.decode(&special, false),
        "user",
        "control tokens render as nothing"
    );
    assert_eq!(t.decode(&special, true), "<|im_start|>user");
    let tool = t.token_id("<tool>").unwrap();
    assert_eq!(
        t.encode("a<tool>b", false, false)[1],
        tool,
        "user-defined tokens are always matched"
    );
}

#[test]
fn end_of_generation_tokens() {
    let t = bpe();
    assert!(t.is_end_of_generation(2)); // <|im_end|>, the EOS
    assert!(t.is_end_of_generation(0)); // <|endoftext|>, by its text
    assert!(!t.is_end_of_generation(1));
}

#[test]
fn bos_is_added_only_when_asked_for() {
    let t = tokenizer(TinyVocab::Bpe, |w| {
        w.bool("tokenizer.ggml.add_bos_token", true);
    })
    .unwrap();
    assert_eq!(t.encode("the", true, false)[0], 1);
    assert_ne!(t.encode("the", false, false)[0], 1);
    assert!(bpe().encode("", true, false).is_empty());
}

#[test]
fn spm_merges_by_score_with_prefix_space_and_byte_fallback() {
    let t = tokenizer(TinyVocab::Spm, |_| {}).unwrap();
    let ids = t.encode("hello world", true, false);
    assert_eq!(ids[0], 1, "BOS by default for SentencePiece models");
    assert_eq!(texts(&t, &ids[1..]), ["▁hello", "▁world"]);
    // `é` has no piece: two byte tokens.
    let ids = t.encode("hé", false, false);
    assert_eq!(texts(&t, &ids), ["▁h", "<0xC3>", "<0xA9>"]);
    assert_eq!(t.decode(&ids, false), "hé");
    let t = tokenizer(TinyVocab::Spm, |w| {
        w.bool("tokenizer.ggml.add_space_prefix", false);
    })
    .unwrap();
    assert_eq!(texts(&t, &t.encode("hello", false, false))[0], "he");
}

#[test]
fn broken_vocabularies_are_clear_errors() {
    let e = tokenizer(TinyVocab::Bpe, |w| {
        w.kv("tokenizer.ggml.token_type", Value::Array(Array::I32(vec![1, 1])));
    })
    .unwrap_err();
    assert!(e.to_string().contains("token_type"), "{e}");
    let e = tokenizer(TinyVocab::Bpe, |w| {
        w.kv("tokenizer.ggml.tokens", Value::Array(Array::U32(vec![1, 2])));
    })
    .unwrap_err();
    assert!(e.to_string().contains("tokenizer.ggml.tokens"), "{e}");
    let e = tokenizer(TinyVocab::Bpe, |w| {
        w.remove_kv("tokenizer.ggml.merges");
    })
    .unwrap_err();
    assert!(e.to_string().contains("tokenizer.ggml.merges"), "{e}");
    let e = tokenizer(TinyVocab::Bpe, |w| {
        w.str("tokenizer.ggml.pre", "klingon");
    })
    .unwrap_err();
    assert!(e.to_string().contains("klingon"), "{e}");
    let e = tokenizer(TinyVocab::Bpe, |w| {
        w.str("tokenizer.ggml.model", "t5");
    })
    .unwrap_err();
    assert!(e.to_string().contains("t5"), "{e}");
    let e = tokenizer(TinyVocab::Bpe, |w| {
        w.kv("tokenizer.ggml.tokens", Value::Array(Array::Str(Vec::new())));
        w.remove_kv("tokenizer.ggml.token_type");
    })
    .unwrap_err();
    assert!(e.to_string().contains("empty"), "{e}");
}

#[test]
fn special_ids_outside_the_vocabulary_are_ignored_with_a_warning() {
    let t = tokenizer(TinyVocab::Bpe, |w| {
        w.u32("tokenizer.ggml.eos_token_id", 1_000_000);
    })
    .unwrap();
    assert_eq!(t.specials().eos, None);
    assert!(t.warnings()[0].contains("eos_token_id"));
}
