use serde::{Deserialize, Serialize};

/// Why a generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The model produced an end-of-generation token.
    EndOfText,
    /// The text reached one of the requested stop strings.
    StopString,
    /// `max_tokens` tokens were generated.
    MaxTokens,
    /// The context window is full.
    ContextFull,
    /// The user (or host page) asked to stop.
    Cancelled,
}

impl StopReason {
    /// A short phrase for people.
    pub fn describe(self) -> &'static str {
        match self {
            StopReason::EndOfText => "the model finished its answer",
            StopReason::StopString => "a stop string was reached",
            StopReason::MaxTokens => "the token limit was reached",
            StopReason::ContextFull => "the context window is full",
            StopReason::Cancelled => "stopped",
        }
    }
}

/// Timings and counts of one generation. Times are milliseconds of wall clock.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct GenStats {
    /// Tokens in the prompt that were evaluated.
    pub prompt_tokens: u32,
    /// Tokens generated.
    pub generated_tokens: u32,
    /// From the start of the request to the first generated token.
    pub time_to_first_token_ms: f64,
    /// Time spent evaluating the prompt.
    pub prefill_ms: f64,
    /// Prompt tokens per second.
    pub prefill_tokens_per_s: f64,
    /// Time spent generating after the first token.
    pub decode_ms: f64,
    /// Generated tokens per second after the first one.
    pub decode_tokens_per_s: f64,
    /// Load-time conversion in effect (`none`, `q8_0`, `q4_0`).
    pub convert: String,
}

/// One likely next token and its probability.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenAlternative {
    /// Token id.
    pub id: u32,
    /// The token as text (may be a fragment of a character).
    pub text: String,
    /// Probability under the model (after temperature 1 softmax).
    pub prob: f32,
}

/// How many tensors of one storage type a model holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TensorTypeCount {
    /// ggml type name, e.g. `Q4_1`.
    pub ty: String,
    /// Number of tensors of that type.
    pub count: u32,
    /// Bytes those tensors take in the file.
    pub bytes: u64,
}

/// What a model file is and what it costs to run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// `general.name`, or the file name when absent.
    pub name: String,
    /// `general.architecture`, e.g. `llama`.
    pub architecture: String,
    /// Number of weights.
    pub parameters: u64,
    /// Size of the file.
    pub file_bytes: u64,
    /// Tensor storage types as found in the file.
    pub tensor_types: Vec<TensorTypeCount>,
    /// Most common quantization among matrix weights (e.g. `Q4_1`).
    pub quantization: String,
    /// Maximum context the model was trained for.
    pub context_length: u32,
    /// Context reserved by this load.
    pub loaded_context: u32,
    /// Number of tokens in the vocabulary.
    pub vocab_size: u32,
    /// `tokenizer.ggml.model` (`gpt2` or `llama`).
    pub tokenizer: String,
    /// `tokenizer.ggml.pre` when present.
    pub pre_tokenizer: Option<String>,
    /// Transformer blocks.
    pub layers: u32,
    /// Width of the residual stream.
    pub embedding_length: u32,
    /// Attention heads.
    pub heads: u32,
    /// Key/value heads (fewer than `heads` with grouped-query attention).
    pub kv_heads: u32,
    /// Width of one attention head.
    #[serde(default)]
    pub head_dim: u32,
    /// Sliding-window size, when some layers attend only to that many recent positions.
    #[serde(default)]
    pub sliding_window: Option<u32>,
    /// How many layers use the sliding window.
    #[serde(default)]
    pub sliding_layers: u32,
    /// Experts per mixture-of-experts layer (0: a dense model).
    #[serde(default)]
    pub experts: u32,
    /// Experts run per token.
    #[serde(default)]
    pub experts_used: u32,
    /// Whether the file carries a chat template.
    pub has_chat_template: bool,
    /// Memory estimate for running the model at `loaded_context`.
    pub memory: MemoryEstimate,
    /// Load-time conversion applied (`none` when the file's types are used as stored).
    pub convert: String,
    /// Tensors that the conversion changed.
    pub converted_tensors: u32,
    /// Storage of the key/value cache (`f16` or `q8_0`).
    #[serde(default)]
    pub kv_cache: String,
    /// `general.license` when present.
    pub license: Option<String>,
}

/// Bytes a model needs while running, beyond its file. The engine holds the file, and weights
/// kept in their stored type are read in place from it, so those cost nothing more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct MemoryEstimate {
    /// Weights copied out of the file: matrices converted at load, norm vectors as f32.
    pub copied_weights_bytes: u64,
    /// Key/value cache at the given context.
    pub kv_cache_bytes: u64,
    /// Activations and scratch buffers.
    pub scratch_bytes: u64,
    /// Sum of the above: add the file's size for the whole.
    pub total_bytes: u64,
    /// Context the estimate is for.
    pub context: u32,
}

/// Teacher-forced score of one position of a continuation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenScore {
    /// The token that was fed (the continuation's token at this position).
    pub id: u32,
    /// Natural-log probability the model gave to `id`.
    pub logprob: f32,
    /// The token the model found most likely at this position.
    pub argmax: u32,
    /// Log-probability of `argmax`.
    pub argmax_logprob: f32,
}
