//! The page's components.

pub mod architecture;
pub mod cache_panel;
pub mod catalogue;
pub mod chat;
pub mod header;
pub mod lesson;
pub mod load_bar;
pub mod model_picker;
pub mod notices;
pub mod playground;
pub mod settings;
pub mod share;
pub mod stats;

use crate::Ctx;
use yew::prelude::*;

/// The shared context (always provided by `App`).
#[hook]
pub fn use_ctx() -> Ctx {
    use_context::<Ctx>().expect("components are rendered inside App's ContextProvider")
}

/// Bytes as "12.3 MB".
pub fn fmt_bytes(b: u64) -> String {
    let b = b as f64;
    if b >= 1e9 {
        format!("{:.2} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.1} MB", b / 1e6)
    } else if b >= 1e3 {
        format!("{:.0} kB", b / 1e3)
    } else {
        format!("{b:.0} B")
    }
}
