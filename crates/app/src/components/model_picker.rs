//! Choosing a model: the catalogue, any GGUF by URL, or a local file (read in the browser,
//! never uploaded).

use omp_lessons::catalogue;
use omp_protocol::{ModelSource, SourceKind};
use wasm_bindgen::JsCast;
use web_sys::{DragEvent, File, HtmlInputElement, HtmlSelectElement};
use yew::prelude::*;

use super::{fmt_bytes, use_ctx};
use crate::state::{Action, LoadState};
use crate::{catalogue_source, source_for};

fn local_source(file: &File) -> Option<ModelSource> {
    let url = web_sys::Url::create_object_url_with_blob(file).ok()?;
    Some(ModelSource {
        url,
        label: file.name(),
        sha256: None,
        bytes: Some(file.size() as u64),
        kind: SourceKind::LocalFile,
    })
}

/// The model chooser and a summary of the loaded model.
#[function_component(ModelPicker)]
pub fn model_picker() -> Html {
    let ctx = use_ctx();
    let t = ctx.t();
    let url_ref = use_node_ref();
    let dragging = use_state(|| false);
    let models = catalogue::manifest_models();
    let busy = matches!(ctx.state.load, LoadState::Loading { .. }) || ctx.state.running.is_some();

    let on_select = {
        let ctx = ctx.clone();
        Callback::from(move |e: Event| {
            let Some(sel) = e.target().and_then(|t| t.dyn_into::<HtmlSelectElement>().ok()) else {
                return;
            };
            if let Some(entry) = catalogue::find(&sel.value()) {
                ctx.load(catalogue_source(&entry));
            }
        })
    };
    let load_url = {
        let ctx = ctx.clone();
        let url_ref = url_ref.clone();
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let Some(input) = url_ref.cast::<HtmlInputElement>() else {
                return;
            };
            let v = input.value().trim().to_string();
            match source_for(&v) {
                Some(src) => ctx.load(src),
                None => ctx.state.dispatch(Action::Problem(
                    omp_protocol::ErrorKind::BadRequest,
                    ctx.t().url_hint.into(),
                )),
            }
        })
    };
    let on_file = {
        let ctx = ctx.clone();
        Callback::from(move |e: Event| {
            let Some(input) = e.target().and_then(|t| t.dyn_into::<HtmlInputElement>().ok()) else {
                return;
            };
            if let Some(src) = input
                .files()
                .and_then(|f| f.get(0))
                .and_then(|f| local_source(&f))
            {
                ctx.load(src);
            }
            input.set_value("");
        })
    };
    let on_drop = {
        let ctx = ctx.clone();
        let dragging = dragging.clone();
        Callback::from(move |e: DragEvent| {
            e.prevent_default();
            dragging.set(false);
            let file = e.data_transfer().and_then(|d| d.files()).and_then(|f| f.get(0));
            if let Some(src) = file.as_ref().and_then(local_source) {
                ctx.load(src);
            }
        })
    };
    let on_drag_over = {
        let dragging = dragging.clone();
        Callback::from(move |e: DragEvent| {
            e.prevent_default();
            dragging.set(true);
        })
    };
    let on_drag_leave = {
        let dragging = dragging.clone();
        Callback::from(move |_| dragging.set(false))
    };
    // A checkbox that dispatches `action` with its new state.
    let on_check = |action: fn(bool) -> Action| {
        let ctx = ctx.clone();
        Callback::from(move |e: Event| {
            let Some(input) = e.target().and_then(|t| t.dyn_into::<HtmlInputElement>().ok()) else {
                return;
            };
            ctx.state.dispatch(action(input.checked()));
        })
    };
    let on_convert = on_check(Action::SetConvert);
    let on_compact_kv = on_check(Action::SetCompactKv);

    let current_id = ctx.state.source.as_ref().and_then(|s| {
        models
            .iter()
            .find(|m| m.load_url() == s.url)
            .map(|m| m.id.clone())
    });
    let summary = ctx.state.model.as_ref().map(|m| {
        html! {
            <>
            <p class="model-summary" data-testid="model-summary">
                <strong>{ &m.name }</strong>
                { format!(" · {} · {:.0}M {} · {} · {}", m.architecture, m.parameters as f64 / 1e6, t.parameters, m.quantization, fmt_bytes(m.file_bytes)) }
                { if m.convert != "none" { format!(" · {} {} {}", m.converted_tensors, t.converted_to, m.convert.to_uppercase()) } else { String::new() } }
                { format!(" · {} {:.1} s", t.loaded_in, ctx.state.load_ms / 1000.0) }
                if ctx.state.from_cache { <span data-testid="from-cache">{ format!(" · {}", t.from_cache) }</span> }
            </p>
            if !m.has_chat_template {
                <p class="hint base-model" data-testid="base-model">{ t.base_model }</p>
            }
            <super::architecture::Architecture info={m.clone()} />
            </>
        }
    });

    html! {
        <div class={classes!("panel", "model-picker", dragging.then_some("dragging"))}
             ondragover={on_drag_over} ondragleave={on_drag_leave} ondrop={on_drop}>
            <div class="row">
                <label for="model-select">{ t.model }</label>
                <select id="model-select" onchange={on_select} disabled={busy} data-testid="model-select">
                    { for models.iter().map(|m| html! {
                        <option value={m.id.clone()} selected={current_id.as_deref() == Some(m.id.as_str())}>
                            { format!("{} · {} · {}", m.name, m.quantization, fmt_bytes(m.bytes)) }
                        </option>
                    }) }
                    if current_id.is_none() && ctx.state.source.is_some() {
                        <option selected=true disabled=true>{ ctx.state.source.as_ref().map(|s| s.label.clone()).unwrap_or_default() }</option>
                    }
                </select>
            </div>
            <form class="row" onsubmit={load_url}>
                <label for="model-url">{ t.gguf_url }</label>
                <input id="model-url" ref={url_ref} type="url" placeholder="https://huggingface.co/…/resolve/…/model.gguf" disabled={busy} />
                <button type="submit" disabled={busy}>{ t.load }</button>
            </form>
            <div class="row">
                <label for="model-file">{ t.local_file }</label>
                <input id="model-file" type="file" accept=".gguf" onchange={on_file} disabled={busy} data-testid="file-input" />
                <span class="hint">{ t.drop_hint }</span>
            </div>
            <label class="check">
                <input id="convert" type="checkbox" checked={ctx.state.convert} onchange={on_convert} disabled={busy} />
                <span>{ t.convert }</span>
            </label>
            <label class="check">
                <input id="compact-kv" type="checkbox" checked={ctx.state.compact_kv} onchange={on_compact_kv} disabled={busy} data-testid="compact-kv" />
                <span>{ t.compact_kv }</span>
            </label>
            { for summary }
        </div>
    }
}
