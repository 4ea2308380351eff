//! Model architectures. Each file implements one `general.architecture`; [`Network`] dispatches.
//!
//! To add an architecture: a file here with its hyperparameters, its weights named like the GGUF
//! tensors and a `forward`; a variant of [`Network`]; its name in [`SUPPORTED`].

pub mod llama;

use crate::bytes::FileBytes;
use crate::error::{Error, Result};
use crate::gguf::Gguf;
use crate::weights::Loader;

/// `general.architecture` values the engine runs.
pub const SUPPORTED: &[&str] = &["llama"];

/// A loaded network of any supported architecture.
pub(crate) enum Network {
    Llama(llama::Llama),
}

/// Shape facts every architecture reports, for memory estimates and the UI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dims {
    /// Transformer blocks.
    pub layers: usize,
    /// Residual width.
    pub embedding: usize,
    /// Feed-forward width.
    pub feed_forward: usize,
    /// Attention heads.
    pub heads: usize,
    /// Key/value heads.
    pub kv_heads: usize,
    /// Per-head width.
    pub head_dim: usize,
    /// Vocabulary size.
    pub vocab: usize,
    /// Trained context length.
    pub context: usize,
}

/// Reads the shape facts of a file's architecture without loading any weight.
pub fn dims(gguf: &Gguf) -> Result<Dims> {
    let arch = gguf.str("general.architecture")?;
    match arch {
        "llama" => {
            let hp = llama::Hparams::from_gguf(gguf, arch)?;
            Ok(Dims {
                layers: hp.block_count,
                embedding: hp.embedding_length,
                feed_forward: hp.feed_forward_length,
                heads: hp.head_count,
                kv_heads: hp.head_count_kv,
                head_dim: hp.head_dim,
                vocab: hp.vocab_size,
                context: hp.context_length,
            })
        }
        other => Err(Error::UnsupportedArchitecture(other.into())),
    }
}

/// Checks that every tensor the architecture needs is present, shaped and typed as it needs,
/// without reading tensor data.
pub(crate) fn check_tensors(gguf: &Gguf, options: &omp_protocol::LoadOptions) -> Result<()> {
    let mut ignore = |_, _| {};
    let loader = Loader::new(gguf, FileBytes::default(), options.convert, &mut ignore);
    match gguf.str("general.architecture")? {
        "llama" => llama::Llama::check(gguf, &loader),
        other => Err(Error::UnsupportedArchitecture(other.into())),
    }
}

impl Network {
    pub(crate) fn load(
        gguf: &Gguf,
        loader: &mut Loader<'_>,
        context: usize,
        kv: omp_protocol::KvCacheType,
    ) -> Result<Self> {
        match gguf.str("general.architecture")? {
            "llama" => Ok(Network::Llama(llama::Llama::load(gguf, loader, context, kv)?)),
            other => Err(Error::UnsupportedArchitecture(other.into())),
        }
    }

    pub(crate) fn forward(
        &mut self,
        tokens: &[u32],
        pos: usize,
        all: bool,
        logits: &mut Vec<f32>,
    ) -> Result<()> {
        match self {
            Network::Llama(m) => m.forward(tokens, pos, all, logits),
        }
    }

    /// Bytes of weights and caches held.
    pub(crate) fn bytes(&self) -> usize {
        match self {
            Network::Llama(m) => m.bytes(),
        }
    }

    /// Bytes of weights copied out of the file rather than read in place.
    pub(crate) fn copied_weight_bytes(&self) -> usize {
        match self {
            Network::Llama(m) => m.copied_weight_bytes(),
        }
    }

    pub(crate) fn truncate_cache(&mut self, len: usize) {
        match self {
            Network::Llama(m) => m.truncate_cache(len),
        }
    }
}

/// Rotary position embedding tables for every position of the context.
pub(crate) struct Rope {
    /// `cos[p * half + i]`: cosine of the angle of pair `i` at position `p`.
    pub(crate) cos: Vec<f32>,
    /// Sines, same layout.
    pub(crate) sin: Vec<f32>,
}

impl Rope {
    /// Tables for `context` positions of heads of width `head_dim`; `freq_factors` (Llama 3.1's
    /// `rope_freqs.weight`) divide the frequencies when present.
    pub(crate) fn new(
        head_dim: usize,
        context: usize,
        base: f32,
        linear_factor: f32,
        freq_factors: Option<&[f32]>,
    ) -> Self {
        let half = head_dim / 2;
        // As ggml: the angle of pair `i` at position `p` is `p * base^(-2i/d)`, the power built
        // by repeated multiplication in f32. Sine and cosine are taken in f64 and rounded, so
        // the tables are the same whichever libm the platform has.
        let theta_scale = base.powf(-2.0 / head_dim as f32);
        let mut cos = Vec::with_capacity(context * half);
        let mut sin = Vec::with_capacity(context * half);
        for p in 0..context {
            let mut theta = p as f32 / linear_factor;
            for i in 0..half {
                let ff = freq_factors.and_then(|ff| ff.get(i)).copied().unwrap_or(1.0);
                let (s, c) = f64::from(theta / ff).sin_cos();
                cos.push(c as f32);
                sin.push(s as f32);
                theta *= theta_scale;
            }
        }
        Self { cos, sin }
    }
}

/// Activation buffers reused by every forward pass, so the per-token path does not allocate.
#[derive(Default)]
pub(crate) struct Scratch {
    pub(crate) x: Vec<f32>,
    pub(crate) h: Vec<f32>,
    pub(crate) q: Vec<f32>,
    pub(crate) k: Vec<f32>,
    pub(crate) v: Vec<f32>,
    pub(crate) att: Vec<f32>,
    pub(crate) gate: Vec<f32>,
    pub(crate) up: Vec<f32>,
    pub(crate) act: crate::kernels::QActivations,
    pub(crate) attention: crate::kernels::attention::AttentionScratch,
}

impl Scratch {
    /// Sizes the buffers for `n` rows.
    pub(crate) fn resize(&mut self, n: usize, d: usize, ff: usize, qw: usize, kvw: usize) {
        self.x.resize(n * d, 0.0);
        self.h.resize(n * d.max(qw), 0.0);
        self.h.truncate(n * d);
        self.q.resize(n * qw, 0.0);
        self.k.resize(n * kvw, 0.0);
        self.v.resize(n * kvw, 0.0);
        self.att.resize(n * qw, 0.0);
        self.gate.resize(n * ff, 0.0);
        self.up.resize(n * ff, 0.0);
    }
}
