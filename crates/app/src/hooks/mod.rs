//! Hooks, one per file.

pub mod use_embed_api;
pub mod use_worker;
