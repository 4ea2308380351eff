//! Self-attention: Q/K/V projections (separate or fused, with optional biases), optional
//! query/key norms (per head or over the whole width), rotary embeddings, an optional query
//! scale, causal attention over the layer's key/value cache (full or sliding window; MHA, GQA
//! and MQA are the same code with different key/value head counts), and the output projection.

use crate::kernels::attention::{attention, AttentionScratch, KvCache};
use crate::kernels::{QActivations, QMatrix};

use super::linear::Linear;
use super::norm::Norm;
use super::rope::Rope;

/// The query/key/value projections.
#[derive(Debug, Clone)]
pub enum Qkv {
    /// `attn_q`, `attn_k`, `attn_v`.
    Separate {
        /// Query projection.
        q: Linear,
        /// Key projection.
        k: Linear,
        /// Value projection.
        v: Linear,
    },
    /// `attn_qkv`: the three stacked, queries first (Phi-3, Falcon).
    Fused(Linear),
}

/// Norms on queries and keys before the rotation.
#[derive(Debug, Clone)]
pub enum QkNorm {
    /// None.
    None,
    /// Over each head (Qwen3, Gemma 3): weights of the head width.
    PerHead {
        /// Query norm.
        q: Norm,
        /// Key norm.
        k: Norm,
    },
    /// Over the whole query and key widths (OLMo 2).
    Whole {
        /// Query norm.
        q: Norm,
        /// Key norm.
        k: Norm,
    },
}

/// One layer's attention and its key/value cache.
#[derive(Debug, Clone)]
pub struct Attention {
    /// Q/K/V projections.
    pub qkv: Qkv,
    /// Query and key norms.
    pub qk_norm: QkNorm,
    /// Output projection.
    pub out: Linear,
    /// Query heads.
    pub heads: usize,
    /// Key/value heads (fewer with GQA, one with MQA).
    pub kv_heads: usize,
    /// Width of a head.
    pub head_dim: usize,
    /// The model's rotary table this layer uses; `None`: no rotation (a Granite option).
    pub rope: Option<usize>,
    /// Multiplies the rotated queries (Gemma 3, Phi-3 scale queries, not scores).
    pub q_scale: Option<f32>,
    /// Multiplies the scores.
    pub kq_scale: f32,
    /// Positions a query sees, itself included (`usize::MAX`: all before it).
    pub window: usize,
    /// This layer's keys and values.
    pub cache: KvCache,
}

/// Reusable buffers of an attention pass.
#[derive(Debug, Default)]
pub struct AttentionBuffers {
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    qkv: Vec<f32>,
    att: Vec<f32>,
    tmp: Vec<f32>,
    act: QActivations,
    scratch: AttentionScratch,
}

impl Attention {
    /// Query width.
    pub fn q_width(&self) -> usize {
        self.heads * self.head_dim
    }

    /// Key (and value) width.
    pub fn kv_width(&self) -> usize {
        self.kv_heads * self.head_dim
    }

    /// Attends `n` rows (positions `pos..pos + n`) whose normalised input is quantized in `xq`;
    /// appends their keys and values to the cache and writes the output projection to `out`.
    pub fn forward(
        &mut self,
        xq: &QActivations,
        n: usize,
        pos: usize,
        ropes: &[Rope],
        b: &mut AttentionBuffers,
        out: &mut [f32],
    ) {
        let (qw, kvw) = (self.q_width(), self.kv_width());
        b.q.resize(n * qw, 0.0);
        b.k.resize(n * kvw, 0.0);
        b.v.resize(n * kvw, 0.0);
        match &self.qkv {
            Qkv::Separate { q, k, v } => {
                QMatrix::matmul_n([&q.w, &k.w, &v.w], xq, [&mut b.q, &mut b.k, &mut b.v]);
                q.add_bias(&mut b.q);
                k.add_bias(&mut b.k);
                v.add_bias(&mut b.v);
            }
            Qkv::Fused(w) => {
                let all = qw + 2 * kvw;
                b.qkv.resize(n * all, 0.0);
                w.forward(xq, &mut b.qkv);
                for (i, row) in b.qkv.chunks_exact(all).enumerate() {
                    b.q[i * qw..(i + 1) * qw].copy_from_slice(&row[..qw]);
                    b.k[i * kvw..(i + 1) * kvw].copy_from_slice(&row[qw..qw + kvw]);
                    b.v[i * kvw..(i + 1) * kvw].copy_from_slice(&row[qw + kvw..]);
                }
            }
        }
        match &self.qk_norm {
            QkNorm::None => {}
            QkNorm::PerHead { q, k } | QkNorm::Whole { q, k } => {
                q.apply_in_place(&mut b.q, &mut b.tmp);
                k.apply_in_place(&mut b.k, &mut b.tmp);
            }
        }
        if let Some(r) = self.rope.and_then(|r| ropes.get(r)) {
            r.apply(&mut b.q, self.heads, self.head_dim, pos);
            r.apply(&mut b.k, self.kv_heads, self.head_dim, pos);
        }
        if let Some(s) = self.q_scale {
            b.q.iter_mut().for_each(|v| *v *= s);
        }
        self.cache.append(&b.k, &b.v);
        b.att.resize(n * qw, 0.0);
        attention(
            &b.q,
            &self.cache,
            self.heads,
            self.kq_scale,
            self.window,
            &mut b.att,
            &mut b.scratch,
        );
        b.act.quantize(&b.att, n, qw);
        self.out.forward(&b.act, out);
    }

    /// Bytes of weights and cache held.
    pub fn bytes(&self) -> usize {
        let proj = match &self.qkv {
            Qkv::Separate { q, k, v } => q.bytes() + k.bytes() + v.bytes(),
            Qkv::Fused(w) => w.bytes(),
        };
        let norms = match &self.qk_norm {
            QkNorm::None => 0,
            QkNorm::PerHead { q, k } | QkNorm::Whole { q, k } => q.bytes() + k.bytes(),
        };
        proj + norms + self.out.bytes() + self.cache.bytes()
    }

    /// The weight matrices.
    pub fn matrices(&self) -> Vec<&QMatrix> {
        let mut m = match &self.qkv {
            Qkv::Separate { q, k, v } => vec![&q.w, &k.w, &v.w],
            Qkv::Fused(w) => vec![&w.w],
        };
        m.push(&self.out.w);
        m
    }
}
