//! Feed-forward layers: gated (SwiGLU, GeGLU), gated from one fused matrix (Phi-3), plain
//! (Falcon), and mixture of experts (Mixtral, Qwen3-MoE, Granite-MoE).

use crate::kernels::ops::{self, dot8, gelu_in_place, gelu_mul, silu_mul};
use crate::kernels::{QActivations, QMatrix};

use super::linear::Linear;

/// The nonlinearity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// `x * sigmoid(x)`.
    Silu,
    /// GELU, tanh approximation ([`ops::gelu`]).
    Gelu,
}

impl Activation {
    /// `act(gate) * up` into `gate`.
    fn gated(self, gate: &mut [f32], up: &[f32]) {
        match self {
            Self::Silu => silu_mul(gate, up),
            Self::Gelu => gelu_mul(gate, up),
        }
    }
}

/// A feed-forward layer.
#[derive(Debug, Clone)]
pub enum Ffn {
    /// `down(act(gate x) * up x)`.
    Gated {
        /// Gate projection.
        gate: Linear,
        /// Up projection.
        up: Linear,
        /// Down projection.
        down: Linear,
        /// Applied to the gate.
        act: Activation,
    },
    /// The same with gate and up stacked in one matrix, gate first (Phi-3's `ffn_up`).
    FusedGated {
        /// `[gate; up]`, twice the hidden width.
        gate_up: Linear,
        /// Down projection.
        down: Linear,
        /// Applied to the gate.
        act: Activation,
    },
    /// `down(act(up x))` (Falcon).
    Plain {
        /// Up projection.
        up: Linear,
        /// Down projection.
        down: Linear,
        /// Applied to the hidden layer.
        act: Activation,
    },
    /// A router picks experts per token.
    Moe(Moe),
}

/// One expert: a SiLU-gated feed-forward network.
#[derive(Debug, Clone)]
pub struct Expert {
    /// Gate projection (`ffn_gate_exps`, this expert's slice).
    pub gate: QMatrix,
    /// Up projection.
    pub up: QMatrix,
    /// Down projection.
    pub down: QMatrix,
}

/// Mixture of experts, as llama.cpp's `build_moe_ffn` with softmax gating: the router's
/// logits (f32, from the f32 weights) go through a softmax over every expert; the `used` most
/// probable are run; their probabilities, renormalised to sum to 1 (the sum floored at
/// 2^-14), weight their outputs, which are added in order of probability.
#[derive(Debug, Clone)]
pub struct Moe {
    /// `ffn_gate_inp`: one row of the residual width per expert, as f32.
    pub router: Vec<f32>,
    /// The experts.
    pub experts: Vec<Expert>,
    /// Experts run per token.
    pub used: usize,
    /// An always-on shared expert (Granite-MoE's shared MLP), added to the mixture.
    pub shared: Option<Box<Ffn>>,
}

/// Reusable buffers of a feed-forward pass.
#[derive(Debug, Default)]
pub struct FfnBuffers {
    gate: Vec<f32>,
    up: Vec<f32>,
    act: QActivations,
    /// MoE: one token's quantized input, an expert's output, the shared expert's output and
    /// the router's probabilities.
    token: QActivations,
    expert_out: Vec<f32>,
    shared: Vec<f32>,
    probs: Vec<f32>,
    /// The shared expert's own buffers.
    inner: Option<Box<FfnBuffers>>,
}

impl Ffn {
    /// `out` = the layer applied to the `n` rows of `x` (already normalised and quantized in
    /// `xq`, whose f32 values are `x`).
    pub fn forward(&self, x: &[f32], xq: &QActivations, n: usize, b: &mut FfnBuffers, out: &mut [f32]) {
        match self {
            Ffn::Gated { gate, up, down, act } => {
                let hidden = gate.rows();
                b.gate.resize(n * hidden, 0.0);
                b.up.resize(n * hidden, 0.0);
                if gate.b.is_none() && up.b.is_none() {
                    QMatrix::gated_product(&gate.w, &up.w, xq, &mut b.gate, &mut b.up, act_fn(*act));
                } else {
                    QMatrix::matmul_n([&gate.w, &up.w], xq, [&mut b.gate, &mut b.up]);
                    gate.add_bias(&mut b.gate);
                    up.add_bias(&mut b.up);
                    act.gated(&mut b.gate, &b.up);
                }
                b.act.quantize(&b.gate, n, hidden);
                down.forward(&b.act, out);
            }
            Ffn::FusedGated { gate_up, down, act } => {
                let hidden = gate_up.rows() / 2;
                b.up.resize(n * 2 * hidden, 0.0);
                gate_up.forward(xq, &mut b.up);
                b.gate.resize(n * hidden, 0.0);
                for (g, both) in b
                    .gate
                    .chunks_exact_mut(hidden)
                    .zip(b.up.chunks_exact_mut(2 * hidden))
                {
                    let (gh, uh) = both.split_at(hidden);
                    g.copy_from_slice(gh);
                    act.gated(g, uh);
                }
                b.act.quantize(&b.gate, n, hidden);
                down.forward(&b.act, out);
            }
            Ffn::Plain { up, down, act } => {
                let hidden = up.rows();
                b.up.resize(n * hidden, 0.0);
                up.forward(xq, &mut b.up);
                match act {
                    Activation::Gelu => gelu_in_place(&mut b.up),
                    Activation::Silu => {
                        for v in &mut b.up {
                            *v /= 1.0 + ops::expf(-*v);
                        }
                    }
                }
                b.act.quantize(&b.up, n, hidden);
                down.forward(&b.act, out);
            }
            Ffn::Moe(m) => m.forward(x, xq, n, b, out),
        }
    }
}

/// The elementwise step of a fused gated product.
fn act_fn(act: Activation) -> fn(&mut [f32], &[f32]) {
    match act {
        Activation::Silu => silu_mul,
        Activation::Gelu => gelu_mul,
    }
}

impl Moe {
    /// The experts chosen for one token's router logits and their weights, in order of
    /// probability (ties: the lower index first).
    pub fn route(&self, logits: &mut [f32], chosen: &mut Vec<(usize, f32)>) {
        ops::softmax(logits);
        chosen.clear();
        for _ in 0..self.used.min(logits.len()) {
            let mut best: Option<usize> = None;
            for (e, &p) in logits.iter().enumerate() {
                if chosen.iter().any(|&(c, _)| c == e) {
                    continue;
                }
                if best.is_none_or(|b| p > logits[b]) {
                    best = Some(e);
                }
            }
            if let Some(e) = best {
                chosen.push((e, logits[e]));
            }
        }
        let sum: f32 = chosen.iter().map(|&(_, p)| p).sum::<f32>().max(1.0 / 16384.0);
        for c in chosen.iter_mut() {
            c.1 /= sum;
        }
    }

    fn forward(&self, x: &[f32], xq: &QActivations, n: usize, b: &mut FfnBuffers, out: &mut [f32]) {
        let d = x.len() / n.max(1);
        let n_exp = self.experts.len();
        let mut chosen = Vec::with_capacity(self.used);
        if let Some(shared) = &self.shared {
            let inner = b.inner.get_or_insert_with(Default::default);
            b.shared.resize(n * d, 0.0);
            shared.forward(x, xq, n, inner, &mut b.shared);
        }
        // Token by token: each picks its own experts. Every product is the same dot product
        // however the rows are grouped, so this gives llama.cpp's values (it groups by expert).
        for i in 0..n {
            let xi = &x[i * d..(i + 1) * d];
            let mut probs = std::mem::take(&mut b.probs);
            probs.clear();
            probs.extend((0..n_exp).map(|e| dot8(&self.router[e * d..(e + 1) * d], xi)));
            self.route(&mut probs, &mut chosen);
            b.probs = probs;
            b.token.quantize(xi, 1, d);
            let o = &mut out[i * d..(i + 1) * d];
            for (k, &(e, w)) in chosen.iter().enumerate() {
                let ex = &self.experts[e];
                let hidden = ex.gate.rows();
                b.gate.resize(hidden, 0.0);
                b.up.resize(hidden, 0.0);
                QMatrix::gated_product(&ex.gate, &ex.up, &b.token, &mut b.gate, &mut b.up, silu_mul);
                b.act.quantize(&b.gate, 1, hidden);
                b.expert_out.resize(d, 0.0);
                ex.down.matmul(&b.act, &mut b.expert_out);
                for (o, &v) in o.iter_mut().zip(&b.expert_out) {
                    // The first expert's weighted output starts the sum, as in ggml.
                    *o = if k == 0 { v * w } else { *o + v * w };
                }
            }
            if self.shared.is_some() {
                for (o, &s) in o.iter_mut().zip(&b.shared[i * d..(i + 1) * d]) {
                    *o += s;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routing_takes_the_most_probable_and_renormalises() {
        let moe = Moe {
            router: vec![],
            experts: vec![],
            used: 2,
            shared: None,
        };
        let mut logits = vec![0.0, 2.0, 1.0, 2.0];
        let mut chosen = vec![];
        moe.route(&mut logits, &mut chosen);
        assert_eq!(chosen.iter().map(|c| c.0).collect::<Vec<_>>(), vec![1, 3]);
        assert!((chosen[0].1 - 0.5).abs() < 1e-6 && (chosen[1].1 - 0.5).abs() < 1e-6);
        let mut logits = vec![3.0, 0.0, 1.0];
        moe.route(&mut logits, &mut chosen);
        assert_eq!(chosen.iter().map(|c| c.0).collect::<Vec<_>>(), vec![0, 2]);
        let e = (2f32).exp();
        assert!((chosen[0].1 - e / (e + 1.0)).abs() < 1e-6);
    }
}
