//! Models kept in the browser cache, with their sizes, a delete button, and the origin's storage
//! usage and quota.

use omp_protocol::WorkerRequest;
use yew::prelude::*;

use super::{fmt_bytes, use_ctx};

/// The cache panel.
#[function_component(CachePanel)]
pub fn cache_panel() -> Html {
    let ctx = use_ctx();
    let s = &ctx.state;
    let refresh = {
        let ctx = ctx.clone();
        Callback::from(move |_: MouseEvent| ctx.refresh_cache())
    };
    let rows = s.cache.iter().map(|m| {
        let delete = {
            let ctx = ctx.clone();
            let url = m.url.clone();
            Callback::from(move |_: MouseEvent| ctx.worker.send(&WorkerRequest::DeleteCached { url: url.clone() }))
        };
        let name = m.url.rsplit('/').next().unwrap_or(&m.url).to_string();
        html! {
            <li>
                <span class="name" title={m.url.clone()}>{ name.clone() }</span>
                <span class="size">{ fmt_bytes(m.bytes) }</span>
                <button onclick={delete} aria-label={format!("Delete {name} from the cache")}>{ "Delete" }</button>
            </li>
        }
    });
    let usage = match s.storage {
        (Some(u), Some(q)) => format!(
            "This site uses {} of {} the browser allows it.",
            fmt_bytes(u),
            fmt_bytes(q)
        ),
        _ => "The browser does not report storage usage.".to_string(),
    };
    html! {
        <div class="cache" data-testid="cache">
            if s.cache.is_empty() {
                <p>{ "No model is cached yet. Downloaded models are kept here so the next visit loads without downloading." }</p>
            } else {
                <ul>{ for rows }</ul>
            }
            <p class="hint">{ usage }</p>
            <button onclick={refresh}>{ "Refresh" }</button>
        </div>
    }
}
