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
                    "Enter the full address of a .gguf file, starting with https://".into(),
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
    let on_convert = {
        let ctx = ctx.clone();
        Callback::from(move |e: Event| {
            let Some(input) = e.target().and_then(|t| t.dyn_into::<HtmlInputElement>().ok()) else {
                return;
            };
            ctx.state.dispatch(Action::SetConvert(input.checked()));
        })
    };

    let current_id = ctx.state.source.as_ref().and_then(|s| {
        models
            .iter()
            .find(|m| m.load_url() == s.url)
            .map(|m| m.id.clone())
    });
    let summary = ctx.state.model.as_ref().map(|m| {
        html! {
            <p class="model-summary" data-testid="model-summary">
                <strong>{ &m.name }</strong>
                { format!(" · {} · {:.0}M parameters · {} · {}", m.architecture, m.parameters as f64 / 1e6, m.quantization, fmt_bytes(m.file_bytes)) }
                { if m.convert != "none" { format!(" · {} matrices converted to {}", m.converted_tensors, m.convert.to_uppercase()) } else { String::new() } }
                { format!(" · loaded in {:.1} s{}", ctx.state.load_ms / 1000.0, if ctx.state.from_cache { " from the browser cache" } else { "" }) }
            </p>
        }
    });

    html! {
        <div class={classes!("panel", "model-picker", dragging.then_some("dragging"))}
             ondragover={on_drag_over} ondragleave={on_drag_leave} ondrop={on_drop}>
            <div class="row">
                <label for="model-select">{ "Model" }</label>
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
                <label for="model-url">{ "GGUF URL" }</label>
                <input id="model-url" ref={url_ref} type="url" placeholder="https://huggingface.co/…/resolve/…/model.gguf" disabled={busy} />
                <button type="submit" disabled={busy}>{ "Load" }</button>
            </form>
            <div class="row">
                <label for="model-file">{ "Local file" }</label>
                <input id="model-file" type="file" accept=".gguf" onchange={on_file} disabled={busy} data-testid="file-input" />
                <span class="hint">{ "or drop a .gguf file here; it is read in your browser, never uploaded" }</span>
            </div>
            <div class="row">
                <input id="convert" type="checkbox" checked={ctx.state.convert} onchange={on_convert} disabled={busy} />
                <label for="convert">{ "Convert Q4_1/Q5 weights to Q8_0 when loading (faster, more memory; applies to the next load)" }</label>
            </div>
            { for summary }
        </div>
    }
}
