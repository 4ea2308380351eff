//! Listens for the host page's `omp:run` requests (see [`crate::embed`]).

use std::cell::RefCell;
use std::rc::Rc;

use serde_json::{json, Value};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::MessageEvent;
use yew::prelude::*;

use crate::embed;
use crate::Ctx;

/// Applies a host's partial settings (`{temperature: 0, max_tokens: 32}`) to `base`.
pub fn merge_params(
    base: &omp_protocol::SamplingParams,
    params: &Value,
) -> Result<omp_protocol::SamplingParams, String> {
    let mut v = serde_json::to_value(base).map_err(|e| e.to_string())?;
    if let (Some(obj), Some(over)) = (v.as_object_mut(), params.as_object()) {
        for (k, val) in over {
            if !obj.contains_key(k) {
                return Err(format!("unknown setting {k:?}"));
            }
            obj.insert(k.clone(), val.clone());
        }
    }
    let p: omp_protocol::SamplingParams =
        serde_json::from_value(v).map_err(|e| format!("bad settings: {e}"))?;
    p.validate()?;
    Ok(p)
}

fn handle(ctx: &Ctx, data: Value) {
    if data.get("type").and_then(Value::as_str) != Some("omp:run") {
        return;
    }
    let Some(prompt) = data.get("prompt").and_then(Value::as_str) else {
        embed::post(&json!({"type": "omp:error", "message": "omp:run needs a prompt"}));
        return;
    };
    let params = match merge_params(&ctx.state.params, data.get("params").unwrap_or(&Value::Null)) {
        Ok(p) => p,
        Err(e) => {
            embed::post(&json!({"type": "omp:error", "message": e}));
            return;
        }
    };
    if !ctx.state.can_send() {
        let why = if ctx.state.running.is_some() {
            "a generation is already running"
        } else {
            "the model is not loaded yet; wait for omp:ready"
        };
        embed::post(&json!({"type": "omp:error", "message": why}));
        return;
    }
    // Each run stands alone (same prompt and settings, same answer) unless the host asks to
    // continue the conversation with `keep_history: true`.
    let history = if data.get("keep_history").and_then(Value::as_bool) == Some(true) {
        crate::History::Keep
    } else {
        crate::History::Fresh
    };
    if let Some(id) = ctx.send_with(prompt, params, history) {
        embed::track(id);
    }
}

/// Installs the listener once; it always sees the latest context.
#[hook]
pub fn use_embed_api(ctx: &Ctx) {
    let latest: Rc<RefCell<Option<Ctx>>> = use_mut_ref(|| None);
    *latest.borrow_mut() = Some(ctx.clone());
    let origin = ctx.link.parent_origin.clone();
    use_effect_with(origin, move |origin| {
        embed::configure(origin.clone());
        // A model that loaded before the API was configured is announced now.
        if let Some(info) = latest.borrow().as_ref().and_then(|c| c.state.model.clone()) {
            embed::post(&embed::ready(&info));
        }
        let listener = origin.clone().map(|allowed| {
            let latest = latest.clone();
            let cb = Closure::<dyn FnMut(MessageEvent)>::new(move |ev: MessageEvent| {
                // Only the configured host may drive the playground.
                if ev.origin() != allowed {
                    return;
                }
                let Ok(text) = js_sys::JSON::stringify(&ev.data()) else {
                    return;
                };
                let Ok(data) = serde_json::from_str::<Value>(&String::from(text)) else {
                    return;
                };
                if let Some(ctx) = latest.borrow().as_ref() {
                    handle(ctx, data);
                }
            });
            if let Some(w) = web_sys::window() {
                let _ = w.add_event_listener_with_callback("message", cb.as_ref().unchecked_ref());
            }
            cb
        });
        move || {
            if let (Some(cb), Some(w)) = (listener, web_sys::window()) {
                let _ = w.remove_event_listener_with_callback("message", cb.as_ref().unchecked_ref());
            }
        }
    });
}
