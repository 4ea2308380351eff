//! Qwen: `qwen2` (Qwen2, Qwen2.5: biases on Q, K and V), `qwen3` (per-head RMS norms on
//! queries and keys, no biases) and `qwen3moe` (Qwen3's attention with a mixture of experts).
//! Pre-norm blocks, NEOX rotary embeddings, SiLU-gated feed-forward networks.

use super::config::{Config, Keys, QkNormKind};
use super::specs::Specs;
use super::{Arch, Need, TensorSpec};
use crate::error::Result;
use crate::fixtures::TinyShape;
use crate::gguf::{Gguf, GgufWriter};

/// `qwen2`.
pub struct Qwen2;
/// `qwen3`.
pub struct Qwen3;
/// `qwen3moe`.
pub struct Qwen3Moe;

fn tensors(c: &Config, gguf: &Gguf, bias: Need) -> Vec<TensorSpec> {
    let mut s = Specs::head(c, None, Need::Optional);
    for i in 0..c.layers {
        s.norm(i, "attn_norm", c.embedding, Need::Required, None)
            .attention(c, i, gguf, Need::Optional, bias)
            .norm(i, "ffn_norm", c.embedding, Need::Required, None)
            .ffn(c, i);
    }
    s.0
}

impl Arch for Qwen2 {
    fn name(&self) -> &'static str {
        "qwen2"
    }

    fn families(&self) -> &'static str {
        "Qwen2, Qwen2.5"
    }

    fn config(&self, gguf: &Gguf) -> Result<Config> {
        Config::common(gguf, "qwen2")
    }

    fn tensors(&self, c: &Config, gguf: &Gguf) -> Vec<TensorSpec> {
        tensors(c, gguf, Need::Usual)
    }

    fn tiny_keys(&self, w: &mut GgufWriter, _shape: &TinyShape) {
        w.f32("qwen2.attention.layer_norm_rms_epsilon", 1e-6);
        w.f32("qwen2.rope.freq_base", 1_000_000.0);
    }
}

impl Arch for Qwen3 {
    fn name(&self) -> &'static str {
        "qwen3"
    }

    fn families(&self) -> &'static str {
        "Qwen3"
    }

    fn config(&self, gguf: &Gguf) -> Result<Config> {
        let mut c = Config::common(gguf, "qwen3")?;
        c.qk_norm = QkNormKind::PerHead;
        Ok(c)
    }

    fn tensors(&self, c: &Config, gguf: &Gguf) -> Vec<TensorSpec> {
        tensors(c, gguf, Need::Optional)
    }

    fn tiny_keys(&self, w: &mut GgufWriter, _shape: &TinyShape) {
        w.f32("qwen3.attention.layer_norm_rms_epsilon", 1e-6);
        w.f32("qwen3.rope.freq_base", 1_000_000.0);
    }
}

impl Arch for Qwen3Moe {
    fn name(&self) -> &'static str {
        "qwen3moe"
    }

    fn families(&self) -> &'static str {
        "Qwen3 mixture of experts (Qwen3-30B-A3B)"
    }

    fn config(&self, gguf: &Gguf) -> Result<Config> {
        let mut c = Config::common(gguf, "qwen3moe")?;
        c.qk_norm = QkNormKind::PerHead;
        let k = Keys {
            gguf,
            arch: "qwen3moe",
        };
        if c.experts == 0 {
            return Err(k.bad("expert_count", "a mixture of experts needs experts".into()));
        }
        // An expert's width: its own key, else (as llama.cpp) the dense width shared out.
        c.expert_ff = match k.opt_size("expert_feed_forward_length")? {
            Some(f) => f,
            None if c.feed_forward >= c.experts_used => c.feed_forward / c.experts_used,
            None => return Err(k.bad("expert_feed_forward_length", "missing".into())),
        };
        Ok(c)
    }

    fn tensors(&self, c: &Config, gguf: &Gguf) -> Vec<TensorSpec> {
        tensors(c, gguf, Need::Optional)
    }

    fn tiny_keys(&self, w: &mut GgufWriter, shape: &TinyShape) {
        w.f32("qwen3moe.attention.layer_norm_rms_epsilon", 1e-6);
        w.u32("qwen3moe.expert_feed_forward_length", shape.feed_forward);
    }
}
