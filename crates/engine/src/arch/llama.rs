//! The `llama` architecture: Llama 1/2/3, Mistral 7B, TinyLlama, SmolLM and their fine-tunes.
//!
//! Pre-norm transformer blocks with RMSNorm, rotary position embeddings on adjacent pairs
//! (GGUF's `llama` tensors are permuted for that layout at conversion), grouped-query attention
//! and a SiLU-gated feed-forward network. Fields are named after the GGUF tensors they hold.

use super::{Rope, Scratch};
use crate::error::{Error, Result};
use crate::gguf::Gguf;
use crate::kernels::attention::{attention, KvCache};
use crate::kernels::ops::{rms_norm, rope};
use crate::kernels::QMatrix;
use crate::weights::Loader;

/// Hyperparameters, read from `llama.*` metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct Hparams {
    /// `llama.block_count`
    pub block_count: usize,
    /// `llama.embedding_length`: width of the residual stream.
    pub embedding_length: usize,
    /// `llama.feed_forward_length`: width of the gated FFN.
    pub feed_forward_length: usize,
    /// `llama.attention.head_count`
    pub head_count: usize,
    /// `llama.attention.head_count_kv`: fewer than `head_count` with grouped-query attention.
    pub head_count_kv: usize,
    /// Per-head width (`llama.attention.key_length`, else embedding / heads).
    pub head_dim: usize,
    /// `llama.rope.freq_base`
    pub rope_freq_base: f32,
    /// `llama.rope.scaling.factor` with `linear` scaling (positions are divided by it).
    pub rope_linear_factor: f32,
    /// `llama.attention.layer_norm_rms_epsilon`
    pub rms_eps: f32,
    /// `llama.context_length`: the longest context the model was trained on.
    pub context_length: usize,
    /// Vocabulary size (rows of `token_embd.weight`).
    pub vocab_size: usize,
}

impl Hparams {
    /// Reads and checks the hyperparameters of architecture `arch` (`llama` here; the key prefix).
    pub fn from_gguf(gguf: &Gguf, arch: &str) -> Result<Self> {
        let key = |k: &str| format!("{arch}.{k}");
        let req = |k: &str| -> Result<usize> {
            let v = gguf.uint(&key(k))?;
            usize::try_from(v)
                .ok()
                .filter(|&v| v > 0 && v <= 1 << 24)
                .ok_or_else(|| Error::BadMetadata {
                    key: key(k),
                    reason: format!("{v} is not a sensible size"),
                })
        };
        let block_count = req("block_count")?;
        let embedding_length = req("embedding_length")?;
        let feed_forward_length = req("feed_forward_length")?;
        let head_count = req("attention.head_count")?;
        let head_count_kv = match gguf.opt_uint(&key("attention.head_count_kv"))? {
            None => head_count,
            Some(_) => req("attention.head_count_kv")?,
        };
        if head_count % head_count_kv != 0 {
            return Err(Error::BadMetadata {
                key: key("attention.head_count_kv"),
                reason: format!(
                    "{head_count} attention heads cannot be shared by {head_count_kv} key/value heads"
                ),
            });
        }
        let head_dim = match gguf.opt_uint(&key("attention.key_length"))? {
            Some(_) => req("attention.key_length")?,
            None => {
                if embedding_length % head_count != 0 {
                    return Err(Error::BadMetadata {
                        key: key("attention.head_count"),
                        reason: format!("{embedding_length} is not divisible by {head_count} heads"),
                    });
                }
                embedding_length / head_count
            }
        };
        if let Some(v) = gguf.opt_uint(&key("attention.value_length"))? {
            if v as usize != head_dim {
                return Err(Error::BadMetadata {
                    key: key("attention.value_length"),
                    reason: format!("{v} differs from the key length {head_dim}; not supported"),
                });
            }
        }
        if head_dim % 2 != 0 {
            return Err(Error::BadMetadata {
                key: key("attention.key_length"),
                reason: format!("head width {head_dim} is odd; rotary embeddings need pairs"),
            });
        }
        if let Some(r) = gguf.opt_uint(&key("rope.dimension_count"))? {
            if r as usize != head_dim {
                return Err(Error::BadMetadata {
                    key: key("rope.dimension_count"),
                    reason: format!("partial rotary embeddings ({r} of {head_dim}) are not supported"),
                });
            }
        }
        if gguf.opt_uint(&key("expert_count"))?.unwrap_or(0) > 0 {
            return Err(Error::UnsupportedArchitecture(format!(
                "{arch} with mixture-of-experts layers (Mixtral-style)"
            )));
        }
        let finite = |k: &str, default: f32| -> Result<f32> {
            let v = gguf.opt_f32(&key(k))?.unwrap_or(default);
            if v.is_finite() && v > 0.0 {
                Ok(v)
            } else {
                Err(Error::BadMetadata {
                    key: key(k),
                    reason: format!("{v} is not a positive number"),
                })
            }
        };
        let rope_freq_base = finite("rope.freq_base", 10_000.0)?;
        let rms_eps = finite("attention.layer_norm_rms_epsilon", 1e-5)?;
        let rope_linear_factor = match gguf.opt_str(&key("rope.scaling.type"))? {
            None | Some("none") => 1.0,
            Some("linear") => finite("rope.scaling.factor", 1.0)?,
            Some(other) => {
                return Err(Error::BadMetadata {
                    key: key("rope.scaling.type"),
                    reason: format!("rope scaling {other:?} is not supported"),
                })
            }
        };
        let context_length = req("context_length")?;
        let vocab_size =
            gguf.tensor("token_embd.weight")
                .and_then(|t| t.dims.get(1).copied())
                .ok_or_else(|| Error::MissingTensor("token_embd.weight".into()))? as usize;
        Ok(Self {
            block_count,
            embedding_length,
            feed_forward_length,
            head_count,
            head_count_kv,
            head_dim,
            rope_freq_base,
            rope_linear_factor,
            rms_eps,
            context_length,
            vocab_size,
        })
    }

    /// Width of the keys (and values) of one position: key/value heads times head width.
    pub fn kv_width(&self) -> usize {
        self.head_count_kv * self.head_dim
    }

    /// Width of the queries of one position.
    pub fn q_width(&self) -> usize {
        self.head_count * self.head_dim
    }
}

/// The tensors of block `i` and their shapes (ggml order), in the order [`Block`] holds them;
/// `true` marks matrices (the rest are f32 vectors). Loading and checking share this table.
fn block_spec(hp: &Hparams, i: usize) -> [(String, Vec<u64>, bool); 9] {
    let (d, ff) = (hp.embedding_length as u64, hp.feed_forward_length as u64);
    let (qw, kv) = (hp.q_width() as u64, hp.kv_width() as u64);
    let n = |t: &str| format!("blk.{i}.{t}.weight");
    [
        (n("attn_norm"), vec![d], false),
        (n("attn_q"), vec![d, qw], true),
        (n("attn_k"), vec![d, kv], true),
        (n("attn_v"), vec![d, kv], true),
        (n("attn_output"), vec![qw, d], true),
        (n("ffn_norm"), vec![d], false),
        (n("ffn_gate"), vec![d, ff], true),
        (n("ffn_up"), vec![d, ff], true),
        (n("ffn_down"), vec![ff, d], true),
    ]
}

/// Refusals that apply to any block: tensors of other architectures that share `llama`'s name.
fn check_block_extras(loader: &Loader<'_>, i: usize) -> Result<()> {
    for bias in ["attn_q", "attn_k", "attn_v"] {
        if loader.has(&format!("blk.{i}.{bias}.bias")) {
            return Err(Error::BadTensor {
                name: format!("blk.{i}.{bias}.bias"),
                reason: "attention biases are not part of the llama architecture".into(),
            });
        }
    }
    if loader.has(&format!("blk.{i}.ffn_gate_exps.weight")) {
        return Err(Error::UnsupportedArchitecture(
            "llama with mixture-of-experts layers".into(),
        ));
    }
    Ok(())
}

/// One transformer block.
struct Block {
    attn_norm: Vec<f32>,
    attn_q: QMatrix,
    attn_k: QMatrix,
    attn_v: QMatrix,
    attn_output: QMatrix,
    ffn_norm: Vec<f32>,
    ffn_gate: QMatrix,
    ffn_up: QMatrix,
    ffn_down: QMatrix,
    cache: KvCache,
}

/// A loaded llama model.
pub struct Llama {
    hp: Hparams,
    /// Kept quantized: only the rows of the tokens being fed are dequantized.
    token_embd: QMatrix,
    blocks: Vec<Block>,
    output_norm: Vec<f32>,
    /// `output.weight`; `None` when the model ties it to `token_embd.weight` (SmolLM does),
    /// which then serves both purposes without a second copy.
    output: Option<QMatrix>,
    rope: Rope,
    scratch: Scratch,
}

impl Llama {
    /// Checks every tensor's presence, shape and type without reading any data.
    pub(crate) fn check(gguf: &Gguf, loader: &Loader<'_>) -> Result<()> {
        let hp = Hparams::from_gguf(gguf, "llama")?;
        let (d, v) = (hp.embedding_length as u64, hp.vocab_size as u64);
        loader.check_matrix("token_embd.weight", &[d, v])?;
        if loader.has("output.weight") {
            loader.check_matrix("output.weight", &[d, v])?;
        }
        loader.check_vector("output_norm.weight", d)?;
        for i in 0..hp.block_count {
            check_block_extras(loader, i)?;
            for (name, dims, matrix) in block_spec(&hp, i) {
                if matrix {
                    loader.check_matrix(&name, &dims)?;
                } else {
                    loader.check_vector(&name, dims[0])?;
                }
            }
        }
        if loader.has("rope_freqs.weight") {
            loader.check_vector("rope_freqs.weight", (hp.head_dim / 2) as u64)?;
        }
        Ok(())
    }

    /// Loads weights and checks every shape against the hyperparameters.
    pub(crate) fn load(
        gguf: &Gguf,
        loader: &mut Loader<'_>,
        context: usize,
        kv: omp_protocol::KvCacheType,
    ) -> Result<Self> {
        Self::check(gguf, loader)?;
        let hp = Hparams::from_gguf(gguf, "llama")?;
        let (d, v) = (hp.embedding_length as u64, hp.vocab_size as u64);
        let token_embd = loader.matrix("token_embd.weight", &[d, v])?;
        let output = if loader.has("output.weight") {
            Some(loader.matrix("output.weight", &[d, v])?)
        } else {
            None
        };
        let output_norm = loader.vector("output_norm.weight", d)?;
        let mut blocks = Vec::with_capacity(hp.block_count);
        for i in 0..hp.block_count {
            let [attn_norm, attn_q, attn_k, attn_v, attn_output, ffn_norm, ffn_gate, ffn_up, ffn_down] =
                block_spec(&hp, i);
            blocks.push(Block {
                attn_norm: loader.vector(&attn_norm.0, attn_norm.1[0])?,
                attn_q: loader.matrix(&attn_q.0, &attn_q.1)?,
                attn_k: loader.matrix(&attn_k.0, &attn_k.1)?,
                attn_v: loader.matrix(&attn_v.0, &attn_v.1)?,
                attn_output: loader.matrix(&attn_output.0, &attn_output.1)?,
                ffn_norm: loader.vector(&ffn_norm.0, ffn_norm.1[0])?,
                ffn_gate: loader.matrix(&ffn_gate.0, &ffn_gate.1)?,
                ffn_up: loader.matrix(&ffn_up.0, &ffn_up.1)?,
                ffn_down: loader.matrix(&ffn_down.0, &ffn_down.1)?,
                cache: KvCache::new(kv, hp.head_count_kv, context, hp.head_dim),
            });
        }
        let freq_factors = if loader.has("rope_freqs.weight") {
            Some(loader.vector("rope_freqs.weight", (hp.head_dim / 2) as u64)?)
        } else {
            None
        };
        let rope = Rope::new(
            hp.head_dim,
            context,
            hp.rope_freq_base,
            hp.rope_linear_factor,
            freq_factors.as_deref(),
        );
        Ok(Self {
            hp,
            token_embd,
            blocks,
            output_norm,
            output,
            rope,
            scratch: Scratch::default(),
        })
    }

    /// The hyperparameters.
    pub fn hparams(&self) -> &Hparams {
        &self.hp
    }

    /// Every weight matrix.
    fn matrices(&self) -> impl Iterator<Item = &QMatrix> {
        let blocks = self.blocks.iter().flat_map(|b| {
            [
                &b.attn_q,
                &b.attn_k,
                &b.attn_v,
                &b.attn_output,
                &b.ffn_gate,
                &b.ffn_up,
                &b.ffn_down,
            ]
        });
        std::iter::once(&self.token_embd)
            .chain(self.output.as_ref())
            .chain(blocks)
    }

    /// Bytes of weights and caches held.
    pub(crate) fn bytes(&self) -> usize {
        let caches: usize = self
            .blocks
            .iter()
            .map(|b| b.cache.bytes() + 4 * (b.attn_norm.len() + b.ffn_norm.len()))
            .sum();
        self.matrices().map(QMatrix::bytes).sum::<usize>() + caches
    }

    /// Bytes of weight matrices copied out of the file (converted ones); the rest are read
    /// in place.
    pub(crate) fn copied_weight_bytes(&self) -> usize {
        self.matrices()
            .filter(|m| !m.borrows_file())
            .map(QMatrix::bytes)
            .sum()
    }

    /// Drops cached keys and values past `len` tokens.
    pub(crate) fn truncate_cache(&mut self, len: usize) {
        for b in &mut self.blocks {
            b.cache.truncate(len);
        }
    }

    /// Runs `tokens` at positions `pos..pos + n` (the cache must hold exactly `pos` tokens) and
    /// writes the logits of the last position, or of every position when `all` is set, to
    /// `logits` (`rows * vocab` values).
    pub(crate) fn forward(
        &mut self,
        tokens: &[u32],
        pos: usize,
        all: bool,
        logits: &mut Vec<f32>,
    ) -> Result<()> {
        let n = tokens.len();
        let hp = &self.hp;
        let (d, ff, qw, kvw) = (
            hp.embedding_length,
            hp.feed_forward_length,
            hp.q_width(),
            hp.kv_width(),
        );
        let s = &mut self.scratch;
        s.resize(n, d, ff, qw, kvw);
        for (i, &t) in tokens.iter().enumerate() {
            self.token_embd
                .dequantize_row(t as usize, &mut s.x[i * d..(i + 1) * d]);
        }
        let scale = 1.0 / (hp.head_dim as f32).sqrt();
        for b in &mut self.blocks {
            rms_norm(&s.x, &b.attn_norm, hp.rms_eps, &mut s.h);
            s.act.quantize(&s.h, n, d);
            QMatrix::matmul_n(
                [&b.attn_q, &b.attn_k, &b.attn_v],
                &s.act,
                [&mut s.q, &mut s.k, &mut s.v],
            );
            rope(
                &mut s.q,
                hp.head_count,
                hp.head_dim,
                pos,
                &self.rope.cos,
                &self.rope.sin,
            );
            rope(
                &mut s.k,
                hp.head_count_kv,
                hp.head_dim,
                pos,
                &self.rope.cos,
                &self.rope.sin,
            );
            b.cache.append(&s.k, &s.v);
            attention(&s.q, &b.cache, hp.head_count, scale, &mut s.att, &mut s.attention);
            s.act.quantize(&s.att, n, qw);
            b.attn_output.matmul(&s.act, &mut s.h);
            for (x, h) in s.x.iter_mut().zip(&s.h) {
                *x += h;
            }
            rms_norm(&s.x, &b.ffn_norm, hp.rms_eps, &mut s.h);
            s.act.quantize(&s.h, n, d);
            QMatrix::gated_product(&b.ffn_gate, &b.ffn_up, &s.act, &mut s.gate, &mut s.up);
            s.act.quantize(&s.gate, n, ff);
            b.ffn_down.matmul(&s.act, &mut s.h);
            for (x, h) in s.x.iter_mut().zip(&s.h) {
                *x += h;
            }
        }
        let rows = if all { n } else { 1 };
        let last = &s.x[(n - rows) * d..];
        rms_norm(last, &self.output_norm, hp.rms_eps, &mut s.h[..rows * d]);
        s.act.quantize(&s.h[..rows * d], rows, d);
        let out = self.output.as_ref().unwrap_or(&self.token_embd);
        logits.resize(rows * hp.vocab_size, 0.0);
        out.matmul(&s.act, logits);
        Ok(())
    }
}
