//! The page's end of the engine worker: spawns it, turns its messages into [`WorkerEvent`]s,
//! notices when it dies (a wasm trap poisons the instance) and starts a fresh one.

use std::cell::RefCell;
use std::rc::Rc;

use omp_protocol::{WorkerEvent, WorkerRequest};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{ErrorEvent, MessageEvent, Worker};

/// What the handle reports to the page.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// An event from the worker.
    Event(WorkerEvent),
    /// The worker died (`error` event) and a new one was started.
    Restarted(String),
}

struct Inner {
    worker: Option<Worker>,
    on_message: Option<Closure<dyn FnMut(MessageEvent)>>,
    on_error: Option<Closure<dyn FnMut(ErrorEvent)>>,
}

/// A handle to the worker; cloning shares it.
#[derive(Clone)]
pub struct WorkerHandle {
    url: Rc<str>,
    inner: Rc<RefCell<Inner>>,
    sink: Rc<dyn Fn(Incoming)>,
}

impl PartialEq for WorkerHandle {
    fn eq(&self, other: &Self) -> bool {
        Rc::ptr_eq(&self.inner, &other.inner)
    }
}

impl WorkerHandle {
    /// Starts the worker script at `url`; every message and crash goes to `sink`.
    pub fn spawn(url: &str, sink: impl Fn(Incoming) + 'static) -> Self {
        let h = Self {
            url: url.into(),
            inner: Rc::new(RefCell::new(Inner {
                worker: None,
                on_message: None,
                on_error: None,
            })),
            sink: Rc::new(sink),
        };
        h.start();
        h
    }

    fn start(&self) {
        let worker = match Worker::new(&self.url) {
            Ok(w) => w,
            Err(e) => {
                (self.sink)(Incoming::Restarted(format!("the engine could not start: {e:?}")));
                return;
            }
        };
        let sink = self.sink.clone();
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |ev: MessageEvent| {
            let Some(text) = ev.data().as_string() else { return };
            match serde_json::from_str::<WorkerEvent>(&text) {
                Ok(event) => sink(Incoming::Event(event)),
                Err(e) => web_sys::console::error_1(&format!("omp: unreadable worker event: {e}").into()),
            }
        });
        let me = self.clone();
        let on_error = Closure::<dyn FnMut(ErrorEvent)>::new(move |ev: ErrorEvent| {
            ev.prevent_default();
            let why = ev.message();
            me.restart(&why);
        });
        worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        let mut inner = self.inner.borrow_mut();
        inner.worker = Some(worker);
        inner.on_message = Some(on_message);
        inner.on_error = Some(on_error);
    }

    /// Terminates the worker and starts a new one.
    pub fn restart(&self, why: &str) {
        if let Some(w) = self.inner.borrow_mut().worker.take() {
            w.terminate();
        }
        self.start();
        (self.sink)(Incoming::Restarted(why.to_string()));
    }

    /// Sends a request.
    pub fn send(&self, req: &WorkerRequest) {
        let Ok(text) = serde_json::to_string(req) else {
            return;
        };
        if let Some(w) = &self.inner.borrow().worker {
            if let Err(e) = w.post_message(&JsValue::from_str(&text)) {
                web_sys::console::error_2(&"omp: postMessage failed".into(), &e);
            }
        }
    }
}
