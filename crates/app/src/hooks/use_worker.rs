//! Starts the engine worker once and feeds its messages into the page's reducer.

use yew::prelude::*;

use crate::state::{Action, AppState};
use crate::worker::WorkerHandle;

/// The worker's loader script (next to the page; it imports one of the worker builds).
pub const WORKER_URL: &str = "./worker-loader.js";

/// The page's worker, started on first render.
#[hook]
pub fn use_worker(state: &UseReducerHandle<AppState>) -> WorkerHandle {
    let dispatcher = state.dispatcher();
    let handle = use_memo((), move |_| {
        WorkerHandle::spawn(WORKER_URL, move |incoming| {
            // An embedding page hears about readiness and its own generations.
            crate::embed::forward(&incoming);
            dispatcher.dispatch(Action::Worker(incoming))
        })
    });
    (*handle).clone()
}
