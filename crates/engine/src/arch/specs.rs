//! The tensor lists architectures share, with llama.cpp's names and shapes (ggml order: row
//! length first), so an architecture's `tensors` reads as a list of its parts.

use crate::gguf::Gguf;

use super::config::{Config, FfnKind, QkNormKind};
use super::{Need, TensorSpec};

/// A tensor list under construction.
pub(crate) struct Specs(pub Vec<TensorSpec>);

fn spec(name: String, dims: &[u64], need: Need) -> TensorSpec {
    TensorSpec {
        name,
        dims: dims.to_vec(),
        need,
    }
}

impl Specs {
    /// The embedding, final norm and head: `token_embd`, `output_norm` (with a bias when
    /// `norm_bias` says so) and an optional `output` (tied to the embedding when absent), which
    /// may carry a bias.
    pub(crate) fn head(cfg: &Config, norm_bias: Option<Need>, output: Need) -> Self {
        let (d, v) = (cfg.embedding as u64, cfg.vocab as u64);
        let mut s = vec![
            spec("token_embd.weight".into(), &[d, v], Need::Required),
            spec("output_norm.weight".into(), &[d], Need::Required),
            spec("output.weight".into(), &[d, v], output),
            spec("output.bias".into(), &[v], Need::Optional),
        ];
        if let Some(n) = norm_bias {
            s.push(spec("output_norm.bias".into(), &[d], n));
        }
        Self(s)
    }

    /// A global tensor.
    pub(crate) fn global(&mut self, name: &str, dims: &[u64], need: Need) -> &mut Self {
        self.0.push(spec(name.into(), dims, need));
        self
    }

    /// A norm of block `i` over `width` values, with a bias when `bias` says so.
    pub(crate) fn norm(
        &mut self,
        i: usize,
        name: &str,
        width: usize,
        need: Need,
        bias: Option<Need>,
    ) -> &mut Self {
        self.0
            .push(spec(format!("blk.{i}.{name}.weight"), &[width as u64], need));
        if let Some(b) = bias {
            self.0
                .push(spec(format!("blk.{i}.{name}.bias"), &[width as u64], b));
        }
        self
    }

    /// Block `i`'s attention projections: a fused `attn_qkv` or `attn_q`, `attn_k`, `attn_v`
    /// (`fused`: `Required`, always fused; `Usual`, fused unless the file has `attn_q`;
    /// `Optional`, fused only if the file has `attn_qkv`), biases of need `bias`,
    /// `attn_output` (bias optional), and the query/key norms the config asks for.
    pub(crate) fn attention(
        &mut self,
        cfg: &Config,
        i: usize,
        gguf: &Gguf,
        fused: Need,
        bias: Need,
    ) -> &mut Self {
        let p = |t: &str| format!("blk.{i}.{t}");
        let (d, qw, kvw) = (cfg.embedding as u64, cfg.q_width() as u64, cfg.kv_width() as u64);
        let fused = match fused {
            Need::Required => true,
            Need::Usual => gguf.tensor(&p("attn_q.weight")).is_none(),
            Need::Optional => gguf.tensor(&p("attn_qkv.weight")).is_some(),
        };
        if fused {
            self.0
                .push(spec(p("attn_qkv.weight"), &[d, qw + 2 * kvw], Need::Required));
            self.0
                .push(spec(p("attn_qkv.bias"), &[qw + 2 * kvw], Need::Optional));
        } else {
            for (t, w) in [("attn_q", qw), ("attn_k", kvw), ("attn_v", kvw)] {
                self.0
                    .push(spec(p(&format!("{t}.weight")), &[d, w], Need::Required));
                self.0.push(spec(p(&format!("{t}.bias")), &[w], bias));
            }
        }
        self.0
            .push(spec(p("attn_output.weight"), &[qw, d], Need::Required));
        self.0.push(spec(p("attn_output.bias"), &[d], Need::Optional));
        let (qn, kn) = match cfg.qk_norm {
            QkNormKind::None => return self,
            QkNormKind::PerHead => (cfg.head_dim as u64, cfg.head_dim as u64),
            QkNormKind::Whole => (qw, kvw),
        };
        self.0.push(spec(p("attn_q_norm.weight"), &[qn], Need::Required));
        self.0.push(spec(p("attn_k_norm.weight"), &[kn], Need::Required));
        self
    }

    /// Block `i`'s feed-forward layer: the mixture of experts when the config has experts,
    /// else the dense form it names, each matrix with an optional bias.
    pub(crate) fn ffn(&mut self, cfg: &Config, i: usize) -> &mut Self {
        let p = |t: &str| format!("blk.{i}.{t}");
        let d = cfg.embedding as u64;
        if cfg.experts > 0 {
            let (ff, e) = (cfg.expert_ff as u64, cfg.experts as u64);
            self.0
                .push(spec(p("ffn_gate_inp.weight"), &[d, e], Need::Required));
            self.0
                .push(spec(p("ffn_gate_exps.weight"), &[d, ff, e], Need::Required));
            self.0
                .push(spec(p("ffn_up_exps.weight"), &[d, ff, e], Need::Required));
            self.0
                .push(spec(p("ffn_down_exps.weight"), &[ff, d, e], Need::Required));
            if cfg.shared_expert_ff > 0 {
                let sf = cfg.shared_expert_ff as u64;
                self.0
                    .push(spec(p("ffn_gate_shexp.weight"), &[d, sf], Need::Required));
                self.0
                    .push(spec(p("ffn_up_shexp.weight"), &[d, sf], Need::Required));
                self.0
                    .push(spec(p("ffn_down_shexp.weight"), &[sf, d], Need::Required));
            }
            return self;
        }
        let ff = cfg.feed_forward as u64;
        let mut matrix = |name: &str, dims: [u64; 2]| {
            self.0
                .push(spec(p(&format!("{name}.weight")), &dims, Need::Required));
            self.0
                .push(spec(p(&format!("{name}.bias")), &[dims[1]], Need::Optional));
        };
        match cfg.ffn {
            FfnKind::Gated(_) => {
                matrix("ffn_gate", [d, ff]);
                matrix("ffn_up", [d, ff]);
            }
            FfnKind::FusedGated(_) => matrix("ffn_up", [d, 2 * ff]),
            FfnKind::Plain(_) => matrix("ffn_up", [d, ff]),
        }
        matrix("ffn_down", [ff, d]);
        self
    }
}
