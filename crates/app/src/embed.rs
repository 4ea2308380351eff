//! The `postMessage` API for pages that embed the playground (`?embed=1&parent_origin=...`).
//!
//! The host sends `{type: "omp:run", prompt, params}`; the page answers with `omp:ready` (the
//! model is loaded), `omp:token` (each piece of text), `omp:done` (the whole answer and its
//! statistics) and `omp:error`. Messages are accepted only from `parent_origin`, and answers
//! go only to it; without `parent_origin` the API is off.

use std::cell::RefCell;
use std::collections::HashMap;

use omp_protocol::{ModelInfo, RequestId, WorkerEvent};
use serde_json::{json, Value};

use crate::worker::Incoming;

#[derive(Default)]
struct Registry {
    origin: Option<String>,
    /// Generations the host started: text and token ids so far.
    running: HashMap<RequestId, (String, Vec<u32>)>,
}

thread_local! {
    static REGISTRY: RefCell<Registry> = RefCell::new(Registry::default());
}

/// Sets the host's origin (the API is off while it is `None`).
pub fn configure(origin: Option<String>) {
    REGISTRY.with(|r| r.borrow_mut().origin = origin);
}

/// The host's origin, if the API is on.
pub fn origin() -> Option<String> {
    REGISTRY.with(|r| r.borrow().origin.clone())
}

/// Remembers a generation the host started, so its events are forwarded.
pub fn track(id: RequestId) {
    REGISTRY.with(|r| {
        r.borrow_mut().running.insert(id, (String::new(), Vec::new()));
    });
}

/// Posts a message to the host page.
pub fn post(msg: &Value) {
    let Some(origin) = origin() else { return };
    let Some(parent) = web_sys::window().and_then(|w| w.parent().ok().flatten()) else {
        return;
    };
    if let Ok(obj) = js_sys::JSON::parse(&msg.to_string()) {
        let _ = parent.post_message(&obj, &origin);
    }
}

/// The `omp:ready` message for a loaded model.
pub fn ready(info: &ModelInfo) -> Value {
    json!({"type": "omp:ready", "model": info.name, "architecture": info.architecture})
}

/// Forwards worker events that concern the host's generations (and readiness).
pub fn forward(incoming: &Incoming) {
    if origin().is_none() {
        return;
    }
    let msg = REGISTRY.with(|r| {
        let mut r = r.borrow_mut();
        match incoming {
            Incoming::Event(WorkerEvent::Loaded { info, .. }) | Incoming::Event(WorkerEvent::Kept { info }) => {
                Some(ready(info))
            }
            Incoming::Event(WorkerEvent::Token { id, token_id, text, .. }) => {
                let acc = r.running.get_mut(id)?;
                acc.0.push_str(text);
                acc.1.push(*token_id);
                Some(json!({"type": "omp:token", "id": id, "text": text, "token_id": token_id}))
            }
            Incoming::Event(WorkerEvent::Finished { id, reason, text, stats }) => {
                let (mut all, ids) = r.running.remove(id)?;
                all.push_str(text);
                Some(json!({"type": "omp:done", "id": id, "text": all, "ids": ids, "reason": reason, "stats": stats}))
            }
            Incoming::Event(WorkerEvent::Failed { id: Some(id), error }) => {
                r.running.remove(id)?;
                Some(json!({"type": "omp:error", "id": id, "message": error.message}))
            }
            _ => None,
        }
    });
    if let Some(m) = msg {
        post(&m);
    }
}
