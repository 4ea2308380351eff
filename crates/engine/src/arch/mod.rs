//! Model architectures: one small file per `general.architecture`, each composing the shared
//! layers of `crate::layers` as llama.cpp's `src/models/*.cpp` compose its graph builders.
//!
//! An architecture says three things ([`Arch`]): its hyper-parameters ([`Config`], read from its
//! `{arch}.*` keys and checked before anything is allocated), the tensors it expects
//! ([`TensorSpec`]: names, shapes, which are optional), and its forward pass over a
//! [`Transformer`] assembled from those tensors. Everything else is derived from the registry
//! [`ARCHS`]: the supported names, the memory estimate, the tiny test models
//! (`crate::fixtures::tiny`) and the catalogue's verdicts. `docs/adding-an-architecture.md` is
//! the checklist for a new one.

mod config;
mod falcon;
mod gemma3;
mod granite;
mod llama;
mod olmo2;
mod phi3;
mod qwen;
mod specs;
mod transformer;

pub use config::{Config, FfnKind, QkNormKind, RopeSource};
pub use transformer::{Block, Transformer};

use crate::bytes::FileBytes;
use crate::error::{Error, Result};
use crate::gguf::{Gguf, GgufWriter};
use crate::weights::Loader;

/// One `general.architecture`.
pub trait Arch: Sync {
    /// The `general.architecture` value (and the prefix of its metadata keys).
    fn name(&self) -> &'static str;

    /// Model families that use it, for people reading an error or the catalogue.
    fn families(&self) -> &'static str;

    /// Reads and checks the hyper-parameters (no tensor data is read).
    fn config(&self, gguf: &Gguf) -> Result<Config>;

    /// Every tensor the architecture may use, given the file (some choices, such as a fused
    /// Q/K/V matrix, depend on which tensors it holds).
    fn tensors(&self, cfg: &Config, gguf: &Gguf) -> Vec<TensorSpec>;

    /// Runs `tokens` at positions `pos..` and writes the logits of the last position, or of
    /// every position when `all` is set (`rows * vocab` values). The default is the decoder
    /// most architectures are ([`Transformer::forward_sequential`]).
    fn forward(
        &self,
        m: &mut Transformer,
        tokens: &[u32],
        pos: usize,
        all: bool,
        logits: &mut Vec<f32>,
    ) -> Result<()> {
        m.forward_sequential(tokens, pos, all, logits)
    }

    /// The architecture's own metadata keys for a tiny test model of `shape` (the common ones
    /// are written by `crate::fixtures`).
    fn tiny_keys(&self, w: &mut GgufWriter, shape: &crate::fixtures::TinyShape);
}

/// Every architecture the engine runs.
pub static ARCHS: &[&dyn Arch] = &[
    &llama::Llama,
    &qwen::Qwen2,
    &qwen::Qwen3,
    &qwen::Qwen3Moe,
    &gemma3::Gemma3,
    &phi3::Phi3,
    &olmo2::Olmo2,
    &falcon::Falcon,
    &granite::Granite,
    &granite::GraniteMoe,
];

/// The names of every supported architecture.
pub fn supported() -> Vec<&'static str> {
    ARCHS.iter().map(|a| a.name()).collect()
}

/// The architecture named `name`.
pub fn find(name: &str) -> Option<&'static dyn Arch> {
    ARCHS.iter().copied().find(|a| a.name() == name)
}

/// The file's architecture, or an error naming it.
pub fn of(gguf: &Gguf) -> Result<&'static dyn Arch> {
    let name = gguf.str("general.architecture")?;
    find(name).ok_or_else(|| Error::UnsupportedArchitecture(name.into()))
}

/// What an architecture expects of one tensor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorSpec {
    /// Its name in the file.
    pub name: String,
    /// Shape in ggml order (row length first): one dimension for a vector (read as f32), two
    /// for a matrix, three for a stack of expert matrices.
    pub dims: Vec<u64>,
    /// Whether a file must have it.
    pub need: Need,
}

/// Whether a tensor must be there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Always.
    Required,
    /// Used when present.
    Optional,
    /// Optional, but the real models of the architecture have it, so the tiny test models do.
    Usual,
}

impl TensorSpec {
    /// A required tensor.
    pub fn required(name: impl Into<String>, dims: &[u64]) -> Self {
        Self {
            name: name.into(),
            dims: dims.to_vec(),
            need: Need::Required,
        }
    }

    /// An optional tensor.
    pub fn optional(name: impl Into<String>, dims: &[u64]) -> Self {
        Self {
            need: Need::Optional,
            ..Self::required(name, dims)
        }
    }

    /// An optional tensor the real models have.
    pub fn usual(name: impl Into<String>, dims: &[u64]) -> Self {
        Self {
            need: Need::Usual,
            ..Self::required(name, dims)
        }
    }
}

/// Shape facts every architecture reports, for memory estimates and the UI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dims {
    /// Transformer blocks.
    pub layers: usize,
    /// Residual width.
    pub embedding: usize,
    /// Feed-forward width (an expert's, for mixtures of experts).
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
    Ok(config(gguf)?.dims())
}

/// The file's hyper-parameters.
pub fn config(gguf: &Gguf) -> Result<Config> {
    checked_config(of(gguf)?, gguf)
}

/// The architecture's reading of the file's hyper-parameters, with the checks every
/// architecture's final configuration must pass (whatever its own file set).
fn checked_config(arch: &dyn Arch, gguf: &Gguf) -> Result<Config> {
    let c = arch.config(gguf)?;
    let bad = |key: &str, reason: String| Error::BadMetadata {
        key: format!("{}.{key}", c.arch),
        reason,
    };
    // Each block has several tensors, so a block count above the tensor count is a lie that
    // would otherwise cost a tensor list of that length before the first missing tensor.
    if c.layers > gguf.tensors.len() {
        return Err(bad(
            "block_count",
            format!(
                "{} blocks, but the file holds {} tensors",
                c.layers,
                gguf.tensors.len()
            ),
        ));
    }
    if c.experts > 0 && c.expert_ff == 0 {
        return Err(bad("expert_feed_forward_length", "an expert of width 0".into()));
    }
    if c.experts > 0 && (c.experts_used == 0 || c.experts_used > c.experts) {
        return Err(bad(
            "expert_used_count",
            format!("{} experts used per token out of {}", c.experts_used, c.experts),
        ));
    }
    if c.hidden_width() == 0 || c.hidden_width() > 1 << 24 {
        return Err(bad(
            "feed_forward_length",
            format!("a hidden width of {}", c.hidden_width()),
        ));
    }
    if c.window == Some(0) {
        return Err(bad("attention.sliding_window", "a window of 0".into()));
    }
    Ok(c)
}

/// Checks that every tensor the architecture needs is present, shaped and typed as it needs,
/// and that the file holds no tensor the architecture does not know, without reading tensor
/// data.
pub(crate) fn check_tensors(gguf: &Gguf, options: &omp_protocol::LoadOptions) -> Result<()> {
    let arch = of(gguf)?;
    let cfg = checked_config(arch, gguf)?;
    let specs = arch.tensors(&cfg, gguf);
    let mut ignore = |_, _| {};
    let loader = Loader::new(gguf, FileBytes::default(), options.convert, &mut ignore);
    for s in &specs {
        if !loader.has(&s.name) {
            if s.need == Need::Required {
                return Err(Error::MissingTensor(s.name.clone()));
            }
            continue;
        }
        if s.dims.len() == 1 || is_router(&s.name) {
            loader.check_values(&s.name, &s.dims)?;
        } else {
            loader.check_matrix(&s.name, &s.dims)?;
        }
    }
    if let Some(t) = gguf
        .tensors
        .iter()
        .find(|t| !specs.iter().any(|s| s.name == t.name))
    {
        return Err(Error::BadTensor {
            name: t.name.clone(),
            reason: format!(
                "not a tensor of the {} architecture (a variant the engine does not run?)",
                arch.name()
            ),
        });
    }
    Ok(())
}

/// Whether a matrix is a mixture's router, read as f32 (its logits pick experts, and llama.cpp
/// computes them in f32 from f32 weights).
pub(crate) fn is_router(name: &str) -> bool {
    name.ends_with(".ffn_gate_inp.weight")
}

/// A loaded network of any supported architecture.
pub(crate) struct Network {
    arch: &'static dyn Arch,
    model: Transformer,
}

impl Network {
    pub(crate) fn load(
        gguf: &Gguf,
        loader: &mut Loader<'_>,
        context: usize,
        kv: omp_protocol::KvCacheType,
        options: &omp_protocol::LoadOptions,
    ) -> Result<Self> {
        check_tensors(gguf, options)?;
        let arch = of(gguf)?;
        let cfg = checked_config(arch, gguf)?;
        let specs = arch.tensors(&cfg, gguf);
        let model = Transformer::load(cfg, &specs, loader, context, kv)?;
        Ok(Self { arch, model })
    }

    pub(crate) fn forward(
        &mut self,
        tokens: &[u32],
        pos: usize,
        all: bool,
        logits: &mut Vec<f32>,
    ) -> Result<()> {
        self.arch.forward(&mut self.model, tokens, pos, all, logits)
    }

    /// Bytes of weights and caches held.
    pub(crate) fn bytes(&self) -> usize {
        self.model.bytes()
    }

    /// Bytes of weights copied out of the file rather than read in place.
    pub(crate) fn copied_weight_bytes(&self) -> usize {
        self.model.copied_weight_bytes()
    }

    pub(crate) fn truncate_cache(&mut self, len: usize) {
        self.model.truncate_cache(len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_known_to_errors() {
        let names = supported();
        for (i, n) in names.iter().enumerate() {
            assert!(!names[..i].contains(n), "{n} twice");
            assert!(find(n).is_some());
        }
        let e = Error::UnsupportedArchitecture("mamba".into()).to_string();
        for n in &names {
            assert!(e.contains(n), "{e}");
        }
    }
}
