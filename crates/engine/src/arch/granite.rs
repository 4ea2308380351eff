//! `granite` and `granitemoe`: IBM Granite 3 (dense) and Granite 3 MoE (1B-A400M, 3B-A800M).
//! Llama's blocks (adjacent-pair rotation) with four multipliers: on the embeddings, on the
//! attention scores (replacing `1/sqrt(head_dim)`), on each branch before it joins the residual,
//! and a divisor of the logits. The MoE variant runs a mixture of experts, optionally beside a
//! shared expert.

use super::config::{Config, Keys};
use super::specs::Specs;
use super::{Arch, Need, TensorSpec};
use crate::error::Result;
use crate::fixtures::TinyShape;
use crate::gguf::{Gguf, GgufWriter};
use crate::layers::rope::RopeMode;

/// `granite`.
pub struct Granite;
/// `granitemoe`.
pub struct GraniteMoe;

fn config(gguf: &Gguf, arch: &'static str, moe: bool) -> Result<Config> {
    let mut c = Config::common(gguf, arch)?.with_rope_mode(RopeMode::Adjacent);
    let k = Keys { gguf, arch };
    if moe && c.experts == 0 {
        return Err(k.bad("expert_count", "a mixture of experts needs experts".into()));
    }
    // llama.cpp requires the logit scale; the others are optional.
    let logit = k
        .opt_f32("logit_scale")?
        .ok_or_else(|| crate::error::Error::MissingKey(k.key("logit_scale")))?;
    if logit == 0.0 {
        return Err(k.bad("logit_scale", "0 would divide by zero".into()));
    }
    c.logit_scale = Some(logit);
    c.residual_scale = k.opt_f32("residual_scale")?.filter(|&v| v != 0.0);
    c.embedding_scale = k.opt_f32("embedding_scale")?.filter(|&v| v != 0.0);
    if let Some(s) = k.opt_f32("attention.scale")?.filter(|&v| v != 0.0) {
        c.kq_scale = s;
    }
    if gguf.opt_bool(&k.key("rope.scaling.finetuned"))? == Some(false) {
        c.rope = None;
    }
    c.shared_expert_ff = k.opt_size("expert_shared_feed_forward_length")?.unwrap_or(0);
    Ok(c)
}

fn tensors(c: &Config, gguf: &Gguf) -> Vec<TensorSpec> {
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

fn tiny_keys(arch: &str, w: &mut GgufWriter) {
    w.f32(format!("{arch}.attention.layer_norm_rms_epsilon"), 1e-6);
    w.f32(format!("{arch}.logit_scale"), 4.0);
    w.f32(format!("{arch}.residual_scale"), 0.5);
    w.f32(format!("{arch}.embedding_scale"), 6.0);
    w.f32(format!("{arch}.attention.scale"), 0.1);
}

impl Arch for Granite {
    fn name(&self) -> &'static str {
        "granite"
    }

    fn families(&self) -> &'static str {
        "Granite 3 (dense)"
    }

    fn config(&self, gguf: &Gguf) -> Result<Config> {
        let mut c = config(gguf, "granite", false)?;
        c.rope_factors = super::RopeSource::Tensor("rope_freqs.weight".into());
        Ok(c)
    }

    fn tensors(&self, c: &Config, gguf: &Gguf) -> Vec<TensorSpec> {
        tensors(c, gguf)
    }

    fn tiny_keys(&self, w: &mut GgufWriter, _shape: &TinyShape) {
        tiny_keys("granite", w);
    }
}

impl Arch for GraniteMoe {
    fn name(&self) -> &'static str {
        "granitemoe"
    }

    fn families(&self) -> &'static str {
        "Granite 3 mixture of experts (1B-A400M, 3B-A800M)"
    }

    fn config(&self, gguf: &Gguf) -> Result<Config> {
        let mut c = config(gguf, "granitemoe", true)?;
        c.rope_factors = super::RopeSource::Tensor("rope_freqs.weight".into());
        Ok(c)
    }

    fn tensors(&self, c: &Config, gguf: &Gguf) -> Vec<TensorSpec> {
        tensors(c, gguf)
    }

    fn tiny_keys(&self, w: &mut GgufWriter, _shape: &TinyShape) {
        tiny_keys("granitemoe", w);
    }
}
