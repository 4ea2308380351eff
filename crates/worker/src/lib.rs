//! The Web Worker that owns the engine.
//!
//! The page sends [`WorkerRequest`]s as JSON text and receives [`WorkerEvent`]s the same way.
//! Requests land in an [`Inbox`]; one async loop takes them in order. Long work is cut into
//! steps (download chunks, prefill chunks, single tokens) with a yield to the event loop after
//! each, so a Cancel (or a newer Load) is seen within one step.

#![deny(missing_docs)]

mod fetch;
mod js;
#[cfg(target_feature = "atomics")]
mod threads;

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Poll, Waker};

use omp_engine::{Model, Step};
use omp_protocol::{
    ErrorKind, LoadOptions, LoadPhase, ModelSource, RequestId, WorkerError, WorkerEvent, WorkerRequest,
};
use wasm_bindgen::prelude::*;

use crate::js::post;

/// Requests received and not yet handled.
#[derive(Clone, Default)]
pub struct Inbox {
    queue: Rc<RefCell<VecDeque<WorkerRequest>>>,
    waker: Rc<RefCell<Option<Waker>>>,
}

impl Inbox {
    fn push(&self, r: WorkerRequest) {
        self.queue.borrow_mut().push_back(r);
        if let Some(w) = self.waker.borrow_mut().take() {
            w.wake();
        }
    }

    async fn next(&self) -> WorkerRequest {
        poll_fn(|cx| match self.queue.borrow_mut().pop_front() {
            Some(r) => Poll::Ready(r),
            None => {
                *self.waker.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            }
        })
        .await
    }

    /// Whether a queued request makes a running load pointless (another load, or unload).
    fn supersedes_load(&self) -> bool {
        self.queue
            .borrow()
            .iter()
            .any(|r| matches!(r, WorkerRequest::Load { .. } | WorkerRequest::Unload))
    }

    /// Whether generation `id` should stop: a Cancel for it (removed from the queue), or a
    /// newer request that needs the model.
    fn stops_generation(&self, id: RequestId) -> bool {
        let mut q = self.queue.borrow_mut();
        let before = q.len();
        q.retain(|r| !matches!(r, WorkerRequest::Cancel { id: c } if *c == id));
        before != q.len()
            || q.iter().any(|r| {
                matches!(
                    r,
                    WorkerRequest::Generate { .. } | WorkerRequest::Load { .. } | WorkerRequest::Unload
                )
            })
    }
}

/// Registers the message handler and starts the request loop. Called by the worker binary.
pub fn start() {
    console_error_panic_hook::set_once();
    let inbox = Inbox::default();
    let receiver = inbox.clone();
    let onmessage = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |ev: web_sys::MessageEvent| {
        let text = ev.data().as_string().unwrap_or_default();
        match serde_json::from_str::<WorkerRequest>(&text) {
            Ok(req) => receiver.push(req),
            Err(e) => post(&WorkerEvent::Failed {
                id: None,
                error: WorkerError::new(ErrorKind::BadRequest, format!("unreadable request: {e}")),
            }),
        }
    });
    js::scope().set_onmessage(Some(onmessage.as_ref().unchecked_ref()));
    // The handler lives as long as the worker.
    onmessage.forget();
    // Requests that arrive while the pool starts wait in the inbox.
    wasm_bindgen_futures::spawn_local(async move {
        #[cfg(target_feature = "atomics")]
        let threads = threads::start().await;
        #[cfg(not(target_feature = "atomics"))]
        let threads = 1;
        post(&WorkerEvent::Ready {
            simd: cfg!(target_feature = "simd128"),
            relaxed_simd: cfg!(target_feature = "relaxed-simd"),
            threads: u32::try_from(threads).unwrap_or(1),
        });
        run(inbox).await;
    });
}

async fn run(inbox: Inbox) {
    let mut model: Option<Model> = None;
    loop {
        match inbox.next().await {
            WorkerRequest::Load { source, options } => {
                model = load(model.take(), &source, &options, &inbox).await;
            }
            WorkerRequest::Generate { id, messages, params } => match model.as_mut() {
                Some(m) => generate(m, id, &messages, &params, &inbox).await,
                None => post(&WorkerEvent::Failed {
                    id: Some(id),
                    error: WorkerError::new(ErrorKind::BadRequest, "No model is loaded yet."),
                }),
            },
            WorkerRequest::Cancel { .. } => {}
            WorkerRequest::Unload => model = None,
            WorkerRequest::ResetCache => {
                if let Some(m) = model.as_mut() {
                    m.reset();
                }
            }
            WorkerRequest::ListCache => post(&fetch::list_cache().await),
            WorkerRequest::DeleteCached { url } => {
                fetch::delete_cached(&url).await;
                post(&fetch::list_cache().await);
            }
        }
        post(&WorkerEvent::Memory {
            wasm_bytes: js::wasm_memory_bytes(),
        });
    }
}

/// Loads a new model. The old one stays loaded until the new file has passed the checks that
/// need no weights (header, architecture, tokenizer), so a bad file leaves the page with a
/// working model; it is freed before the new weights are built, since two may not fit.
async fn load(
    old: Option<Model>,
    source: &ModelSource,
    options: &LoadOptions,
    inbox: &Inbox,
) -> Option<Model> {
    let t0 = js::now_ms();
    let keep = |old: Option<Model>| {
        if let Some(m) = &old {
            post(&WorkerEvent::Kept {
                info: Box::new(m.info().clone()),
            });
        }
        old
    };
    let fetched = match fetch::get(source, options, inbox).await {
        Ok(f) => f,
        Err(fetch::Stop::Superseded) => return old,
        Err(fetch::Stop::Failed(error)) => {
            post(&WorkerEvent::Failed { id: None, error });
            return keep(old);
        }
    };
    if let Err(e) = Model::check(&fetched.bytes, options) {
        post(&WorkerEvent::Failed {
            id: None,
            error: fetch::engine_error(&e),
        });
        return keep(old);
    }
    // Only a file that validates as a model goes into the cache.
    if !fetched.from_cache && source.kind != omp_protocol::SourceKind::LocalFile {
        fetch::store(source, &fetched.bytes).await;
    }
    drop(old);
    post(&WorkerEvent::LoadProgress {
        phase: LoadPhase::Building,
        done: 0,
        total: None,
    });
    // Let the page paint the new phase before the (synchronous) build.
    js::yield_now().await;
    let mut last = 0.0;
    let from_cache = fetched.from_cache;
    // The model keeps the file's bytes as its weights (no copy), so they move into it.
    let result = Model::load_with_progress(fetched.bytes, options, &mut |done, total| {
        let now = js::now_ms();
        if now - last > 50.0 || done == total {
            last = now;
            post(&WorkerEvent::LoadProgress {
                phase: LoadPhase::Building,
                done: done as u64,
                total: Some(total as u64),
            });
        }
    });
    match result {
        Ok(model) => {
            post(&WorkerEvent::Loaded {
                info: Box::new(model.info().clone()),
                from_cache,
                load_ms: js::now_ms() - t0,
            });
            Some(model)
        }
        Err(e) => {
            post(&WorkerEvent::Failed {
                id: None,
                error: fetch::engine_error(&e),
            });
            None
        }
    }
}

async fn generate(
    model: &mut Model,
    id: RequestId,
    messages: &[omp_protocol::ChatMessage],
    params: &omp_protocol::SamplingParams,
    inbox: &Inbox,
) {
    let fail = |e: &omp_engine::Error| {
        post(&WorkerEvent::Failed {
            id: Some(id),
            error: fetch::engine_error(e),
        })
    };
    // A base model continues the conversation's text instead of answering turns.
    let text = match model.render_prompt(messages) {
        Ok(t) => t,
        Err(e) => return fail(&e),
    };
    let prompt = match model.encode_prompt(messages) {
        Ok(p) => p,
        Err(e) => return fail(&e),
    };
    post(&WorkerEvent::Prompt {
        id,
        text,
        tokens: prompt.len() as u32,
    });
    let mut gen = match model.generate(&prompt, params, js::clock()) {
        Ok(g) => g,
        Err(e) => return fail(&e),
    };
    loop {
        js::yield_now().await;
        let step = if inbox.stops_generation(id) {
            gen.cancel()
        } else {
            match gen.step() {
                Ok(s) => s,
                Err(e) => return fail(&e),
            }
        };
        match step {
            Step::Prefill { .. } => {}
            Step::Token(t) => post(&WorkerEvent::Token {
                id,
                token_id: t.id,
                text: t.text,
                alternatives: t.alternatives,
            }),
            Step::Done { reason, text, stats } => {
                post(&WorkerEvent::Finished {
                    id,
                    reason,
                    text,
                    stats,
                });
                return;
            }
        }
    }
}
