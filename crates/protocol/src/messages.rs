use serde::{Deserialize, Serialize};

use crate::{ChatMessage, GenStats, LoadOptions, ModelInfo, SamplingParams, StopReason, TokenAlternative};

/// Identifies one generation request so that late events of an old one can be told apart.
pub type RequestId = u32;

/// Where the worker gets a model from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelSource {
    /// Absolute or page-relative URL; a `blob:` URL for a file the user picked (its bytes stay
    /// in the browser).
    pub url: String,
    /// A name to show while loading.
    pub label: String,
    /// Expected SHA-256 (lowercase hex) of the whole file, when known.
    pub sha256: Option<String>,
    /// Expected size in bytes, when known.
    pub bytes: Option<u64>,
    /// What kind of source this is.
    pub kind: SourceKind,
}

/// Kinds of model source, which decide caching and pre-download checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    /// An entry of the bundled manifest or the catalogue.
    Catalogue,
    /// A URL the user typed.
    Url,
    /// A local file (a `blob:` URL); never cached, never uploaded.
    LocalFile,
}

/// What the UI asks of the worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum WorkerRequest {
    /// Load a model (replacing any loaded one).
    Load {
        /// Where the model comes from.
        source: ModelSource,
        /// How to build it.
        options: LoadOptions,
    },
    /// Generate a chat answer.
    Generate {
        /// Echoed in every event of this request.
        id: RequestId,
        /// The conversation so far; the last message is normally the user's.
        messages: Vec<ChatMessage>,
        /// Sampling settings.
        params: SamplingParams,
    },
    /// Stop the generation with this id.
    Cancel {
        /// The request to stop.
        id: RequestId,
    },
    /// Forget the loaded model.
    Unload,
    /// Forget the keys and values cached from earlier prompts, so that the next generation
    /// evaluates its whole prompt (benchmarks use it to measure prefill on every run).
    ResetCache,
    /// List the models in the browser cache.
    ListCache,
    /// Delete one cached model.
    DeleteCached {
        /// URL the model was cached under.
        url: String,
    },
}

/// A phase of loading a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoadPhase {
    /// Checking the file's header and the memory it needs.
    Checking,
    /// Downloading the file.
    Downloading,
    /// Reading the file from the browser cache.
    ReadingCache,
    /// Verifying size and checksum.
    Verifying,
    /// Building the model (tensors, tokenizer, template).
    Building,
}

/// One model in the browser cache.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CachedModel {
    /// URL it was downloaded from (the cache key).
    pub url: String,
    /// Bytes stored.
    pub bytes: u64,
    /// SHA-256 verified when stored, if known.
    pub sha256: Option<String>,
}

/// What the worker tells the UI.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum WorkerEvent {
    /// The worker is up and ready for requests.
    Ready {
        /// Whether the wasm was built with 128-bit SIMD.
        simd: bool,
        /// Whether it is the relaxed-SIMD build (chosen when the browser supports it).
        #[serde(default)]
        relaxed_simd: bool,
        /// Threads the engine uses.
        threads: u32,
    },
    /// Progress of a load; `total` is unknown for some downloads.
    LoadProgress {
        /// What is being done.
        phase: LoadPhase,
        /// Units done (bytes, or tensors while building).
        done: u64,
        /// Units in all, when known.
        total: Option<u64>,
    },
    /// A model is ready.
    Loaded {
        /// What was loaded (boxed: much larger than the other events).
        info: Box<ModelInfo>,
        /// Whether it came from the browser cache.
        from_cache: bool,
        /// Milliseconds from request to ready.
        load_ms: f64,
    },
    /// A new model could not be used, and the one loaded before is still loaded.
    Kept {
        /// The model still loaded (boxed: much larger than the other events).
        info: Box<ModelInfo>,
    },
    /// The prompt after the chat template, for the curious.
    Prompt {
        /// Request id.
        id: RequestId,
        /// Rendered prompt text.
        text: String,
        /// Its token count.
        tokens: u32,
    },
    /// One generated token.
    Token {
        /// Request id.
        id: RequestId,
        /// Token id.
        token_id: u32,
        /// New text (may be empty while a multi-byte character is incomplete).
        text: String,
        /// Most likely alternatives, when asked for.
        alternatives: Vec<TokenAlternative>,
    },
    /// The generation ended.
    Finished {
        /// Request id.
        id: RequestId,
        /// Why it ended.
        reason: StopReason,
        /// Text released at the end (held back while it could have started a stop string).
        text: String,
        /// Timings and counts.
        stats: GenStats,
    },
    /// Something went wrong; `id` is set when it concerns one generation.
    Failed {
        /// Request id, if any.
        id: Option<RequestId>,
        /// What went wrong.
        error: WorkerError,
    },
    /// The browser cache's contents and the origin's storage numbers.
    CacheList {
        /// Cached models.
        models: Vec<CachedModel>,
        /// Bytes used by this origin.
        usage: Option<u64>,
        /// Bytes this origin may use.
        quota: Option<u64>,
    },
    /// Wasm memory in use, sent after loads and generations.
    Memory {
        /// Bytes of wasm linear memory.
        wasm_bytes: u64,
    },
}

/// A failure, in words for people plus a machine-readable kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerError {
    /// What kind of failure.
    pub kind: ErrorKind,
    /// One or two plain sentences.
    pub message: String,
}

/// Kinds of failure the UI treats differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The file is not a usable model.
    BadModel,
    /// The model needs more memory than a browser tab has.
    TooLarge,
    /// Network failure, HTTP error or a download cut short.
    Network,
    /// The browser refused to store the model.
    Storage,
    /// The chat template could not be rendered.
    Template,
    /// A request made no sense (bad settings, no model loaded).
    BadRequest,
    /// A fault inside the engine.
    Internal,
}

impl WorkerError {
    /// Builds an error.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_through_json() {
        let req = WorkerRequest::Generate {
            id: 7,
            messages: vec![ChatMessage::new("user", "안녕")],
            params: SamplingParams::greedy(4),
        };
        let json = serde_json::to_string(&req).unwrap();
        assert!(json.contains(r#""type":"generate""#));
        let back: WorkerRequest = serde_json::from_str(&json).unwrap();
        assert_eq!(back, req);
    }

    #[test]
    fn events_are_tagged() {
        let ev = WorkerEvent::Failed {
            id: None,
            error: WorkerError::new(ErrorKind::Network, "offline"),
        };
        let json = serde_json::to_string(&ev).unwrap();
        assert!(json.contains(r#""type":"failed""#));
        assert!(json.contains(r#""kind":"network""#));
    }
}
