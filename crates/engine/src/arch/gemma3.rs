//! `gemma3`: Gemma 3 (270M, 1B, 4B, ...). Pre- and post-norms around attention and the
//! feed-forward layer (RMS; the converter already added Gemma's `1 +` to every norm weight),
//! per-head query/key norms, NEOX rotary embeddings with a base of its own (10 000) on the
//! sliding-window layers, five sliding-window layers for every full one, queries scaled by
//! `1/sqrt(head_dim)` before the scores, a GELU-gated feed-forward network, embeddings times
//! `sqrt(width)`, the output tied to the embedding, and an optional final soft-cap.

use super::config::{Config, Keys, QkNormKind};
use super::specs::Specs;
use super::{Arch, Need, TensorSpec};
use crate::error::Result;
use crate::fixtures::TinyShape;
use crate::gguf::{Gguf, GgufWriter};
use crate::layers::ffn::Activation;

/// The `gemma3` architecture.
pub struct Gemma3;

impl Arch for Gemma3 {
    fn name(&self) -> &'static str {
        "gemma3"
    }

    fn families(&self) -> &'static str {
        "Gemma 3"
    }

    fn config(&self, gguf: &Gguf) -> Result<Config> {
        let mut c = Config::common(gguf, "gemma3")?;
        let k = Keys { gguf, arch: "gemma3" };
        c.norm_eps = k.positive("attention.layer_norm_rms_epsilon", 1e-6)?;
        c.qk_norm = QkNormKind::PerHead;
        c.ffn = super::FfnKind::Gated(Activation::Gelu);
        c.read_window(gguf, 6)?;
        if c.window.is_some() {
            // The local layers keep their own base and no scaling.
            let mut local = c
                .rope
                .clone()
                .ok_or_else(|| k.bad("rope.freq_base", "no rotary table".into()))?;
            local.base = k.positive("rope.freq_base_swa", 10_000.0)?;
            local.freq_scale = 1.0;
            local.yarn = None;
            c.rope_swa = Some(local);
        }
        // llama.cpp derives the query scale from the size: 27B (62 layers) uses the width per
        // head, every other size the head width.
        let per_head = if c.layers == 62 {
            c.embedding / c.heads
        } else {
            c.head_dim
        };
        c.q_scale = Some(1.0 / (per_head as f32).sqrt());
        c.kq_scale = 1.0;
        c.embedding_scale = Some((c.embedding as f32).sqrt());
        c.final_softcap = k.opt_f32("final_logit_softcapping")?.filter(|&v| v != 0.0);
        Ok(c)
    }

    fn tensors(&self, c: &Config, gguf: &Gguf) -> Vec<TensorSpec> {
        let mut s = Specs::head(c, None, Need::Optional);
        let d = c.embedding;
        for i in 0..c.layers {
            s.norm(i, "attn_norm", d, Need::Required, None)
                .attention(c, i, gguf, Need::Optional, Need::Optional)
                .norm(i, "post_attention_norm", d, Need::Required, None)
                .norm(i, "ffn_norm", d, Need::Required, None)
                .ffn(c, i)
                .norm(i, "post_ffw_norm", d, Need::Required, None);
        }
        s.0
    }

    fn tiny_keys(&self, w: &mut GgufWriter, shape: &TinyShape) {
        w.f32("gemma3.attention.layer_norm_rms_epsilon", 1e-6);
        w.f32("gemma3.rope.freq_base", 1_000_000.0);
        w.u32("gemma3.attention.sliding_window", shape.window.unwrap_or(8));
    }
}
