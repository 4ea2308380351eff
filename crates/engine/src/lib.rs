//! The Open Model Playground engine: quantized GGUF language models in pure Rust.
//!
//! It knows nothing of the web: the browser worker and the `omp` command both drive it through
//! [`Model`] and [`Generator`]. It compiles for `wasm32-unknown-unknown` as well as natively.
//!
//! ```no_run
//! # fn main() -> Result<(), omp_engine::Error> {
//! use omp_engine::{Model, Step, clock::default_clock};
//! use omp_protocol::{ChatMessage, LoadOptions, SamplingParams};
//! let bytes = std::fs::read("model.gguf").unwrap();
//! let mut model = Model::load(bytes, &LoadOptions::default())?;
//! let prompt = model.encode_chat(&[ChatMessage::new("user", "Hi!")])?;
//! let mut gen = model.generate(&prompt, &SamplingParams::greedy(32), default_clock())?;
//! loop {
//!     match gen.step()? {
//!         Step::Token(t) => print!("{}", t.text),
//!         Step::Prefill { .. } => {}
//!         Step::Done { text, .. } => { print!("{text}"); break }
//!     }
//! }
//! # Ok(()) }
//! ```

#![deny(missing_docs)]

pub mod arch;
mod bytes;
pub mod chat;
pub mod clock;
mod error;
pub mod fixtures;
mod generate;
pub mod gguf;
pub mod kernels;
pub mod layers;
mod model;
pub mod pool;
pub mod quant;
pub mod sampling;
pub mod tokenizer;
pub mod weights;

pub use bytes::FileBytes;
pub use error::{Error, Result};
pub use generate::{Generator, Step, TokenStep};
pub use model::{estimate_memory, inspect, Model, PREFILL_CHUNK};
pub use omp_protocol as protocol;

/// Memory a wasm32 module can address, minus room for the page, the file bytes in transit and
/// the allocator's own overhead.
pub const WASM32_MODEL_BUDGET_BYTES: u64 = (4 << 30) - (512 << 20);
