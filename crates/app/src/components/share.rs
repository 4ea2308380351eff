//! "Copy link": the current model, prompt and settings as a URL that reproduces them.

use web_sys::HtmlTextAreaElement;
use yew::prelude::*;

use super::use_ctx;
use crate::url::{build, LinkConfig};

/// The share box.
#[function_component(Share)]
pub fn share() -> Html {
    let ctx = use_ctx();
    let link = use_state(String::new);
    let copy = {
        let ctx = ctx.clone();
        let link = link.clone();
        Callback::from(move |_: MouseEvent| {
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
            let cfg = LinkConfig {
                model,
                prompt: typed.or(asked),
                system: Some(s.system.clone()),
                params: s.params.clone(),
                autorun: true,
                convert: Some(s.convert),
            };
            let url = build(&cfg);
            if let Some(w) = web_sys::window() {
                let _ = w.navigator().clipboard().write_text(&url);
            }
            link.set(url);
        })
    };
    html! {
        <div class="panel share">
            <button onclick={copy} data-testid="copy-link">{ "Copy link" }</button>
            <span class="hint">{ " A link that reloads this model, prompt and settings and runs the prompt." }</span>
            if !link.is_empty() {
                <input class="link" type="text" readonly=true value={(*link).clone()} aria-label="Link to this experiment" data-testid="link" />
            }
        </div>
    }
}
