//! `olmo2`: OLMo 2 (and OLMo 3's sliding windows). No norm before attention or the
//! feed-forward layer: RMS norms after each (`post_attention_norm`, `post_ffw_norm`), and RMS
//! norms over the whole query and key widths before the NEOX rotation. SiLU-gated feed-forward
//! network; the output matrix is its own (never tied).

use super::config::{Config, QkNormKind};
use super::specs::Specs;
use super::{Arch, Need, TensorSpec};
use crate::error::Result;
use crate::fixtures::TinyShape;
use crate::gguf::{Gguf, GgufWriter};

/// The `olmo2` architecture.
pub struct Olmo2;

impl Arch for Olmo2 {
    fn name(&self) -> &'static str {
        "olmo2"
    }

    fn families(&self) -> &'static str {
        "OLMo 2, OLMo 3"
    }

    fn config(&self, gguf: &Gguf) -> Result<Config> {
        let mut c = Config::common(gguf, "olmo2")?;
        c.qk_norm = QkNormKind::Whole;
        c.read_window(gguf, 4)?;
        if c.window.is_some() {
            // As llama.cpp: the sliding layers rotate with the global base, unscaled.
            let mut local = c.rope.clone();
            if let Some(r) = &mut local {
                r.freq_scale = 1.0;
                r.yarn = None;
                r.attn_factor = 1.0;
            }
            c.rope_swa = local;
        }
        Ok(c)
    }

    fn tensors(&self, c: &Config, gguf: &Gguf) -> Vec<TensorSpec> {
        let mut s = Specs::head(c, None, Need::Required);
        for i in 0..c.layers {
            s.attention(c, i, gguf, Need::Optional, Need::Optional)
                .norm(i, "post_attention_norm", c.embedding, Need::Required, None)
                .ffn(c, i)
                .norm(i, "post_ffw_norm", c.embedding, Need::Required, None);
        }
        s.0
    }

    fn tiny_keys(&self, w: &mut GgufWriter, _shape: &TinyShape) {
        w.f32("olmo2.attention.layer_norm_rms_epsilon", 1e-6);
        w.f32("olmo2.rope.freq_base", 500_000.0);
    }
}
