//! Models kept in the browser cache, with their sizes, a delete button, and the origin's storage
//! usage and quota.

use omp_protocol::WorkerRequest;
use yew::prelude::*;

use super::{fmt_bytes, use_ctx};

/// The cache panel.
#[function_component(CachePanel)]
pub fn cache_panel() -> Html {
    let ctx = use_ctx();
    let t = ctx.t();
    let s = &ctx.state;
    let refresh = {
        let ctx = ctx.clone();
        Callback::from(move |_: MouseEvent| ctx.refresh_cache())
    };
    let rows = s.cache.iter().map(|m| {
        let delete = {
            let ctx = ctx.clone();
            let url = m.url.clone();
            Callback::from(move |_: MouseEvent| {
                ctx.worker.send(&WorkerRequest::DeleteCached { url: url.clone() })
            })
        };
        let name = m.url.rsplit('/').next().unwrap_or(&m.url).to_string();
        html! {
            <li>
                <span class="name" title={m.url.clone()}>{ name.clone() }</span>
                <span class="size">{ fmt_bytes(m.bytes) }</span>
                <button onclick={delete} aria-label={format!("{} {name}", t.delete)}>{ t.delete }</button>
            </li>
        }
    });
    let usage = match s.storage {
        (Some(u), Some(q)) => t
            .cache_usage
            .replace("{used}", &fmt_bytes(u))
            .replace("{quota}", &fmt_bytes(q)),
        _ => t.cache_unknown.to_string(),
    };
    html! {
        <div class="cache" data-testid="cache">
            if s.cache.is_empty() {
                <p>{ t.cache_empty }</p>
            } else {
                <ul>{ for rows }</ul>
            }
            <p class="hint">{ usage }</p>
            <button onclick={refresh}>{ t.refresh }</button>
        </div>
    }
}
