//! Messages and plain data shared by the Open Model Playground UI, its Web Worker and the engine.
//!
//! Everything here is serde data with named fields: the UI never links the engine, so every value
//! that crosses the worker boundary (or is shown by the CLI as JSON) is defined here once.

#![deny(missing_docs)]

mod messages;
mod params;
mod stats;

pub use messages::*;
pub use params::*;
pub use stats::*;
