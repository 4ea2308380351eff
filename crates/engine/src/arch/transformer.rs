//! The network every architecture assembles from its tensors: token embedding, blocks of
//! attention and feed-forward layers with their norms, the output head, the rotary tables and
//! the buffers a forward pass reuses. The architecture's `forward` says in what order the
//! parts run; the decoder most of them share is [`Transformer::forward_sequential`].

use std::collections::HashMap;

use omp_protocol::KvCacheType;

use crate::error::{Error, Result};
use crate::kernels::attention::KvCache;
use crate::kernels::{QActivations, QMatrix};
use crate::layers::attention::{Attention, AttentionBuffers, QkNorm, Qkv};
use crate::layers::ffn::{Activation, Expert, Ffn, FfnBuffers, Moe};
use crate::layers::linear::Linear;
use crate::layers::norm::Norm;
use crate::layers::rope::Rope;
use crate::weights::Loader;

use super::config::{Config, FfnKind, QkNormKind, RopeSource};
use super::{is_router, Need, TensorSpec};

/// One transformer block: its norms (each optional: architectures place them differently),
/// attention and feed-forward layer.
#[derive(Debug, Clone)]
pub struct Block {
    /// Before attention (and, in Falcon, before the feed-forward layer too).
    pub attn_norm: Option<Norm>,
    /// Falcon-40B's separate norm before attention.
    pub attn_norm_2: Option<Norm>,
    /// Self-attention with its cache.
    pub attn: Attention,
    /// After attention (Gemma 3, OLMo 2).
    pub post_attn_norm: Option<Norm>,
    /// Before the feed-forward layer.
    pub ffn_norm: Option<Norm>,
    /// The feed-forward layer.
    pub ffn: Ffn,
    /// After the feed-forward layer (Gemma 3, OLMo 2).
    pub post_ffn_norm: Option<Norm>,
}

/// Buffers a forward pass reuses, so the per-token path does not allocate.
#[derive(Debug, Default)]
pub struct Scratch {
    /// The residual stream (`n` rows of the embedding width).
    pub x: Vec<f32>,
    /// A normalised copy of it.
    pub h: Vec<f32>,
    /// A second one (Falcon-40B).
    pub h2: Vec<f32>,
    /// The attention branch's output.
    pub o: Vec<f32>,
    /// The feed-forward branch's output.
    pub f: Vec<f32>,
    /// A branch input, quantized.
    pub act: QActivations,
    /// Attention's own buffers.
    pub attn: AttentionBuffers,
    /// The feed-forward layer's.
    pub ffn: FfnBuffers,
}

/// A loaded network.
pub struct Transformer {
    /// Its hyper-parameters.
    pub cfg: Config,
    /// Kept quantized: only the rows of the tokens fed are dequantized.
    pub token_embd: QMatrix,
    /// The output head; `None` when tied to the embedding.
    pub output: Option<Linear>,
    /// The norm before the head.
    pub output_norm: Norm,
    /// The blocks.
    pub blocks: Vec<Block>,
    /// Rotary tables (a layer names one by index).
    pub ropes: Vec<Rope>,
    /// Buffers.
    pub s: Scratch,
}

/// A tensor read for assembly.
enum Loaded {
    Values(Vec<f32>),
    Matrix(QMatrix),
    Experts(Vec<QMatrix>),
}

/// The tensors of a file, taken by name while the network is assembled.
struct Weights(HashMap<String, Loaded>);

impl Weights {
    fn take(&mut self, name: &str) -> Option<Loaded> {
        self.0.remove(name)
    }

    fn values(&mut self, name: &str) -> Result<Option<Vec<f32>>> {
        match self.take(name) {
            None => Ok(None),
            Some(Loaded::Values(v)) => Ok(Some(v)),
            Some(_) => Err(bad(name, "expected a vector")),
        }
    }

    fn matrix(&mut self, name: &str) -> Result<Option<QMatrix>> {
        match self.take(name) {
            None => Ok(None),
            Some(Loaded::Matrix(m)) => Ok(Some(m)),
            Some(_) => Err(bad(name, "expected a matrix")),
        }
    }

    fn experts(&mut self, name: &str) -> Result<Vec<QMatrix>> {
        match self.take(name) {
            Some(Loaded::Experts(e)) => Ok(e),
            None => Err(Error::MissingTensor(name.into())),
            Some(_) => Err(bad(name, "expected a stack of expert matrices")),
        }
    }

    /// `{base}.weight` with `{base}.bias` when present, if the weight is there.
    fn opt_linear(&mut self, base: &str) -> Result<Option<Linear>> {
        let Some(w) = self.matrix(&format!("{base}.weight"))? else {
            return Ok(None);
        };
        let b = self.values(&format!("{base}.bias"))?;
        Ok(Some(Linear { w, b }))
    }

    fn linear(&mut self, base: &str) -> Result<Linear> {
        self.opt_linear(base)?
            .ok_or_else(|| Error::MissingTensor(format!("{base}.weight")))
    }

    /// `{base}.weight` (and `.bias`) as a norm of the configured kind, if present.
    fn opt_norm(&mut self, base: &str, cfg: &Config) -> Result<Option<Norm>> {
        let Some(weight) = self.values(&format!("{base}.weight"))? else {
            return Ok(None);
        };
        let bias = self.values(&format!("{base}.bias"))?;
        Ok(Some(Norm {
            kind: cfg.norm,
            weight,
            bias,
            eps: cfg.norm_eps,
        }))
    }

    fn norm(&mut self, base: &str, cfg: &Config) -> Result<Norm> {
        self.opt_norm(base, cfg)?
            .ok_or_else(|| Error::MissingTensor(format!("{base}.weight")))
    }
}

fn bad(name: &str, reason: &str) -> Error {
    Error::BadTensor {
        name: name.into(),
        reason: reason.into(),
    }
}

impl Transformer {
    /// Reads every tensor of `specs` the file has and assembles the network.
    pub(crate) fn load(
        cfg: Config,
        specs: &[TensorSpec],
        loader: &mut Loader<'_>,
        context: usize,
        kv: KvCacheType,
    ) -> Result<Self> {
        let mut map = HashMap::new();
        for s in specs {
            if !loader.has(&s.name) {
                if s.need == Need::Required {
                    return Err(Error::MissingTensor(s.name.clone()));
                }
                continue;
            }
            let t = match s.dims.len() {
                1 => Loaded::Values(loader.vector(&s.name, s.dims[0])?),
                2 if is_router(&s.name) => Loaded::Values(loader.values(&s.name, &s.dims)?),
                2 => Loaded::Matrix(loader.matrix(&s.name, &s.dims)?),
                _ => Loaded::Experts(loader.experts(&s.name, &s.dims)?),
            };
            map.insert(s.name.clone(), t);
        }
        let mut w = Weights(map);
        let token_embd = w
            .matrix("token_embd.weight")?
            .ok_or_else(|| Error::MissingTensor("token_embd.weight".into()))?;
        let output = w.opt_linear("output")?;
        let output_norm = w.norm("output_norm", &cfg)?;
        let mut ropes = Vec::new();
        if let Some(r) = &cfg.rope {
            let mut r = r.clone();
            r.factors = match &cfg.rope_factors {
                RopeSource::None => None,
                RopeSource::Tensor(name) => w.values(name)?,
                RopeSource::LongShort {
                    long,
                    short,
                    original_context,
                } => {
                    let (l, s) = (w.values(long)?, w.values(short)?);
                    if context > *original_context {
                        l
                    } else {
                        s
                    }
                }
            };
            ropes.push(Rope::new(&r, context));
            if let Some(swa) = &cfg.rope_swa {
                ropes.push(Rope::new(swa, context));
            }
        }
        let mut blocks = Vec::with_capacity(cfg.layers);
        for i in 0..cfg.layers {
            blocks.push(block(&cfg, i, &mut w, context, kv)?);
        }
        Ok(Self {
            cfg,
            token_embd,
            output,
            output_norm,
            blocks,
            ropes,
            s: Scratch::default(),
        })
    }

    /// Every weight matrix (experts included).
    fn matrices(&self) -> impl Iterator<Item = &QMatrix> {
        let blocks = self.blocks.iter().flat_map(|b| {
            let mut m = b.attn.matrices();
            ffn_matrices(&b.ffn, &mut m);
            m
        });
        std::iter::once(&self.token_embd)
            .chain(self.output.as_ref().map(|o| &o.w))
            .chain(blocks)
    }

    /// Bytes of weights, caches and tables held.
    pub(crate) fn bytes(&self) -> usize {
        let norms = |b: &Block| {
            [
                &b.attn_norm,
                &b.attn_norm_2,
                &b.post_attn_norm,
                &b.ffn_norm,
                &b.post_ffn_norm,
            ]
            .into_iter()
            .flatten()
            .map(Norm::bytes)
            .sum::<usize>()
        };
        let small: usize = self.blocks.iter().map(|b| norms(b) + b.attn.cache.bytes()).sum();
        let ropes: usize = self.ropes.iter().map(Rope::bytes).sum();
        self.matrices().map(QMatrix::bytes).sum::<usize>() + small + ropes + self.output_norm.bytes()
    }

    /// Bytes of weight matrices copied out of the file (converted ones); the rest are read in
    /// place.
    pub(crate) fn copied_weight_bytes(&self) -> usize {
        self.matrices()
            .filter(|m| !m.borrows_file())
            .map(QMatrix::bytes)
            .sum()
    }

    /// Drops cached keys and values past `len` tokens.
    pub(crate) fn truncate_cache(&mut self, len: usize) {
        for b in &mut self.blocks {
            b.attn.cache.truncate(len);
        }
    }

    /// Sizes the residual buffers for `n` rows and fills the residual with the tokens'
    /// embeddings (times the embedding scale, if the architecture has one).
    pub fn embed(&mut self, tokens: &[u32]) {
        let d = self.cfg.embedding;
        let n = tokens.len();
        let s = &mut self.s;
        for v in [&mut s.x, &mut s.h, &mut s.h2, &mut s.o, &mut s.f] {
            v.resize(n * d, 0.0);
        }
        for (i, &t) in tokens.iter().enumerate() {
            self.token_embd
                .dequantize_row(t as usize, &mut s.x[i * d..(i + 1) * d]);
        }
        if let Some(scale) = self.cfg.embedding_scale {
            s.x.iter_mut().for_each(|v| *v *= scale);
        }
    }

    /// The output head over the last row (or every row when `all`): final norm, output
    /// product (the tied embedding when there is no `output.weight`), then the logit scale and
    /// soft-cap where the architecture has them.
    pub fn head(&mut self, n: usize, all: bool, logits: &mut Vec<f32>) -> Result<()> {
        let d = self.cfg.embedding;
        let rows = if all { n } else { 1 };
        let s = &mut self.s;
        let last = &s.x[(n - rows) * d..n * d];
        self.output_norm.apply(last, &mut s.h[..rows * d]);
        s.act.quantize(&s.h[..rows * d], rows, d);
        logits.resize(rows * self.cfg.vocab, 0.0);
        match &self.output {
            Some(o) => o.forward(&s.act, logits),
            None => self.token_embd.matmul(&s.act, logits),
        }
        if let Some(scale) = self.cfg.logit_scale {
            let inv = 1.0 / scale;
            logits.iter_mut().for_each(|v| *v *= inv);
        }
        if let Some(cap) = self.cfg.final_softcap {
            crate::kernels::ops::softcap(logits, cap);
        }
        Ok(())
    }

    /// The decoder most architectures are: per block, `x += post(attn(pre(x)))`, then
    /// `x += post(ffn(pre(x)))`, where each norm is applied when the block has it (Llama, Qwen,
    /// Phi-3 and Granite have pre-norms, OLMo 2 post-norms, Gemma 3 both; the tensor list made
    /// sure each is there) and each branch is times the residual scale where there is one.
    pub fn forward_sequential(
        &mut self,
        tokens: &[u32],
        pos: usize,
        all: bool,
        logits: &mut Vec<f32>,
    ) -> Result<()> {
        let n = tokens.len();
        self.embed(tokens);
        let d = self.cfg.embedding;
        let scale = self.cfg.residual_scale;
        let Self { blocks, ropes, s, .. } = self;
        let Scratch {
            x,
            h,
            o,
            f,
            act,
            attn,
            ffn,
            ..
        } = s;
        for b in blocks.iter_mut() {
            let input = normed(&b.attn_norm, &x[..], &mut h[..]);
            act.quantize(input, n, d);
            b.attn.forward(act, n, pos, ropes, attn, o);
            add_scaled(x, normed(&b.post_attn_norm, &o[..], &mut h[..]), scale);
            let input = normed(&b.ffn_norm, &x[..], &mut h[..]);
            act.quantize(input, n, d);
            b.ffn.forward(input, act, n, ffn, f);
            add_scaled(x, normed(&b.post_ffn_norm, &f[..], &mut h[..]), scale);
        }
        self.head(n, all, logits)
    }
}

/// `v` through `norm` into `out` when there is a norm, else `v` itself.
fn normed<'a>(norm: &Option<Norm>, v: &'a [f32], out: &'a mut [f32]) -> &'a [f32] {
    match norm {
        Some(nm) => {
            nm.apply(v, out);
            out
        }
        None => v,
    }
}

/// `x += y * scale` (or `x += y`).
pub(crate) fn add_scaled(x: &mut [f32], y: &[f32], scale: Option<f32>) {
    match scale {
        None => x.iter_mut().zip(y).for_each(|(x, y)| *x += y),
        Some(s) => x.iter_mut().zip(y).for_each(|(x, y)| *x += y * s),
    }
}

fn ffn_matrices<'a>(f: &'a Ffn, m: &mut Vec<&'a QMatrix>) {
    match f {
        Ffn::Gated { gate, up, down, .. } => m.extend([&gate.w, &up.w, &down.w]),
        Ffn::FusedGated { gate_up, down, .. } => m.extend([&gate_up.w, &down.w]),
        Ffn::Plain { up, down, .. } => m.extend([&up.w, &down.w]),
        Ffn::Moe(moe) => {
            for e in &moe.experts {
                m.extend([&e.gate, &e.up, &e.down]);
            }
            if let Some(s) = &moe.shared {
                ffn_matrices(s, m);
            }
        }
    }
}

/// Block `i`, from the standard tensor names.
fn block(cfg: &Config, i: usize, w: &mut Weights, context: usize, kv: KvCacheType) -> Result<Block> {
    let p = |t: &str| format!("blk.{i}.{t}");
    let qkv = match w.opt_linear(&p("attn_qkv"))? {
        Some(fused) => Qkv::Fused(fused),
        None => Qkv::Separate {
            q: w.linear(&p("attn_q"))?,
            k: w.linear(&p("attn_k"))?,
            v: w.linear(&p("attn_v"))?,
        },
    };
    let qk_norm = match cfg.qk_norm {
        QkNormKind::None => QkNorm::None,
        QkNormKind::PerHead => QkNorm::PerHead {
            q: w.norm(&p("attn_q_norm"), cfg)?,
            k: w.norm(&p("attn_k_norm"), cfg)?,
        },
        QkNormKind::Whole => QkNorm::Whole {
            q: w.norm(&p("attn_q_norm"), cfg)?,
            k: w.norm(&p("attn_k_norm"), cfg)?,
        },
    };
    let rope = cfg
        .rope
        .as_ref()
        .map(|_| usize::from(cfg.rope_swa.is_some() && cfg.is_swa(i)));
    let attn = Attention {
        qkv,
        qk_norm,
        out: w.linear(&p("attn_output"))?,
        heads: cfg.heads,
        kv_heads: cfg.kv_heads,
        head_dim: cfg.head_dim,
        rope,
        q_scale: cfg.q_scale,
        kq_scale: cfg.kq_scale,
        window: cfg.window_of(i),
        cache: KvCache::new(kv, cfg.kv_heads, context, cfg.head_dim),
    };
    let ffn = if cfg.experts > 0 {
        let router = w
            .values(&p("ffn_gate_inp.weight"))?
            .ok_or_else(|| Error::MissingTensor(p("ffn_gate_inp.weight")))?;
        let gates = w.experts(&p("ffn_gate_exps.weight"))?;
        let ups = w.experts(&p("ffn_up_exps.weight"))?;
        let downs = w.experts(&p("ffn_down_exps.weight"))?;
        let experts = gates
            .into_iter()
            .zip(ups)
            .zip(downs)
            .map(|((gate, up), down)| Expert { gate, up, down })
            .collect();
        let shared = match w.opt_linear(&p("ffn_up_shexp"))? {
            Some(up) => Some(Box::new(Ffn::Gated {
                gate: w.linear(&p("ffn_gate_shexp"))?,
                up,
                down: w.linear(&p("ffn_down_shexp"))?,
                act: Activation::Silu,
            })),
            None => None,
        };
        Ffn::Moe(Moe {
            router,
            experts,
            used: cfg.experts_used,
            shared,
        })
    } else {
        match cfg.ffn {
            FfnKind::Gated(act) => Ffn::Gated {
                gate: w.linear(&p("ffn_gate"))?,
                up: w.linear(&p("ffn_up"))?,
                down: w.linear(&p("ffn_down"))?,
                act,
            },
            FfnKind::FusedGated(act) => Ffn::FusedGated {
                gate_up: w.linear(&p("ffn_up"))?,
                down: w.linear(&p("ffn_down"))?,
                act,
            },
            FfnKind::Plain(act) => Ffn::Plain {
                up: w.linear(&p("ffn_up"))?,
                down: w.linear(&p("ffn_down"))?,
                act,
            },
        }
    };
    Ok(Block {
        attn_norm: w.opt_norm(&p("attn_norm"), cfg)?,
        attn_norm_2: w.opt_norm(&p("attn_norm_2"), cfg)?,
        attn,
        post_attn_norm: w.opt_norm(&p("post_attention_norm"), cfg)?,
        ffn_norm: w.opt_norm(&p("ffn_norm"), cfg)?,
        ffn,
        post_ffn_norm: w.opt_norm(&p("post_ffw_norm"), cfg)?,
    })
}
