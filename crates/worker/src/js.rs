//! Small bindings to the worker's JavaScript environment.

use std::cell::RefCell;
use std::sync::Arc;

use js_sys::{Promise, Uint8Array};
use omp_engine::clock::Clock;
use omp_protocol::WorkerEvent;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{DedicatedWorkerGlobalScope, MessageChannel};

/// The worker's global scope.
pub fn scope() -> DedicatedWorkerGlobalScope {
    js_sys::global().unchecked_into()
}

/// Sends an event to the page (JSON text: cheap to clone, and readable in the devtools).
pub fn post(event: &WorkerEvent) {
    match serde_json::to_string(event) {
        Ok(text) => {
            if let Err(e) = scope().post_message(&JsValue::from_str(&text)) {
                web_sys::console::error_2(&"omp worker: postMessage failed".into(), &e);
            }
        }
        Err(e) => web_sys::console::error_1(&format!("omp worker: cannot encode event: {e}").into()),
    }
}

/// `performance.now()`.
pub fn now_ms() -> f64 {
    scope().performance().map_or(0.0, |p| p.now())
}

/// The engine's clock in the worker.
#[derive(Debug, Clone, Copy)]
pub struct PerfClock;

impl Clock for PerfClock {
    fn now_ms(&self) -> f64 {
        now_ms()
    }
}

/// A shared [`PerfClock`].
pub fn clock() -> Arc<dyn Clock> {
    Arc::new(PerfClock)
}

thread_local! {
    /// One channel for every [`yield_now`]: its message is a task that runs after any queued
    /// `onmessage`, without the 4 ms clamp nested `setTimeout`s get.
    static CHANNEL: RefCell<Option<MessageChannel>> = const { RefCell::new(None) };
}

/// Lets the event loop run (so that a Cancel sent by the page is received) and resumes as soon
/// as possible.
pub async fn yield_now() {
    let promise = Promise::new(&mut |resolve, _reject| {
        CHANNEL.with(|c| {
            let mut c = c.borrow_mut();
            if c.is_none() {
                *c = MessageChannel::new().ok();
            }
            match c.as_ref() {
                Some(ch) => {
                    ch.port1().set_onmessage(Some(resolve.unchecked_ref()));
                    let _ = ch.port2().post_message(&JsValue::NULL);
                }
                None => {
                    let _ = resolve.call0(&JsValue::NULL);
                }
            }
        });
    });
    let _ = JsFuture::from(promise).await;
}

/// A promise that resolves after `ms` milliseconds (for races against stalled downloads).
pub fn timeout(ms: i32) -> Promise {
    Promise::new(&mut |resolve, _| {
        let _ = scope().set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms);
    })
}

/// Bytes of wasm linear memory.
pub fn wasm_memory_bytes() -> u64 {
    wasm_bindgen::memory()
        .dyn_into::<js_sys::WebAssembly::Memory>()
        .map(|m| m.buffer().unchecked_into::<js_sys::ArrayBuffer>().byte_length() as u64)
        .unwrap_or(0)
}

/// Copies a JS byte array onto the end of `buf`.
pub fn append(buf: &mut Vec<u8>, chunk: &Uint8Array) {
    let n = chunk.length() as usize;
    let start = buf.len();
    buf.resize(start + n, 0);
    chunk.copy_to(&mut buf[start..]);
}

/// A short text for a JS exception or rejection.
pub fn describe(e: &JsValue) -> String {
    if let Some(err) = e.dyn_ref::<js_sys::Error>() {
        let name: String = err.name().into();
        let msg: String = err.message().into();
        return if name.is_empty() {
            msg
        } else {
            format!("{name}: {msg}")
        };
    }
    e.as_string().unwrap_or_else(|| format!("{e:?}"))
}

/// The JS exception's `name` (e.g. `QuotaExceededError`), if any.
pub fn error_name(e: &JsValue) -> Option<String> {
    js_sys::Reflect::get(e, &"name".into())
        .ok()
        .and_then(|n| n.as_string())
}
