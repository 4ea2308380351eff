//! `falcon`: Falcon 7B/40B/180B (not Falcon 3, which is `llama`). Multi-query attention (7B:
//! one key/value head for 71 query heads), LayerNorm with a bias, a fused Q/K/V matrix, NEOX
//! rotary embeddings, and attention and feed-forward layers in parallel on the same normalised
//! input (Falcon-40B gives attention its own norm, `attn_norm_2`): `x + (ffn + attn)`. The
//! feed-forward network is plain GELU, no gate.

use super::config::{Config, FfnKind, Keys};
use super::specs::Specs;
use super::{Arch, Need, TensorSpec, Transformer};
use crate::error::Result;
use crate::fixtures::TinyShape;
use crate::gguf::{Gguf, GgufWriter};
use crate::layers::ffn::Activation;
use crate::layers::norm::NormKind;

/// The `falcon` architecture.
pub struct Falcon;

impl Arch for Falcon {
    fn name(&self) -> &'static str {
        "falcon"
    }

    fn families(&self) -> &'static str {
        "Falcon 7B, 40B, 180B"
    }

    fn config(&self, gguf: &Gguf) -> Result<Config> {
        let mut c = Config::common(gguf, "falcon")?;
        let k = Keys { gguf, arch: "falcon" };
        c.norm = NormKind::Layer;
        c.norm_eps = k.positive("attention.layer_norm_epsilon", 1e-5)?;
        c.ffn = FfnKind::Plain(Activation::Gelu);
        let dims = c.rope.as_ref().map_or(c.head_dim, |r| r.dims);
        if dims != c.head_dim {
            return Err(k.bad(
                "rope.dimension_count",
                format!(
                    "partial rotary embeddings ({dims} of {}) are not part of falcon",
                    c.head_dim
                ),
            ));
        }
        Ok(c)
    }

    fn tensors(&self, c: &Config, gguf: &Gguf) -> Vec<TensorSpec> {
        let mut s = Specs::head(c, Some(Need::Required), Need::Optional);
        let d = c.embedding;
        for i in 0..c.layers {
            s.norm(i, "attn_norm", d, Need::Required, Some(Need::Required))
                .norm(i, "attn_norm_2", d, Need::Optional, Some(Need::Optional))
                .attention(c, i, gguf, Need::Required, Need::Optional)
                .ffn(c, i);
        }
        s.0
    }

    fn forward(
        &self,
        m: &mut Transformer,
        tokens: &[u32],
        pos: usize,
        all: bool,
        logits: &mut Vec<f32>,
    ) -> Result<()> {
        let n = tokens.len();
        m.embed(tokens);
        let d = m.cfg.embedding;
        let Transformer { blocks, ropes, s, .. } = m;
        for (i, b) in blocks.iter_mut().enumerate() {
            // The tensor list requires it; the error is for a network built by hand.
            let Some(norm) = &b.attn_norm else {
                return Err(crate::error::Error::MissingTensor(format!(
                    "blk.{i}.attn_norm.weight"
                )));
            };
            norm.apply(&s.x, &mut s.h);
            let attn_in = match &b.attn_norm_2 {
                Some(n2) => {
                    n2.apply(&s.x, &mut s.h2);
                    &s.h2
                }
                None => &s.h,
            };
            s.act.quantize(attn_in, n, d);
            b.attn.forward(&s.act, n, pos, ropes, &mut s.attn, &mut s.o);
            // The feed-forward layer takes the first norm's output, not attention's.
            s.act.quantize(&s.h, n, d);
            b.ffn.forward(&s.h, &s.act, n, &mut s.ffn, &mut s.f);
            for ((x, f), o) in s.x.iter_mut().zip(&s.f).zip(&s.o) {
                *x += f + o;
            }
        }
        m.head(n, all, logits)
    }

    fn tiny_keys(&self, w: &mut GgufWriter, _shape: &TinyShape) {
        w.f32("falcon.attention.layer_norm_epsilon", 1e-5);
    }
}
