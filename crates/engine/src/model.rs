//! A loaded model: network, tokenizer and chat template, plus what is known about it.

use std::collections::BTreeMap;

use omp_protocol::{ChatMessage, LoadOptions, MemoryEstimate, ModelInfo, TensorTypeCount, TokenScore};

use crate::arch::{self, Config, Network};
use crate::bytes::FileBytes;
use crate::chat::ChatTemplate;
use crate::error::{Error, Result};
use crate::gguf::{GgmlType, Gguf};
use crate::sampling::log_softmax;
use crate::tokenizer::Tokenizer;
use crate::weights::{converted_type, Loader};

/// Prompt tokens evaluated per forward pass while prefilling: small enough that a cancel or a
/// progress report is never far away, large enough to amortise per-call overhead.
pub const PREFILL_CHUNK: usize = 32;

/// Positions scored per forward pass by [`Model::score`]: each needs a row of logits over the
/// whole vocabulary (and the output product a second one while it runs), so fewer rows than a
/// prefill chunk keep scoring's memory near generation's.
const SCORE_CHUNK: usize = 8;

/// The smallest context a load reserves.
const MIN_CONTEXT: usize = 16;

/// A model ready to generate.
pub struct Model {
    network: Network,
    tokenizer: Tokenizer,
    /// The file's template, the fallback when it has none, or why its template is unusable.
    template: std::result::Result<ChatTemplate, String>,
    info: ModelInfo,
    /// Tokens whose keys and values are in the cache, in order; a new prompt that starts with
    /// them only evaluates the rest (multi-turn chat re-sends the whole history).
    cached: Vec<u32>,
    context: usize,
    /// Logits of the last evaluation, reused between calls.
    logits: Vec<f32>,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

impl Model {
    /// Loads a model from the bytes of a GGUF file. Pass a `Vec<u8>` to let the model keep the
    /// file's bytes as its weights without a copy (a slice is copied once).
    pub fn load(bytes: impl Into<FileBytes>, options: &LoadOptions) -> Result<Self> {
        Self::load_with_progress(bytes, options, &mut |_, _| {})
    }

    /// Checks everything about a file that needs no weights: the GGUF structure, the
    /// architecture and its hyperparameters, every tensor's presence, type and shape, and the
    /// tokenizer. A file that passes will build unless memory runs out.
    pub fn check(bytes: &[u8], options: &LoadOptions) -> Result<ModelInfo> {
        let gguf = Gguf::parse(bytes)?;
        let info = inspect(&gguf, options)?;
        let tokenizer = Tokenizer::from_gguf(&gguf)?;
        if tokenizer.vocab_size() != info.vocab_size as usize {
            return Err(Error::BadMetadata {
                key: "tokenizer.ggml.tokens".into(),
                reason: format!(
                    "{} tokens, but token_embd.weight has {} rows",
                    tokenizer.vocab_size(),
                    info.vocab_size
                ),
            });
        }
        arch::check_tensors(&gguf, options)?;
        Ok(info)
    }

    /// Loads a model, calling `progress(tensors_done, tensors_total)` as tensors are built.
    pub fn load_with_progress(
        bytes: impl Into<FileBytes>,
        options: &LoadOptions,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<Self> {
        let file: FileBytes = bytes.into();
        let gguf = Gguf::parse(file.as_slice())?;
        let mut info = inspect(&gguf, options)?;
        let dims = arch::dims(&gguf)?;
        let tokenizer = Tokenizer::from_gguf(&gguf)?;
        if tokenizer.vocab_size() != dims.vocab {
            return Err(Error::BadMetadata {
                key: "tokenizer.ggml.tokens".into(),
                reason: format!(
                    "{} tokens, but token_embd.weight has {} rows",
                    tokenizer.vocab_size(),
                    dims.vocab
                ),
            });
        }
        let template = build_template(&gguf, &tokenizer);
        let context = info.loaded_context as usize;
        let mut loader = Loader::new(&gguf, file, options.convert, progress);
        let network = Network::load(&gguf, &mut loader, context, options.kv_cache, options)?;
        info.converted_tensors = loader.converted as u32;
        Ok(Self {
            network,
            tokenizer,
            template,
            info,
            cached: Vec::new(),
            context,
            logits: Vec::new(),
        })
    }

    /// What the model is.
    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// Bytes of weights and key/value cache held in memory.
    pub fn resident_bytes(&self) -> usize {
        self.network.bytes()
    }

    /// Bytes of weight matrices the model copied (converted at load); matrices kept in their
    /// stored type are read in place from the file's bytes, which the model holds.
    pub fn copied_weight_bytes(&self) -> usize {
        self.network.copied_weight_bytes()
    }

    /// Its tokenizer.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// Tokens of context reserved.
    pub fn context_length(&self) -> usize {
        self.context
    }

    /// The chat template in use, or why the file's template cannot be used.
    pub fn chat_template(&self) -> std::result::Result<&ChatTemplate, Error> {
        self.template.as_ref().map_err(|e| Error::Template(e.clone()))
    }

    /// Renders a conversation with the chat template.
    pub fn render_chat(&self, messages: &[ChatMessage], add_generation_prompt: bool) -> Result<String> {
        self.chat_template()?.render(messages, add_generation_prompt)
    }

    /// Renders and tokenizes a conversation (control tokens in the rendered text are parsed;
    /// BOS is added when the model asks for it and the template did not write it).
    pub fn encode_chat(&self, messages: &[ChatMessage]) -> Result<Vec<u32>> {
        let text = self.render_chat(messages, true)?;
        let mut ids = self.tokenizer.encode(&text, false, true);
        if let Some(bos) = self.tokenizer.specials().bos {
            if self.tokenizer.adds_bos() && ids.first() != Some(&bos) {
                ids.insert(0, bos);
            }
        }
        Ok(ids)
    }

    /// Whether this is a base model: a file without a chat template of its own, which was
    /// trained to continue text rather than to answer turns.
    pub fn is_base_model(&self) -> bool {
        !self.info.has_chat_template
    }

    /// The prompt text for a conversation: the chat template's rendering, or for a base model
    /// the conversation's own texts run together (the system prompt and a blank line, then
    /// every other message as written), which it continues.
    pub fn render_prompt(&self, messages: &[ChatMessage]) -> Result<String> {
        if self.is_base_model() {
            Ok(continuation(messages))
        } else {
            self.render_chat(messages, true)
        }
    }

    /// [`Model::render_prompt`] as token ids: a base model's text is tokenized as plain text
    /// (BOS as the file asks, control tokens not parsed), as `omp generate` without `--chat`.
    pub fn encode_prompt(&self, messages: &[ChatMessage]) -> Result<Vec<u32>> {
        if self.is_base_model() {
            Ok(self.tokenizer.encode(&continuation(messages), true, false))
        } else {
            self.encode_chat(messages)
        }
    }

    /// Forgets cached keys and values (the next prompt is evaluated from scratch).
    pub fn reset(&mut self) {
        self.cached.clear();
        self.network.truncate_cache(0);
    }

    /// Keeps the longest cached prefix of `tokens`, leaving at least one token to evaluate so
    /// that its logits are available. Returns how many tokens of `tokens` are already cached.
    pub(crate) fn reuse_prefix(&mut self, tokens: &[u32]) -> usize {
        let common = self
            .cached
            .iter()
            .zip(tokens)
            .take_while(|(a, b)| a == b)
            .count()
            .min(tokens.len().saturating_sub(1));
        self.cached.truncate(common);
        self.network.truncate_cache(common);
        common
    }

    /// Evaluates `tokens` after the cached ones; returns the logits of the last one, or of all
    /// of them (`rows * vocab` values, row-major).
    pub(crate) fn eval(&mut self, tokens: &[u32], all: bool) -> Result<&[f32]> {
        if tokens.is_empty() {
            return Err(Error::InvalidInput("nothing to evaluate".into()));
        }
        if self.cached.len() + tokens.len() > self.context {
            return Err(Error::InvalidInput(format!(
                "{} tokens do not fit the context window of {}",
                self.cached.len() + tokens.len(),
                self.context
            )));
        }
        let vocab = self.tokenizer.vocab_size() as u32;
        if let Some(bad) = tokens.iter().find(|&&t| t >= vocab) {
            return Err(Error::InvalidInput(format!(
                "token id {bad} is outside the vocabulary of {vocab}"
            )));
        }
        let pos = self.cached.len();
        if let Err(e) = self.network.forward(tokens, pos, all, &mut self.logits) {
            // The cache may hold part of this batch: forget it rather than trust it.
            self.reset();
            return Err(e);
        }
        self.cached.extend_from_slice(tokens);
        Ok(&self.logits)
    }

    /// Teacher-forced scores: feeds `prompt` then `continuation` and reports, for every token of
    /// the continuation, its log-probability and the model's own most likely token there.
    pub fn score(&mut self, prompt: &[u32], continuation: &[u32]) -> Result<Vec<TokenScore>> {
        if prompt.is_empty() {
            return Err(Error::InvalidInput(
                "scoring needs at least one prompt token".into(),
            ));
        }
        if continuation.is_empty() {
            return Ok(Vec::new());
        }
        let vocab = self.tokenizer.vocab_size() as u32;
        if let Some(bad) = prompt.iter().chain(continuation).find(|&&t| t >= vocab) {
            return Err(Error::InvalidInput(format!(
                "token id {bad} is outside the vocabulary of {vocab}"
            )));
        }
        let full: Vec<u32> = prompt
            .iter()
            .chain(&continuation[..continuation.len() - 1])
            .copied()
            .collect();
        let first_needed = prompt.len() - 1;
        let start = self.reuse_prefix(&full).min(first_needed);
        if start < self.cached.len() {
            self.cached.truncate(start);
            self.network.truncate_cache(start);
        }
        let mut scores = Vec::with_capacity(continuation.len());
        let mut pos = start;
        while pos < full.len() {
            let end = (pos + SCORE_CHUNK).min(full.len());
            let vocab = self.tokenizer.vocab_size();
            let logits = self.eval(&full[pos..end], true)?;
            for (r, row) in logits.chunks_exact(vocab).enumerate() {
                let p = pos + r;
                if p < first_needed {
                    continue;
                }
                let target = continuation[p - first_needed];
                let lp = log_softmax(row);
                let argmax = crate::sampling::argmax(row);
                scores.push(TokenScore {
                    id: target,
                    logprob: lp.get(target as usize).copied().unwrap_or(f32::NEG_INFINITY),
                    argmax,
                    argmax_logprob: lp[argmax as usize],
                });
            }
            pos = end;
        }
        Ok(scores)
    }
}

/// A conversation as the text a base model continues: the system prompt and a blank line, then
/// every other message as written, run together (an answer continued the text before it, and
/// the next message continues the answer).
fn continuation(messages: &[ChatMessage]) -> String {
    let mut text = String::new();
    for m in messages.iter().filter(|m| m.role == "system") {
        text.push_str(&m.content);
        text.push_str("\n\n");
    }
    for m in messages.iter().filter(|m| m.role != "system") {
        text.push_str(&m.content);
    }
    text
}

fn build_template(gguf: &Gguf, tok: &Tokenizer) -> std::result::Result<ChatTemplate, String> {
    let text = |id: Option<u32>| id.and_then(|i| tok.token_text(i)).unwrap_or("").to_string();
    let (bos, eos) = (text(tok.specials().bos), text(tok.specials().eos));
    match gguf.opt_str("tokenizer.chat_template") {
        Ok(Some(src)) => ChatTemplate::new(src, &bos, &eos).map_err(|e| e.to_string()),
        Ok(None) => Ok(ChatTemplate::fallback(
            tok.token_id("<|im_start|>").is_some(),
            &bos,
            &eos,
        )),
        Err(e) => Err(e.to_string()),
    }
}

/// Describes a model from its header alone: no tensor data is read, so this works on the
/// first bytes of a file (an HTTP Range request) before deciding to download it.
pub fn inspect(gguf: &Gguf, options: &LoadOptions) -> Result<ModelInfo> {
    let cfg = arch::config(gguf)?;
    let dims = cfg.dims();
    let context = (options.context_length as usize).clamp(MIN_CONTEXT, dims.context.max(MIN_CONTEXT));
    let mut by_type: BTreeMap<GgmlType, (u32, u64)> = BTreeMap::new();
    let mut parameters = 0u64;
    for t in &gguf.tensors {
        let e = by_type.entry(t.ty).or_default();
        e.0 += 1;
        e.1 += t.n_bytes;
        parameters += t.elements();
    }
    let quantization = gguf
        .tensors
        .iter()
        .filter(|t| t.dims.len() == 2 && t.name.starts_with("blk."))
        .fold(BTreeMap::<&str, u64>::new(), |mut m, t| {
            *m.entry(t.ty.name).or_default() += t.elements();
            m
        })
        .into_iter()
        .max_by_key(|&(_, n)| n)
        .map_or_else(|| "F32".to_string(), |(name, _)| name.to_string());
    let name = gguf
        .opt_str("general.name")?
        .unwrap_or("unnamed model")
        .to_string();
    let tokenizer = gguf.opt_str("tokenizer.ggml.model")?.unwrap_or("").to_string();
    Ok(ModelInfo {
        name,
        architecture: gguf.str("general.architecture")?.to_string(),
        parameters,
        file_bytes: gguf.file_len,
        tensor_types: by_type
            .into_iter()
            .map(|(t, (count, bytes))| TensorTypeCount {
                ty: t.name.into(),
                count,
                bytes,
            })
            .collect(),
        quantization,
        context_length: dims.context as u32,
        loaded_context: context as u32,
        vocab_size: dims.vocab as u32,
        tokenizer,
        pre_tokenizer: gguf.opt_str("tokenizer.ggml.pre")?.map(String::from),
        layers: dims.layers as u32,
        embedding_length: dims.embedding as u32,
        heads: dims.heads as u32,
        kv_heads: dims.kv_heads as u32,
        head_dim: dims.head_dim as u32,
        sliding_window: cfg.window.map(|w| w.min(u32::MAX as usize) as u32),
        sliding_layers: (0..cfg.layers).filter(|&i| cfg.is_swa(i)).count() as u32,
        experts: cfg.experts as u32,
        experts_used: cfg.experts_used as u32,
        has_chat_template: gguf.get("tokenizer.chat_template").is_some(),
        memory: estimate_memory(gguf, &cfg, context, options),
        convert: options.convert.as_str().into(),
        kv_cache: crate::kernels::attention::effective_kind(options.kv_cache, dims.head_dim)
            .as_str()
            .into(),
        converted_tensors: gguf
            .tensors
            .iter()
            .filter(|t| {
                t.dims.len() == 2
                    && t.name.starts_with("blk.")
                    && converted_type(t.ty, options.convert) != t.ty
            })
            .count() as u32,
        license: gguf.opt_str("general.license")?.map(String::from),
    })
}

/// Bytes the engine needs for a model at `context` tokens, beyond the file itself (which it
/// holds, because matrices kept in their stored type are read in place from it): weights
/// copied out of the file (conversions, and vectors and routers widened to f32), the
/// key/value cache, rotary tables and the largest activations of a prefill chunk.
///
/// Converting a matrix also needs a copy of its bytes for a moment (see
/// `weights::requantize`, which converts in pieces). It is not counted: each is freed before
/// the next matrix, and the largest, the embedding's, comes first, while nothing else is
/// copied yet, so the running total bounds the load's peak.
pub fn estimate_memory(gguf: &Gguf, cfg: &Config, context: usize, options: &LoadOptions) -> MemoryEstimate {
    let mut copied = 0u64;
    for t in &gguf.tensors {
        let as_values = t.dims.len() == 1 || t.name.ends_with(".ffn_gate_inp.weight");
        if as_values {
            copied += t.elements() * 4;
        } else if converted_type(t.ty, options.convert) != t.ty {
            let target = converted_type(t.ty, options.convert);
            copied += target.bytes_for(t.elements()).unwrap_or(t.n_bytes);
        }
    }
    let kv_kind = crate::kernels::attention::effective_kind(options.kv_cache, cfg.head_dim);
    let f = 4u64;
    let (ctx, chunk) = (context as u64, PREFILL_CHUNK as u64);
    let (d, ff, vocab) = (cfg.embedding as u64, cfg.hidden_width() as u64, cfg.vocab as u64);
    let (qw, kvw) = (cfg.q_width() as u64, cfg.kv_width() as u64);
    let kv = cfg.layers as u64
        * 2
        * cfg.kv_heads as u64
        * ctx
        * crate::kernels::attention::row_bytes(kv_kind, cfg.head_dim) as u64;
    // Rotary cosines and sines for every position, per table (Gemma 3 has two).
    let tables = u64::from(cfg.rope.is_some()) + u64::from(cfg.rope_swa.is_some());
    let rope_dims = cfg.rope.as_ref().map_or(0, |r| r.dims) as u64;
    let rope = tables * ctx * rope_dims * f;
    // A prefill chunk's rows (`arch::transformer::Scratch` and the layers' buffers): the
    // residual, two normalised copies, two branch outputs, q, k, v, a fused Q/K/V output,
    // attention output, gate and up; the quantized activations (one byte, a widened i16 and
    // lane sums: at most an f32's worth per value); a several-row product's tile buffer; the
    // attention's scores over the whole context (each tile of a prefill, a group's run of
    // rows, has its own, for the thread pool: `ROW_TILES` sets of every head's), and on
    // several threads a long context's tiled scores and weights (two sets more).
    let widest = ff.max(qw + 2 * kvw).max(d);
    let rows = chunk * (5 * d + 3 * qw + 4 * kvw + 2 * ff) * f + chunk * widest * f;
    let tiles = chunk * widest * f;
    let scores = (crate::kernels::attention::ROW_TILES as u64 + 2) * cfg.heads as u64 * ctx * f;
    // Logits: one row while generating; scoring's rows, and the product's buffer for them.
    let logits = 2 * SCORE_CHUNK as u64 * vocab * f;
    let activations = rows + tiles + scores + logits;
    let scratch = rope + activations;
    MemoryEstimate {
        copied_weights_bytes: copied,
        kv_cache_bytes: kv,
        scratch_bytes: scratch,
        total_bytes: copied + kv + scratch,
        context: context as u32,
    }
}
