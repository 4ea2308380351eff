//! Live statistics of the last generation and the memory in use.

use yew::prelude::*;

use super::{fmt_bytes, use_ctx};

/// The statistics panel.
#[function_component(Stats)]
pub fn stats() -> Html {
    let ctx = use_ctx();
    let s = &ctx.state;
    let row = |k: &str, v: String| html! { <><dt>{ k.to_string() }</dt><dd>{ v }</dd></> };
    let gen = s.stats.as_ref().map(|st| {
        html! {
            <>
                { row("Time to first token", format!("{:.0} ms", st.time_to_first_token_ms)) }
                { row("Prefill", format!("{:.1} tokens/s ({} prompt tokens)", st.prefill_tokens_per_s, st.prompt_tokens)) }
                { row("Decode", format!("{:.1} tokens/s", st.decode_tokens_per_s)) }
                { row("Tokens generated", st.generated_tokens.to_string()) }
                { row("Stopped because", s.last_reason.map(|r| r.describe().to_string()).unwrap_or_default()) }
                { row("Load-time conversion", st.convert.clone()) }
            </>
        }
    });
    let model = s.model.as_ref().map(|m| {
        html! {
            <>
                { row("Model memory (estimate)", format!("{} (weights {}, key/value cache {} for {} tokens)",
                    fmt_bytes(m.memory.total_bytes), fmt_bytes(m.memory.weights_bytes), fmt_bytes(m.memory.kv_cache_bytes), m.memory.context)) }
            </>
        }
    });
    html! {
        <div class="panel stats" data-testid="stats">
            <h2>{ "Statistics" }</h2>
            <dl>
                { for gen }
                { for model }
                { row("Engine memory (wasm)", fmt_bytes(s.wasm_bytes)) }
                { row("SIMD", if s.simd { "on".to_string() } else { "off".to_string() }) }
            </dl>
        </div>
    }
}
