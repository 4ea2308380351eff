//! The engine's one error type. Every variant names the key, tensor or offset involved so that
//! a user told "this file is broken" also learns where.

use crate::gguf::Value;

/// Engine result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the engine.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file does not start with `GGUF`.
    #[error("not a GGUF model file: it starts with {found:02x?} instead of \"GGUF\"")]
    BadMagic {
        /// The first four bytes.
        found: [u8; 4],
    },
    /// A GGUF version other than 2 or 3.
    #[error("unsupported GGUF version {0} (versions 2 and 3 are supported)")]
    UnsupportedVersion(u32),
    /// The file ends before something it declares.
    #[error(
        "the file is truncated: {what} needs {needed} bytes at offset {offset}, but only {available} remain"
    )]
    Truncated {
        /// What was being read.
        what: String,
        /// Where.
        offset: u64,
        /// Bytes needed.
        needed: u64,
        /// Bytes left.
        available: u64,
    },
    /// Only a prefix of the file was given and the header continues past it.
    #[error("the header continues past the bytes read so far; read at least {at_least} bytes")]
    NeedMoreBytes {
        /// Bytes from the start of the file needed to go on.
        at_least: u64,
    },
    /// A structural problem in the header.
    #[error("malformed GGUF file: {0}")]
    Malformed(String),
    /// A metadata entry is unusable.
    #[error("metadata {key:?}: {reason}")]
    BadMetadata {
        /// The key.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// A required metadata key is absent.
    #[error("the model file lacks the metadata key {0:?}")]
    MissingKey(String),
    /// A tensor description or its data is unusable.
    #[error("tensor {name:?}: {reason}")]
    BadTensor {
        /// Tensor name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// A required tensor is absent.
    #[error("the model file lacks the tensor {0:?}")]
    MissingTensor(String),
    /// A tensor type id ggml does not define.
    #[error("tensor {name:?} has unknown type id {type_id}")]
    UnknownTensorType {
        /// Tensor name.
        name: String,
        /// The id found.
        type_id: u32,
    },
    /// A tensor type the engine cannot compute with.
    #[error("tensor {name:?} is stored as {ty}, which this engine cannot run yet")]
    UnsupportedTensorType {
        /// Tensor name.
        name: String,
        /// Type name.
        ty: String,
    },
    /// An architecture the engine does not implement.
    #[error("the architecture {0:?} is not supported yet (supported: {supported})", supported = crate::arch::supported().join(", "))]
    UnsupportedArchitecture(String),
    /// The tokenizer in the metadata is unusable.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// The chat template could not be parsed or rendered.
    #[error("chat template: {0}")]
    Template(String),
    /// The model needs more memory than allowed.
    #[error("the model needs about {needed_mib} MiB of memory, more than the {limit_mib} MiB available")]
    TooLarge {
        /// Estimated need in MiB.
        needed_mib: u64,
        /// Limit in MiB.
        limit_mib: u64,
    },
    /// A request the engine cannot honour (empty prompt, context exceeded, bad settings).
    #[error("{0}")]
    InvalidInput(String),
    /// A failure inside the tensor library.
    #[error("computation failed: {0}")]
    Compute(String),
}

impl Error {
    pub(crate) fn malformed(msg: impl Into<String>) -> Self {
        Error::Malformed(msg.into())
    }

    pub(crate) fn wrong_type(key: &str, expected: &str, found: &Value) -> Self {
        Error::BadMetadata {
            key: key.into(),
            reason: format!("expected {expected}, found {}", found.type_name()),
        }
    }

    /// Whether the error is about the file (as opposed to a request or a fault).
    pub fn is_bad_file(&self) -> bool {
        !matches!(
            self,
            Error::InvalidInput(_) | Error::Compute(_) | Error::TooLarge { .. } | Error::Template(_)
        )
    }
}
