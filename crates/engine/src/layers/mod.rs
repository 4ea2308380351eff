//! The shared building blocks architectures compose: norms, rotary embeddings, linear layers,
//! attention and feed-forward layers. Each is defined once, on top of the kernels' arithmetic,
//! so every architecture gets the same bits natively and in wasm.

pub mod attention;
pub mod ffn;
pub mod linear;
pub mod norm;
pub mod rope;
