//! `llama`: Llama 1–3, Mistral 7B, TinyLlama, SmolLM, Falcon 3, and Mixtral (the same blocks
//! with a mixture of experts). Pre-norm blocks with RMS norm, rotary embeddings on adjacent
//! pairs (the converter permutes Q and K for that layout), grouped-query attention and a
//! SiLU-gated feed-forward network. Llama 3's `rope_freqs` divide the rotary frequencies.

use super::config::{Config, Keys, RopeSource};
use super::specs::Specs;
use super::{Arch, Need, TensorSpec};
use crate::error::Result;
use crate::fixtures::TinyShape;
use crate::gguf::{Gguf, GgufWriter};
use crate::layers::rope::RopeMode;

/// The `llama` architecture.
pub struct Llama;

impl Arch for Llama {
    fn name(&self) -> &'static str {
        "llama"
    }

    fn families(&self) -> &'static str {
        "Llama 1-3, Mistral 7B, Mixtral, TinyLlama, SmolLM, Falcon 3"
    }

    fn config(&self, gguf: &Gguf) -> Result<Config> {
        let mut c = Config::common(gguf, "llama")?.with_rope_mode(RopeMode::Adjacent);
        let dims = c.rope.as_ref().map_or(c.head_dim, |r| r.dims);
        if dims != c.head_dim {
            // llama.cpp refuses these too.
            return Err(Keys { gguf, arch: "llama" }.bad(
                "rope.dimension_count",
                format!(
                    "partial rotary embeddings ({dims} of {}) are not part of llama",
                    c.head_dim
                ),
            ));
        }
        c.rope_factors = RopeSource::Tensor("rope_freqs.weight".into());
        Ok(c)
    }

    fn tensors(&self, c: &Config, gguf: &Gguf) -> Vec<TensorSpec> {
        let mut s = Specs::head(c, None, Need::Optional);
        s.global("rope_freqs.weight", &[c.head_dim as u64 / 2], Need::Optional);
        for i in 0..c.layers {
            s.norm(i, "attn_norm", c.embedding, Need::Required, None)
                .attention(c, i, gguf, Need::Optional, Need::Optional)
                .norm(i, "ffn_norm", c.embedding, Need::Required, None)
                .ffn(c, i);
        }
        s.0
    }

    fn tiny_keys(&self, w: &mut GgufWriter, _shape: &TinyShape) {
        w.f32("llama.attention.layer_norm_rms_epsilon", 1e-5);
    }
}
