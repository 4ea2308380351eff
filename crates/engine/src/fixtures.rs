//! Tiny random-weight models built in code, for tests that must not wait for a real model.
//!
//! The weights are random, so the text they generate is gibberish, but every code path (GGUF
//! parsing, both tokenizer families, chat templates, quantized kernels, sampling) is exercised
//! with files of a few hundred kilobytes.

use crate::gguf::{Array, GgmlType, GgufWriter, Value};
use crate::sampling::Rng;

/// Which tokenizer family the tiny model carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TinyVocab {
    /// Byte-level BPE (`gpt2`) with ChatML control tokens, like SmolLM.
    Bpe,
    /// SentencePiece-style (`llama`) with byte fallback, like Llama 2 and TinyLlama.
    Spm,
}

/// Shape and contents of a tiny llama model.
#[derive(Debug, Clone)]
pub struct TinyConfig {
    /// Tokenizer family.
    pub vocab: TinyVocab,
    /// Storage type of the block matrices (`Q4_0`, `Q4_1`, `Q8_0`, `F16`, `F32`, ...).
    pub weight_type: &'static str,
    /// Transformer blocks.
    pub layers: u32,
    /// Residual width (a multiple of 32 for block-quantized types).
    pub embedding: u32,
    /// Attention heads.
    pub heads: u32,
    /// Key/value heads.
    pub kv_heads: u32,
    /// Feed-forward width.
    pub feed_forward: u32,
    /// Trained context length.
    pub context: u32,
    /// Seed of the random weights.
    pub seed: u64,
    /// Whether `output.weight` is absent (tied to `token_embd.weight`).
    pub tied: bool,
}

impl Default for TinyConfig {
    fn default() -> Self {
        Self {
            vocab: TinyVocab::Bpe,
            weight_type: "Q8_0",
            layers: 2,
            embedding: 64,
            heads: 4,
            kv_heads: 2,
            feed_forward: 128,
            context: 256,
            seed: 1,
            tied: true,
        }
    }
}

/// ChatML, as SmolLM's template writes it (without the default system prompt).
pub const CHATML_TEMPLATE: &str = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

/// Merges of the tiny BPE vocabulary, in rank order.
pub const BPE_MERGES: &[&str] = &[
    "Ġ t", "h e", "Ġt he", "Ġ a", "i n", "Ġ w", "o r", "Ġw or", "l d", "Ġwor ld", "e l", "el l", "ell o",
    "H ello",
];

/// SentencePiece pieces of the tiny SPM vocabulary with their scores.
pub const SPM_PIECES: &[(&str, f32)] = &[
    ("▁", -1.0),
    ("▁h", -2.0),
    ("he", -3.0),
    ("ll", -3.5),
    ("llo", -4.0),
    ("▁he", -2.5),
    ("▁hello", -1.5),
    ("▁w", -3.0),
    ("or", -3.0),
    ("▁wor", -3.2),
    ("ld", -3.3),
    ("▁world", -1.6),
];

/// The vocabulary metadata (tokens, types, merges or scores, special ids) of a tiny model.
pub fn vocab_metadata(w: &mut GgufWriter, vocab: TinyVocab) -> usize {
    let mut tokens: Vec<String> = Vec::new();
    let mut types: Vec<i32> = Vec::new();
    match vocab {
        TinyVocab::Bpe => {
            for t in ["<|endoftext|>", "<|im_start|>", "<|im_end|>"] {
                tokens.push(t.into());
                types.push(3);
            }
            let mut s = String::new();
            crate::tokenizer::bytes_to_vocab_chars(&(0u8..=255).collect::<Vec<_>>(), &mut s);
            for c in s.chars() {
                tokens.push(c.to_string());
                types.push(1);
            }
            for m in BPE_MERGES {
                tokens.push(m.replace(' ', ""));
                types.push(1);
            }
            tokens.push("<tool>".into());
            types.push(4);
            w.str("tokenizer.ggml.model", "gpt2");
            w.str("tokenizer.ggml.pre", "smollm");
            w.kv(
                "tokenizer.ggml.merges",
                Value::Array(Array::Str(BPE_MERGES.iter().map(|m| m.to_string()).collect())),
            );
            w.u32("tokenizer.ggml.bos_token_id", 1);
            w.u32("tokenizer.ggml.eos_token_id", 2);
            w.bool("tokenizer.ggml.add_bos_token", false);
            w.str("tokenizer.chat_template", CHATML_TEMPLATE);
        }
        TinyVocab::Spm => {
            let mut scores = Vec::new();
            for (t, ty) in [("<unk>", 2), ("<s>", 3), ("</s>", 3)] {
                tokens.push(t.into());
                types.push(ty);
                scores.push(0.0);
            }
            for b in 0..=255u8 {
                tokens.push(format!("<0x{b:02X}>"));
                types.push(6);
                scores.push(0.0);
            }
            for c in 'a'..='z' {
                tokens.push(c.to_string());
                types.push(1);
                scores.push(-5.0);
            }
            for (p, s) in SPM_PIECES {
                tokens.push(p.to_string());
                types.push(1);
                scores.push(*s);
            }
            w.str("tokenizer.ggml.model", "llama");
            w.kv("tokenizer.ggml.scores", Value::Array(Array::F32(scores)));
            w.u32("tokenizer.ggml.bos_token_id", 1);
            w.u32("tokenizer.ggml.eos_token_id", 2);
            w.u32("tokenizer.ggml.unknown_token_id", 0);
        }
    }
    let n = tokens.len();
    w.kv("tokenizer.ggml.tokens", Value::Array(Array::Str(tokens)));
    w.kv("tokenizer.ggml.token_type", Value::Array(Array::I32(types)));
    n
}

/// Encodes values as a tensor of type `ty` with ggml's reference quantizer (rows must be whole
/// blocks of the type).
pub fn encode_tensor(values: &[f32], ty: GgmlType) -> Vec<u8> {
    crate::quant::Codec::of(ty)
        .expect("fixtures use types the engine can write")
        .quantize(values)
}

/// One tensor of a llama model: name, dims (ggml order), storage type, and the scale of its
/// random values (`None`: a norm weight near 1).
type TensorSpec = (String, Vec<u64>, GgmlType, Option<f32>);

/// Metadata and the tensor list of a llama model with `cfg`'s shape.
fn llama_layout(cfg: &TinyConfig) -> (GgufWriter, Vec<TensorSpec>) {
    let mut w = GgufWriter::new();
    w.str("general.architecture", "llama");
    w.str("general.name", "tiny-test-llama");
    w.str("general.license", "apache-2.0");
    let n_vocab = vocab_metadata(&mut w, cfg.vocab) as u64;
    w.u32("llama.block_count", cfg.layers);
    w.u32("llama.context_length", cfg.context);
    w.u32("llama.embedding_length", cfg.embedding);
    w.u32("llama.feed_forward_length", cfg.feed_forward);
    w.u32("llama.attention.head_count", cfg.heads);
    w.u32("llama.attention.head_count_kv", cfg.kv_heads);
    w.f32("llama.rope.freq_base", 10000.0);
    w.f32("llama.attention.layer_norm_rms_epsilon", 1e-5);

    let ty = GgmlType::from_name(cfg.weight_type).expect("a known type name");
    let f32t = GgmlType::from_name("F32").expect("F32 exists");
    let q8 = GgmlType::from_name("Q8_0").expect("Q8_0 exists");
    let (d, ff) = (u64::from(cfg.embedding), u64::from(cfg.feed_forward));
    let hd = d / u64::from(cfg.heads);
    let kv = hd * u64::from(cfg.kv_heads);
    let s = 1.0 / (d as f32).sqrt();
    let mut t = Vec::new();
    // Small embeddings keep the logits of the tied output flat enough that sampling varies.
    t.push(("token_embd.weight".to_string(), vec![d, n_vocab], q8, Some(0.1)));
    for i in 0..cfg.layers {
        t.push((format!("blk.{i}.attn_norm.weight"), vec![d], f32t, None));
        t.push((format!("blk.{i}.attn_q.weight"), vec![d, d], ty, Some(s)));
        t.push((format!("blk.{i}.attn_k.weight"), vec![d, kv], ty, Some(s)));
        t.push((format!("blk.{i}.attn_v.weight"), vec![d, kv], ty, Some(s)));
        t.push((format!("blk.{i}.attn_output.weight"), vec![d, d], ty, Some(s)));
        t.push((format!("blk.{i}.ffn_norm.weight"), vec![d], f32t, None));
        t.push((format!("blk.{i}.ffn_gate.weight"), vec![d, ff], ty, Some(s)));
        t.push((format!("blk.{i}.ffn_up.weight"), vec![d, ff], ty, Some(s)));
        t.push((
            format!("blk.{i}.ffn_down.weight"),
            vec![ff, d],
            ty,
            Some(1.0 / (ff as f32).sqrt()),
        ));
    }
    t.push(("output_norm.weight".to_string(), vec![d], f32t, None));
    if !cfg.tied {
        t.push(("output.weight".to_string(), vec![d, n_vocab], ty, Some(0.1)));
    }
    (w, t)
}

/// A tiny llama model as a writer, so tests can alter it before serialising.
pub fn tiny_llama(cfg: &TinyConfig) -> GgufWriter {
    let (mut w, tensors) = llama_layout(cfg);
    let mut rng = Rng::new(cfg.seed);
    for (name, dims, ty, scale) in tensors {
        let n: u64 = dims.iter().product();
        let values: Vec<f32> = match scale {
            None => (0..n).map(|i| 1.0 + 0.01 * (i % 7) as f32).collect(),
            Some(scale) => (0..n).map(|_| (rng.next_f32() * 2.0 - 1.0) * scale).collect(),
        };
        let data = encode_tensor(&values, ty);
        w.tensor(name, &dims, ty, data);
    }
    w
}

/// A llama model of any size whose weights are all zero and never materialised: serve
/// [`GgufWriter::header`] and zeros after it to test what happens with a model too large for a
/// browser tab, without a multi-gigabyte file. `None` when a tensor's shape does not fit its type.
pub fn virtual_llama(cfg: &TinyConfig) -> Option<GgufWriter> {
    let (mut w, tensors) = llama_layout(cfg);
    for (name, dims, ty, _) in tensors {
        w.zero_tensor(name, &dims, ty)?;
    }
    Some(w)
}

/// The bytes of [`tiny_llama`] with the default configuration.
pub fn tiny_llama_bytes() -> Vec<u8> {
    tiny_llama(&TinyConfig::default()).to_bytes()
}
