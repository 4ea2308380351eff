//! Live statistics of the last generation and the memory in use.

use yew::prelude::*;

use super::{fmt_bytes, use_ctx};

/// The statistics panel.
#[function_component(Stats)]
pub fn stats() -> Html {
    let ctx = use_ctx();
    let t = ctx.t();
    let s = &ctx.state;
    let row = |k: &str, v: String| html! { <><dt>{ k.to_string() }</dt><dd>{ v }</dd></> };
    let gen = s.stats.as_ref().map(|st| {
        html! {
            <>
                { row(t.ttft, format!("{:.0} ms", st.time_to_first_token_ms)) }
                { row(t.prefill, format!("{:.1} {} ({} {})", st.prefill_tokens_per_s, t.tokens_per_s, st.prompt_tokens, t.prompt_tokens)) }
                <dt>{ t.decode }</dt><dd data-testid="decode">{ format!("{:.1} {}", st.decode_tokens_per_s, t.tokens_per_s) }</dd>
                { row(t.generated, st.generated_tokens.to_string()) }
                <dt>{ t.stopped_because }</dt>
                <dd data-testid="reason" data-reason={s.last_reason.map(|r| format!("{r:?}").to_lowercase())}>
                    { s.last_reason.map(|r| t.reason(r).to_string()).unwrap_or_default() }
                </dd>
                { row(t.conversion, st.convert.clone()) }
            </>
        }
    });
    let model = s.model.as_ref().map(|m| {
        row(
            t.model_memory,
            format!(
                "{} ({} {}, {} {}, {} {} {}, {})",
                fmt_bytes(m.file_bytes + m.memory.total_bytes),
                t.file,
                fmt_bytes(m.file_bytes),
                t.weights,
                fmt_bytes(m.memory.copied_weights_bytes),
                t.kv_cache,
                m.kv_cache.to_uppercase(),
                fmt_bytes(m.memory.kv_cache_bytes),
                t.for_tokens.replace("{n}", &m.memory.context.to_string())
            ),
        )
    });
    html! {
        <div class="panel stats" data-testid="stats">
            <h2>{ t.statistics }</h2>
            <dl>
                { for gen }
                { for model }
                <dt>{ t.engine_memory }</dt>
                <dd data-testid="wasm-memory" data-bytes={s.wasm_bytes.to_string()}>{ fmt_bytes(s.wasm_bytes) }</dd>
                { row("SIMD", match (s.simd, s.relaxed_simd) {
                    (true, true) => format!("{} (relaxed)", t.on),
                    (true, false) => t.on.to_string(),
                    _ => t.off.to_string(),
                }) }
                <dt>{ t.threads }</dt><dd data-testid="threads">{ s.threads }</dd>
            </dl>
        </div>
    }
}
