//! `phi3`: Phi-3 and Phi-3.5 mini/medium, Phi-4. Pre-norm blocks, a fused Q/K/V matrix, NEOX
//! rotary embeddings with long-rope factors (the long ones when the context loaded is longer
//! than the original training context, as llama.cpp decides) and an attention factor on cos
//! and sin, queries scaled by `1/sqrt(head_dim)` before the scores, and a SiLU-gated
//! feed-forward network whose gate and up halves share one matrix. Like llama.cpp, the
//! sliding window some files declare is not applied.

use super::config::{Config, FfnKind, Keys, RopeSource};
use super::specs::Specs;
use super::{Arch, Need, TensorSpec};
use crate::error::Result;
use crate::fixtures::TinyShape;
use crate::gguf::{Gguf, GgufWriter};
use crate::layers::ffn::Activation;

/// The `phi3` architecture.
pub struct Phi3;

impl Arch for Phi3 {
    fn name(&self) -> &'static str {
        "phi3"
    }

    fn families(&self) -> &'static str {
        "Phi-3, Phi-3.5, Phi-4"
    }

    fn config(&self, gguf: &Gguf) -> Result<Config> {
        let mut c = Config::common(gguf, "phi3")?;
        let k = Keys { gguf, arch: "phi3" };
        c.ffn = FfnKind::FusedGated(Activation::Silu);
        if gguf.tensor("rope_factors_long.weight").is_some() {
            c.rope_factors = RopeSource::LongShort {
                long: "rope_factors_long.weight".into(),
                short: "rope_factors_short.weight".into(),
                original_context: k
                    .opt_size("rope.scaling.original_context_length")?
                    .unwrap_or(c.context),
            };
        }
        c.q_scale = Some(1.0 / (c.head_dim as f32).sqrt());
        c.kq_scale = 1.0;
        Ok(c)
    }

    fn tensors(&self, c: &Config, gguf: &Gguf) -> Vec<TensorSpec> {
        let mut s = Specs::head(c, None, Need::Optional);
        let half = c.rope.as_ref().map_or(c.head_dim, |r| r.dims) as u64 / 2;
        s.global("rope_factors_long.weight", &[half], Need::Optional)
            .global("rope_factors_short.weight", &[half], Need::Optional);
        for i in 0..c.layers {
            s.norm(i, "attn_norm", c.embedding, Need::Required, None)
                .attention(c, i, gguf, Need::Usual, Need::Optional)
                .norm(i, "ffn_norm", c.embedding, Need::Required, None)
                .ffn(c, i);
        }
        s.0
    }

    fn tiny_keys(&self, w: &mut GgufWriter, shape: &TinyShape) {
        w.f32("phi3.attention.layer_norm_rms_epsilon", 1e-5);
        // Half of each head rotates, as in Phi-2 style partial rotary embeddings.
        let head = shape.head_dim.unwrap_or(shape.embedding / shape.heads);
        w.u32("phi3.rope.dimension_count", head / 2);
    }
}
