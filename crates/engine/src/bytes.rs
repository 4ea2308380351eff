//! A model file held once in memory and shared by the weight matrices that point into it.
//!
//! Why: a browser tab's memory is the scarcest resource the playground has. Copying every
//! tensor out of the downloaded file doubled the weights for the duration of a load, and wasm
//! memory never shrinks, so the copy stayed as the tab's peak. Matrices whose type has a kernel
//! now borrow their blocks from the file instead (the kernels read unaligned bytes, so no
//! alignment is needed); only converted matrices own their bytes.

use std::ops::Range;
use std::sync::Arc;

/// The bytes of a GGUF file, cheaply clonable.
#[derive(Debug, Clone, Default)]
pub struct FileBytes(Arc<Vec<u8>>);

impl FileBytes {
    /// The whole file.
    pub fn as_slice(&self) -> &[u8] {
        &self.0
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the file is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Takes the vector without copying.
impl From<Vec<u8>> for FileBytes {
    fn from(v: Vec<u8>) -> Self {
        Self(Arc::new(v))
    }
}

/// Copies the slice (for callers that do not own their bytes; tests, mostly).
impl From<&[u8]> for FileBytes {
    fn from(v: &[u8]) -> Self {
        Self(Arc::new(v.to_vec()))
    }
}

/// Copies the vector (pass the `Vec` itself to avoid the copy).
impl From<&Vec<u8>> for FileBytes {
    fn from(v: &Vec<u8>) -> Self {
        Self::from(v.as_slice())
    }
}

/// Bytes either owned or borrowed from a shared file.
#[derive(Debug, Clone)]
pub(crate) enum Blocks {
    /// Made at load time (a converted matrix, or a test's).
    Owned(Vec<u8>),
    /// A range of the model file.
    Shared(FileBytes, Range<usize>),
}

impl Blocks {
    /// The bytes.
    #[inline]
    pub(crate) fn as_slice(&self) -> &[u8] {
        match self {
            Self::Owned(v) => v,
            Self::Shared(f, r) => &f.as_slice()[r.clone()],
        }
    }

    /// Whether these bytes are the file's own (not a copy).
    pub(crate) fn is_shared(&self) -> bool {
        matches!(self, Self::Shared(..))
    }
}
