//! Hyper-parameters: the keys every architecture shares (`{arch}.block_count`, ...), read and
//! checked once, plus the per-architecture choices each `arch/*.rs` file sets.

use crate::error::{Error, Result};
use crate::gguf::Gguf;
use crate::layers::ffn::Activation;
use crate::layers::norm::NormKind;
use crate::layers::rope::{RopeMode, RopeParams, Yarn};

use super::Dims;

/// Query/key norms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QkNormKind {
    /// None.
    None,
    /// Over each head.
    PerHead,
    /// Over the whole query and key widths.
    Whole,
}

/// The feed-forward layer's form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FfnKind {
    /// Gate and up matrices (`ffn_gate`, `ffn_up`).
    Gated(Activation),
    /// Gate and up stacked in `ffn_up` (Phi-3).
    FusedGated(Activation),
    /// Up then down, no gate (Falcon).
    Plain(Activation),
}

/// Where a rotary table's per-pair factors come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RopeSource {
    /// No factors.
    None,
    /// A tensor of the file (Llama 3's `rope_freqs.weight`), when present.
    Tensor(String),
    /// Phi-3's long-rope factors: the long ones when the context loaded is longer than the
    /// original training context, else the short ones (llama.cpp decides once, at load).
    LongShort {
        /// `rope_factors_long.weight`.
        long: String,
        /// `rope_factors_short.weight`.
        short: String,
        /// `rope.scaling.original_context_length`.
        original_context: usize,
    },
}

/// An architecture's hyper-parameters, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `general.architecture`.
    pub arch: &'static str,
    /// Transformer blocks.
    pub layers: usize,
    /// Residual width.
    pub embedding: usize,
    /// Feed-forward hidden width (dense layers).
    pub feed_forward: usize,
    /// Query heads.
    pub heads: usize,
    /// Key/value heads.
    pub kv_heads: usize,
    /// Width of a head (keys and values alike).
    pub head_dim: usize,
    /// Vocabulary size (rows of `token_embd.weight`).
    pub vocab: usize,
    /// The context the model was trained for.
    pub context: usize,
    /// The norm the blocks use.
    pub norm: NormKind,
    /// Its epsilon.
    pub norm_eps: f32,
    /// Query/key norms.
    pub qk_norm: QkNormKind,
    /// The feed-forward form of dense layers.
    pub ffn: FfnKind,
    /// The rotary table of full-attention layers (`None`: no rotary embedding).
    pub rope: Option<RopeParams>,
    /// Where its per-pair factors come from.
    pub rope_factors: RopeSource,
    /// The rotary table of sliding-window layers, when it differs (Gemma 3's local base).
    pub rope_swa: Option<RopeParams>,
    /// Sliding window size, when some layers use one.
    pub window: Option<usize>,
    /// Layer `i` slides when `i % period < period - 1` (llama.cpp's pattern); 0: every layer.
    pub swa_period: usize,
    /// Experts per mixture-of-experts layer (0: dense).
    pub experts: usize,
    /// Experts run per token.
    pub experts_used: usize,
    /// An expert's hidden width.
    pub expert_ff: usize,
    /// A shared expert's hidden width (0: none).
    pub shared_expert_ff: usize,
    /// Multiplies the token embeddings.
    pub embedding_scale: Option<f32>,
    /// Multiplies the rotated queries.
    pub q_scale: Option<f32>,
    /// Multiplies the attention scores.
    pub kq_scale: f32,
    /// Multiplies each block's branch outputs before they join the residual (Granite).
    pub residual_scale: Option<f32>,
    /// Divides the logits (Granite).
    pub logit_scale: Option<f32>,
    /// Final logit soft-capping.
    pub final_softcap: Option<f32>,
}

impl Config {
    /// Shape facts.
    pub fn dims(&self) -> Dims {
        Dims {
            layers: self.layers,
            embedding: self.embedding,
            feed_forward: if self.experts > 0 {
                self.expert_ff
            } else {
                self.feed_forward
            },
            heads: self.heads,
            kv_heads: self.kv_heads,
            head_dim: self.head_dim,
            vocab: self.vocab,
            context: self.context,
        }
    }

    /// Query width.
    pub fn q_width(&self) -> usize {
        self.heads * self.head_dim
    }

    /// Key (and value) width.
    pub fn kv_width(&self) -> usize {
        self.kv_heads * self.head_dim
    }

    /// Whether layer `i` uses the sliding window.
    pub fn is_swa(&self, i: usize) -> bool {
        self.window.is_some() && (self.swa_period == 0 || i % self.swa_period < self.swa_period - 1)
    }

    /// Positions layer `i` attends to (`usize::MAX`: all).
    pub fn window_of(&self, i: usize) -> usize {
        match self.window {
            Some(w) if self.is_swa(i) => w,
            _ => usize::MAX,
        }
    }

    /// The widest hidden layer a feed-forward pass holds (a fused gate/up holds twice its width).
    pub fn hidden_width(&self) -> usize {
        let dense = match self.ffn {
            FfnKind::FusedGated(_) => 2 * self.feed_forward,
            _ => self.feed_forward,
        };
        dense.max(self.expert_ff).max(self.shared_expert_ff)
    }

    /// The common hyper-parameters of architecture `arch`, with the defaults of a pre-norm
    /// decoder (RMS norm, SiLU-gated FFN, NEOX rotation of the whole head, scores scaled by
    /// `1/sqrt(head_dim)`); each architecture then changes what differs.
    pub fn common(gguf: &Gguf, arch: &'static str) -> Result<Self> {
        let k = Keys { gguf, arch };
        let layers = k.size("block_count")?;
        let embedding = k.size("embedding_length")?;
        let heads = k.size("attention.head_count")?;
        let feed_forward = k.opt_size("feed_forward_length")?.unwrap_or(0);
        let kv_heads = k.opt_size("attention.head_count_kv")?.unwrap_or(heads);
        if heads % kv_heads != 0 {
            return Err(k.bad(
                "attention.head_count_kv",
                format!("{heads} attention heads cannot be shared by {kv_heads} key/value heads"),
            ));
        }
        let head_dim = match k.opt_size("attention.key_length")? {
            Some(d) => d,
            None => {
                if embedding % heads != 0 {
                    return Err(k.bad(
                        "attention.head_count",
                        format!("{embedding} is not divisible by {heads} heads"),
                    ));
                }
                embedding / heads
            }
        };
        if let Some(v) = k.opt_size("attention.value_length")? {
            if v != head_dim {
                return Err(k.bad(
                    "attention.value_length",
                    format!("{v} differs from the key length {head_dim}; not supported"),
                ));
            }
        }
        // Every product of these sizes stays far from overflowing a 32-bit `usize` (wasm32).
        if (heads as u64) * (head_dim as u64) > 1 << 24 {
            return Err(k.bad(
                "attention.head_count",
                format!("{heads} heads of width {head_dim} are more than any model has"),
            ));
        }
        let context = k.size("context_length")?;
        let vocab = gguf
            .tensor("token_embd.weight")
            .and_then(|t| t.dims.get(1).copied())
            .ok_or_else(|| Error::MissingTensor("token_embd.weight".into()))? as usize;
        let experts = k.opt_size("expert_count")?.unwrap_or(0);
        let experts_used = k.opt_size("expert_used_count")?.unwrap_or(0);
        if experts > 0 && (experts_used == 0 || experts_used > experts) {
            return Err(k.bad(
                "expert_used_count",
                format!("{experts_used} experts used per token out of {experts}"),
            ));
        }
        if experts > 512 {
            return Err(k.bad(
                "expert_count",
                format!("{experts} experts (llama.cpp allows 512)"),
            ));
        }
        if experts == 0 && feed_forward == 0 {
            return Err(k.bad("feed_forward_length", "missing".into()));
        }
        let rope = k.rope(head_dim, RopeMode::Neox, context)?;
        Ok(Self {
            arch,
            layers,
            embedding,
            feed_forward,
            heads,
            kv_heads,
            head_dim,
            vocab,
            context,
            norm: NormKind::Rms,
            norm_eps: k.positive("attention.layer_norm_rms_epsilon", 1e-5)?,
            qk_norm: QkNormKind::None,
            ffn: FfnKind::Gated(Activation::Silu),
            rope: Some(rope),
            rope_factors: RopeSource::None,
            rope_swa: None,
            window: None,
            swa_period: 0,
            experts,
            experts_used,
            expert_ff: if experts > 0 { feed_forward } else { 0 },
            shared_expert_ff: 0,
            embedding_scale: None,
            q_scale: None,
            kq_scale: 1.0 / (head_dim as f32).sqrt(),
            residual_scale: None,
            logit_scale: None,
            final_softcap: None,
        })
    }

    /// Sets the rotary layout of every table.
    pub fn with_rope_mode(mut self, mode: RopeMode) -> Self {
        for r in self.rope.iter_mut().chain(self.rope_swa.iter_mut()) {
            r.mode = mode;
        }
        self
    }

    /// Reads `{arch}.attention.sliding_window` (a window of 0 means none, as llama.cpp reads
    /// it) and its pattern (`attention.sliding_window_pattern`, else `default_period`).
    pub fn read_window(&mut self, gguf: &Gguf, default_period: usize) -> Result<()> {
        let k = Keys {
            gguf,
            arch: self.arch,
        };
        if let Some(w) = k.opt_uint("attention.sliding_window")? {
            if w > 0 {
                self.window = Some(usize::try_from(w).unwrap_or(usize::MAX));
                self.swa_period = match k.opt_uint("attention.sliding_window_pattern")? {
                    Some(p) if p > 0 && p <= 1 << 16 => p as usize,
                    Some(p) => return Err(k.bad("attention.sliding_window_pattern", format!("{p}"))),
                    None => default_period,
                };
            }
        }
        Ok(())
    }
}

/// Reads `{arch}.{key}` values with the checks every size needs.
pub struct Keys<'a> {
    /// The file.
    pub gguf: &'a Gguf,
    /// The key prefix.
    pub arch: &'a str,
}

impl Keys<'_> {
    /// The full key name.
    pub fn key(&self, k: &str) -> String {
        format!("{}.{k}", self.arch)
    }

    /// A `BadMetadata` error for `{arch}.{k}`.
    pub fn bad(&self, k: &str, reason: String) -> Error {
        Error::BadMetadata {
            key: self.key(k),
            reason,
        }
    }

    /// An unsigned integer, if present.
    pub fn opt_uint(&self, k: &str) -> Result<Option<u64>> {
        self.gguf.opt_uint(&self.key(k))
    }

    /// A required size: between 1 and 2^24.
    pub fn size(&self, k: &str) -> Result<usize> {
        self.opt_size(k)?.ok_or_else(|| Error::MissingKey(self.key(k)))
    }

    /// An optional size: between 1 and 2^24 when present.
    pub fn opt_size(&self, k: &str) -> Result<Option<usize>> {
        match self.gguf.opt_uint(&self.key(k))? {
            None => Ok(None),
            Some(v) => usize::try_from(v)
                .ok()
                .filter(|&v| v > 0 && v <= 1 << 24)
                .map(Some)
                .ok_or_else(|| self.bad(k, format!("{v} is not a sensible size"))),
        }
    }

    /// An optional finite float.
    pub fn opt_f32(&self, k: &str) -> Result<Option<f32>> {
        match self.gguf.opt_f32(&self.key(k))? {
            Some(v) if !v.is_finite() => Err(self.bad(k, format!("{v} is not a finite number"))),
            v => Ok(v),
        }
    }

    /// A positive finite float, `default` when absent.
    pub fn positive(&self, k: &str, default: f32) -> Result<f32> {
        let v = self.opt_f32(k)?.unwrap_or(default);
        if v > 0.0 {
            Ok(v)
        } else {
            Err(self.bad(k, format!("{v} is not a positive number")))
        }
    }

    /// The rotary table of full-attention layers: `rope.freq_base`, `rope.dimension_count`
    /// (rotating part of each head), `rope.scaling.*` (none, linear, YaRN; long-rope factors
    /// come from tensors and are set by the architecture).
    pub fn rope(&self, head_dim: usize, mode: RopeMode, context: usize) -> Result<RopeParams> {
        let dims = self.opt_size("rope.dimension_count")?.unwrap_or(head_dim);
        if dims > head_dim || dims % 2 != 0 {
            return Err(self.bad(
                "rope.dimension_count",
                format!("{dims} rotary dimensions do not fit heads of {head_dim} in pairs"),
            ));
        }
        let base = self.positive("rope.freq_base", 10_000.0)?;
        // Older files say `rope.scale_linear` for a linear factor, as llama.cpp still reads.
        let factor = match self
            .opt_f32("rope.scaling.factor")?
            .or(self.opt_f32("rope.scale_linear")?)
        {
            Some(f) if f > 0.0 => f,
            // 0 means no scaling, as llama.cpp reads it.
            Some(0.0) | None => 1.0,
            Some(f) => return Err(self.bad("rope.scaling.factor", format!("{f}"))),
        };
        let attn_factor = self.positive("rope.scaling.attn_factor", 1.0)?;
        let scaling = self
            .gguf
            .opt_str(&self.key("rope.scaling.type"))?
            .unwrap_or("linear");
        let (freq_scale, yarn) = match scaling {
            "none" => (1.0, None),
            // Long-rope's per-pair factors come from tensors the architecture names.
            "linear" | "longrope" => (1.0 / factor, None),
            "yarn" => {
                let original = self
                    .opt_size("rope.scaling.original_context_length")?
                    .unwrap_or(context);
                let yarn = Yarn {
                    original_context: original,
                    ext_factor: 1.0,
                    beta_fast: 32.0,
                    beta_slow: 1.0,
                };
                (1.0 / factor, Some(yarn))
            }
            other => {
                return Err(self.bad(
                    "rope.scaling.type",
                    format!("rope scaling {other:?} is not supported"),
                ))
            }
        };
        Ok(RopeParams {
            mode,
            dims,
            base,
            freq_scale,
            attn_factor,
            factors: None,
            yarn,
        })
    }
}
