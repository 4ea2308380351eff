//! Tiny random-weight models built in code, for tests that must not wait for a real model: any
//! architecture of the registry, from its own tensor list.
//!
//! The weights are random, so the text they generate is gibberish, but every code path (GGUF
//! parsing, both tokenizer families, chat templates, quantized kernels, sampling) is exercised
//! with files of a few hundred kilobytes.

use crate::arch::{Arch, Need, TensorSpec};
use crate::gguf::{Array, GgmlType, Gguf, GgufWriter, Value};
use crate::sampling::Rng;

/// Which tokenizer family the tiny model carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TinyVocab {
    /// Byte-level BPE (`gpt2`) with ChatML control tokens, like SmolLM.
    Bpe,
    /// SentencePiece-style (`llama`) with byte fallback, like Llama 2 and TinyLlama.
    Spm,
}

/// Shape and contents of a tiny model of any architecture.
#[derive(Debug, Clone)]
pub struct TinyShape {
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
    /// Width of a head, when it is not `embedding / heads`.
    pub head_dim: Option<u32>,
    /// Feed-forward width (an expert's, with experts).
    pub feed_forward: u32,
    /// Trained context length.
    pub context: u32,
    /// Seed of the random weights.
    pub seed: u64,
    /// Whether `output.weight` is absent (tied to `token_embd.weight`).
    pub tied: bool,
    /// Experts per layer (0: dense), for architectures that have them.
    pub experts: u32,
    /// Experts used per token.
    pub experts_used: u32,
    /// Sliding window, for architectures that have one.
    pub window: Option<u32>,
    /// The scale of the embedding's random values: larger values give more peaked next-token
    /// distributions through the tied output (the reference tests want clear choices).
    pub embedding_scale: f32,
}

/// The shape of a tiny llama model (the name tests have always used).
pub type TinyConfig = TinyShape;

impl Default for TinyShape {
    fn default() -> Self {
        Self {
            vocab: TinyVocab::Bpe,
            weight_type: "Q8_0",
            layers: 2,
            embedding: 64,
            heads: 4,
            kv_heads: 2,
            head_dim: None,
            feed_forward: 128,
            context: 256,
            seed: 1,
            tied: true,
            experts: 0,
            experts_used: 0,
            window: None,
            embedding_scale: 0.1,
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

/// Metadata and the tensor list (with each tensor's type) of a model of architecture `arch`
/// with `shape`'s sizes: the common keys here, the architecture's own from
/// [`Arch::tiny_keys`], and the tensors from its own [`Arch::tensors`] (required ones, and
/// optional ones its real models have).
fn layout(arch: &dyn Arch, shape: &TinyShape) -> Option<(GgufWriter, Vec<(TensorSpec, GgmlType)>)> {
    let name = arch.name();
    let mut w = GgufWriter::new();
    w.str("general.architecture", name);
    // Not the architecture's name: llama.cpp keys some vocabulary quirks on `general.name`
    // (a name containing "phi3" makes it look up tokens the tiny vocabulary does not have).
    w.str("general.name", "tiny random-weight test model");
    w.str("general.license", "apache-2.0");
    let n_vocab = vocab_metadata(&mut w, shape.vocab) as u64;
    let key = |k: &str| format!("{name}.{k}");
    w.u32(key("block_count"), shape.layers);
    w.u32(key("context_length"), shape.context);
    w.u32(key("embedding_length"), shape.embedding);
    w.u32(key("feed_forward_length"), shape.feed_forward);
    w.u32(key("attention.head_count"), shape.heads);
    w.u32(key("attention.head_count_kv"), shape.kv_heads);
    if let Some(hd) = shape.head_dim {
        w.u32(key("attention.key_length"), hd);
        w.u32(key("attention.value_length"), hd);
    }
    if shape.experts > 0 {
        w.u32(key("expert_count"), shape.experts);
        w.u32(key("expert_used_count"), shape.experts_used);
    }
    arch.tiny_keys(&mut w, shape);
    // The configuration the architecture reads from these keys decides its tensors.
    let q8 = GgmlType::from_name("Q8_0")?;
    let mut probe = w.clone();
    probe.zero_tensor("token_embd.weight", &[u64::from(shape.embedding), n_vocab], q8)?;
    let (header, len) = probe.header();
    let gguf = Gguf::parse_prefix(&header, len).ok()?;
    let cfg = arch.config(&gguf).ok()?;
    let ty = GgmlType::from_name(shape.weight_type)?;
    let f32t = GgmlType::from_name("F32")?;
    let specs = arch
        .tensors(&cfg, &gguf)
        .into_iter()
        .filter(|s| match s.need {
            Need::Required | Need::Usual => true,
            Need::Optional => s.name == "output.weight" && !shape.tied,
        })
        .map(|s| {
            let t = if s.dims.len() == 1 || s.name.ends_with("ffn_gate_inp.weight") {
                f32t
            } else if s.name == "token_embd.weight" {
                q8
            } else {
                ty
            };
            (s, t)
        })
        .collect();
    Some((w, specs))
}

/// The random values of a tensor: norm weights near 1, biases and matrices small and random
/// (a matrix's scaled by `1/sqrt(row length)`), the embedding (and an untied output) by the
/// shape's embedding scale.
fn values(spec: &TensorSpec, shape: &TinyShape, rng: &mut Rng) -> Vec<f32> {
    let n: u64 = spec.dims.iter().product();
    let is_norm = spec.name.contains("norm") && spec.name.ends_with(".weight");
    if is_norm {
        return (0..n).map(|i| 1.0 + 0.01 * (i % 7) as f32).collect();
    }
    let scale = if spec.name.starts_with("token_embd") || spec.name.starts_with("output.") {
        shape.embedding_scale
    } else if spec.name.ends_with(".bias") {
        0.05
    } else if spec.name.starts_with("rope_") {
        return (0..n).map(|i| 1.0 + (i % 3) as f32).collect();
    } else {
        1.0 / (spec.dims[0] as f32).sqrt()
    };
    (0..n).map(|_| (rng.next_f32() * 2.0 - 1.0) * scale).collect()
}

/// A tiny model of architecture `arch` as a writer, so tests can alter it before serialising;
/// `None` for an unknown architecture or a shape whose rows are not whole blocks of its type.
pub fn tiny(arch: &str, shape: &TinyShape) -> Option<GgufWriter> {
    let arch = crate::arch::find(arch)?;
    let (mut w, specs) = layout(arch, shape)?;
    let mut rng = Rng::new(shape.seed);
    for (spec, ty) in specs {
        let v = values(&spec, shape, &mut rng);
        if spec.dims[0] % u64::from(ty.block_size) != 0 {
            return None;
        }
        w.tensor(spec.name, &spec.dims, ty, encode_tensor(&v, ty));
    }
    Some(w)
}

/// A tiny llama model as a writer, so tests can alter it before serialising.
pub fn tiny_llama(cfg: &TinyConfig) -> GgufWriter {
    tiny("llama", cfg).unwrap_or_default()
}

/// A llama model of any size whose weights are all zero and never materialised: serve
/// [`GgufWriter::header`] and zeros after it to test what happens with a model too large for a
/// browser tab, without a multi-gigabyte file. `None` when a tensor's shape does not fit its type.
pub fn virtual_llama(cfg: &TinyConfig) -> Option<GgufWriter> {
    let arch = crate::arch::find("llama")?;
    let (mut w, specs) = layout(arch, cfg)?;
    for (spec, ty) in specs {
        w.zero_tensor(spec.name, &spec.dims, ty)?;
    }
    Some(w)
}

/// The bytes of [`tiny_llama`] with the default configuration.
pub fn tiny_llama_bytes() -> Vec<u8> {
    tiny_llama(&TinyConfig::default()).to_bytes()
}

/// The shape of the tiny model of each architecture that the llama.cpp reference test runs
/// (`tests/archs.rs`, recorded by `cargo xtask reference`): the features that distinguish the
/// architecture at small sizes (grouped, multi-query and full multi-head attention, a head
/// wider than the residual's share, experts, sliding windows, tied and untied heads), and
/// embeddings large enough that the next-token choices are clear.
pub fn reference_shape(arch: &str) -> TinyShape {
    let base = TinyShape {
        layers: 2,
        embedding: 64,
        heads: 4,
        kv_heads: 2,
        feed_forward: 128,
        context: 512,
        seed: 7,
        embedding_scale: 1.0,
        // An output matrix of its own: through the tied embedding, these large embeddings make
        // every architecture predict its input token, whatever its blocks compute.
        tied: false,
        ..TinyShape::default()
    };
    match arch {
        "qwen3" => TinyShape {
            head_dim: Some(32),
            ..base
        },
        "qwen3moe" | "granitemoe" => TinyShape {
            experts: 4,
            experts_used: 2,
            feed_forward: 64,
            ..base
        },
        "gemma3" => TinyShape {
            vocab: TinyVocab::Spm,
            layers: 6,
            kv_heads: 1,
            head_dim: Some(32),
            window: Some(8),
            ..base
        },
        // Phi-3 ships Llama 2's SentencePiece vocabulary.
        "phi3" => TinyShape {
            vocab: TinyVocab::Spm,
            kv_heads: 4,
            ..base
        },
        "olmo2" => TinyShape { kv_heads: 4, ..base },
        "falcon" => TinyShape { kv_heads: 1, ..base },
        _ => base,
    }
}

/// Every tiny model the llama.cpp reference test runs, as (record key, architecture, shape):
/// each architecture's [`reference_shape`], and the variants an architecture's name hides
/// (`llama` with a mixture of experts is Mixtral).
pub fn reference_models() -> Vec<(String, &'static str, TinyShape)> {
    let mut all: Vec<_> = crate::arch::ARCHS
        .iter()
        .map(|a| (a.name().to_string(), a.name(), reference_shape(a.name())))
        .collect();
    let moe = TinyShape {
        experts: 4,
        experts_used: 2,
        feed_forward: 64,
        ..reference_shape("llama")
    };
    all.push(("llama-moe".into(), "llama", moe));
    all
}

/// The token sequence the reference test feeds the tiny model of `arch` (`n` ids below
/// `vocab`, the same on every run).
pub fn reference_tokens(arch: &str, vocab: usize, n: usize) -> Vec<u32> {
    let seed = arch
        .bytes()
        .fold(1u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|_| (rng.next_f32() * vocab as f32) as u32 % vocab as u32)
        .collect()
}
