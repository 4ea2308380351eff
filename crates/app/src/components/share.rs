//! "Copy link" (the current model, prompt and settings as a URL that reproduces them) and
//! "Embed" (an `<iframe>` snippet for course pages).

use web_sys::HtmlTextAreaElement;
use yew::prelude::*;

use super::use_ctx;
use crate::url::{build, LinkConfig};
use crate::Ctx;

fn current_link(ctx: &Ctx, autorun: bool) -> LinkConfig {
    let s = &ctx.state;
    let model = s.source.as_ref().and_then(|src| {
        omp_lessons::catalogue::manifest_models()
            .into_iter()
            .find(|m| m.load_url() == src.url)
            .map(|m| m.id)
            .or_else(|| (src.kind != omp_protocol::SourceKind::LocalFile).then(|| src.url.clone()))
    });
    // The prompt: what is in the input box, else the last question asked.
    let typed = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.get_element_by_id("prompt"))
        .and_then(|e| wasm_bindgen::JsCast::dyn_into::<HtmlTextAreaElement>(e).ok())
        .map(|t| t.value())
        .filter(|v| !v.trim().is_empty());
    let asked = s
        .turns
        .iter()
        .rev()
        .find(|t| t.role == "user")
        .map(|t| t.text.clone());
    LinkConfig {
        model,
        prompt: typed.or(asked),
        system: Some(s.system.clone()),
        params: s.params.clone(),
        autorun,
        convert: Some(s.convert),
        kv_cache: s.compact_kv.then_some(omp_protocol::KvCacheType::Q8_0),
        embed: false,
        parent_origin: None,
    }
}

/// The share box.
#[function_component(Share)]
pub fn share() -> Html {
    let ctx = use_ctx();
    let t = ctx.t();
    let link = use_state(String::new);
    let snippet = use_state(String::new);
    let copy = {
        let ctx = ctx.clone();
        let link = link.clone();
        Callback::from(move |_: MouseEvent| {
            let url = build(&current_link(&ctx, true));
            if let Some(w) = web_sys::window() {
                let _ = w.navigator().clipboard().write_text(&url);
            }
            link.set(url);
        })
    };
    let embed = {
        let ctx = ctx.clone();
        let snippet = snippet.clone();
        Callback::from(move |_: MouseEvent| {
            let url = build(&current_link(&ctx, false));
            let sep = if url.contains('?') { '&' } else { '?' };
            let src = format!("{url}{sep}embed=1&parent_origin=https://YOUR-SITE");
            snippet.set(format!(
                "<iframe src=\"{}\" title=\"Open Model Playground\" width=\"480\" height=\"720\" style=\"border:0\" allow=\"clipboard-write\"></iframe>",
                src.replace('&', "&amp;").replace('"', "&quot;")
            ));
        })
    };
    html! {
        <div class="panel share">
            <div class="buttons">
                <button onclick={copy} data-testid="copy-link">{ t.copy_link }</button>
                <button onclick={embed} data-testid="embed">{ t.embed }</button>
            </div>
            <p class="hint">{ t.copy_link_hint }</p>
            if !link.is_empty() {
                <input class="link" type="text" readonly=true value={(*link).clone()} aria-label={t.link_label} data-testid="link" />
            }
            if !snippet.is_empty() {
                <label for="embed-snippet" class="hint">{ t.embed_hint }</label>
                <textarea id="embed-snippet" class="snippet" rows="4" readonly=true value={(*snippet).clone()} data-testid="embed-snippet" />
            }
        </div>
    }
}
