//! The engine's helper threads in the threaded build (`+atomics`, shared wasm memory).
//!
//! wasm has no `std::thread::spawn`: each helper is a Web Worker started by this worker
//! (`worker-thread.js`) that instantiates the same module on the same shared memory and then
//! runs the engine's pool loop for good ([`omp_thread_run`], `omp_engine::pool`). This worker
//! waits (asynchronously) until each has said it is ready: a worker that blocks cannot start
//! nested workers, so the first matmul must not come before they run.
//!
//! Only used when the page is cross-origin isolated (shared memory needs it; the loader picks
//! this build only then). Any failure leaves the engine on one thread.

use std::cell::RefCell;

use js_sys::{Array, Promise};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{MessageEvent, Worker};

use crate::js;

/// The most threads used, whatever the machine reports: the model is small, so more threads
/// mostly add synchronisation.
pub const MAX_THREADS: usize = 4;

/// How long a helper may take to load the module and say it is ready.
const READY_TIMEOUT_MS: i32 = 20_000;

/// The script each helper runs (next to the worker build in `dist/`).
const THREAD_SCRIPT: &str = "./worker-thread.js";

thread_local! {
    /// The helpers, kept so they are not collected (they run until the page closes).
    static WORKERS: RefCell<Vec<Worker>> = const { RefCell::new(Vec::new()) };
}

/// Called by `worker-thread.js` in each helper once the module is instantiated: takes the
/// engine's matmul tiles for the life of the worker.
#[wasm_bindgen]
pub fn omp_thread_run() {
    omp_engine::pool::run_helper()
}

/// Threads to use: the `threads` URL parameter of this worker's script if given (the browser
/// tests and the benchmark pin it), else the machine's cores, at most [`MAX_THREADS`].
fn wanted() -> usize {
    let scope = js::scope();
    let from_url = web_sys::UrlSearchParams::new_with_str(&scope.location().search())
        .ok()
        .and_then(|p| p.get("threads"))
        .and_then(|t| t.parse::<usize>().ok());
    let cores = scope.navigator().hardware_concurrency() as usize;
    from_url.unwrap_or(cores).clamp(1, MAX_THREADS)
}

/// Starts the pool; returns the threads the engine will use (1 if anything failed, with the
/// reason in the console).
pub async fn start() -> usize {
    let n = wanted();
    let isolated = js_sys::Reflect::get(&js::scope(), &"crossOriginIsolated".into())
        .map(|v| v.is_truthy())
        .unwrap_or(false);
    if n < 2 || !isolated {
        return 1;
    }
    // This thread computes too: `n - 1` helpers.
    match start_workers(n - 1).await {
        Ok(()) => n,
        Err(e) => {
            web_sys::console::warn_1(
                &format!("omp worker: running on one thread: {}", js::describe(&e)).into(),
            );
            stop_workers();
            1
        }
    }
}

/// Starts `n` helpers and waits until each has instantiated the module.
async fn start_workers(n: usize) -> Result<(), JsValue> {
    let mut ready = Vec::with_capacity(n);
    for _ in 0..n {
        let worker = Worker::new(THREAD_SCRIPT)?;
        let said = Promise::new(&mut |resolve, reject| {
            worker.set_onmessage(Some(&resolve));
            worker.set_onerror(Some(&reject));
        });
        let init = Array::of2(&wasm_bindgen::module(), &wasm_bindgen::memory());
        worker.post_message(&init)?;
        WORKERS.with(|w| w.borrow_mut().push(worker));
        ready.push(said);
    }
    let all = Promise::all(&ready.iter().collect::<Array>());
    // `js::timeout` resolves with `undefined`; `Promise.all` with the helpers' answers.
    let first = JsFuture::from(Promise::race(&Array::of2(&all, &js::timeout(READY_TIMEOUT_MS)))).await?;
    if first.is_undefined() {
        return Err(JsValue::from_str("the helper threads did not start in time"));
    }
    // Each worker answers "ready", or an error text if instantiating failed.
    for answer in Array::from(&first).iter() {
        let text = answer
            .dyn_ref::<MessageEvent>()
            .and_then(|m| m.data().as_string())
            .unwrap_or_default();
        if text != "ready" {
            return Err(JsValue::from_str(&format!("a helper thread failed: {text}")));
        }
    }
    WORKERS.with(|w| {
        for worker in w.borrow().iter() {
            worker.set_onmessage(None);
            worker.set_onerror(None);
        }
    });
    Ok(())
}

/// Ends the helpers (after a failed start, before any ran the pool loop).
fn stop_workers() {
    WORKERS.with(|w| {
        for worker in w.borrow_mut().drain(..) {
            worker.terminate();
        }
    });
}
