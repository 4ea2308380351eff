//! The Open Model Playground page: a Yew UI over the engine's Web Worker. It never links the
//! engine; everything it knows about models arrives as [`omp_protocol`] events.

#![deny(missing_docs)]

pub mod components;
pub mod hooks;
pub mod state;
pub mod url;
pub mod worker;

use omp_lessons::catalogue;
use omp_protocol::{ConvertMode, LoadOptions, ModelSource, SourceKind, WorkerRequest};
use yew::prelude::*;

use crate::components::playground::Playground;
use crate::hooks::use_worker::use_worker;
use crate::state::{Action, AppState, LoadState};
use crate::worker::WorkerHandle;

/// What every component can reach: the state and the worker.
#[derive(Clone, PartialEq)]
pub struct Ctx {
    /// The page state.
    pub state: UseReducerHandle<AppState>,
    /// The engine worker.
    pub worker: WorkerHandle,
    /// Parameters the page was opened with.
    pub link: std::rc::Rc<url::LinkConfig>,
}

impl Ctx {
    /// Asks the worker to load `source` with the current conversion setting.
    pub fn load(&self, source: ModelSource) {
        let options = LoadOptions {
            convert: if self.state.convert {
                ConvertMode::Q8_0
            } else {
                ConvertMode::None
            },
            ..LoadOptions::default()
        };
        self.state.dispatch(Action::StartLoad(source.clone()));
        self.worker.send(&WorkerRequest::Load { source, options });
    }

    /// Sends a prompt (the conversation so far plus `text`).
    pub fn send(&self, text: &str) {
        let s = &self.state;
        if !s.can_send() || text.trim().is_empty() {
            return;
        }
        let id = s.next_id;
        self.worker.send(&WorkerRequest::Generate {
            id,
            messages: s.messages_for(text),
            params: s.params.clone(),
        });
        s.dispatch(Action::Send {
            id,
            text: text.to_string(),
        });
    }

    /// Stops the running generation.
    pub fn stop(&self) {
        if let Some(id) = self.state.running {
            self.worker.send(&WorkerRequest::Cancel { id });
            self.state.dispatch(Action::Stop);
        }
    }

    /// Asks for the cache listing.
    pub fn refresh_cache(&self) {
        self.worker.send(&WorkerRequest::ListCache);
    }
}

/// The source for a `?model=` value: a catalogue id, or a URL of a GGUF file.
pub fn source_for(model: &str) -> Option<ModelSource> {
    if let Some(e) = catalogue::find(model) {
        return Some(catalogue_source(&e));
    }
    let lower = model.to_ascii_lowercase();
    (lower.starts_with("https://") || lower.starts_with("http://") || model.starts_with('/')).then(|| {
        ModelSource {
            url: model.to_string(),
            label: model.rsplit('/').next().unwrap_or(model).to_string(),
            sha256: None,
            bytes: None,
            kind: SourceKind::Url,
        }
    })
}

/// The source of a catalogue entry.
pub fn catalogue_source(e: &catalogue::ModelEntry) -> ModelSource {
    ModelSource {
        url: e.load_url(),
        label: e.name.clone(),
        sha256: Some(e.sha256.clone()),
        bytes: Some(e.bytes),
        kind: SourceKind::Catalogue,
    }
}

/// The page.
#[function_component(App)]
pub fn app() -> Html {
    let link = use_memo((), |_| url::read());
    let state = {
        let link = link.clone();
        use_reducer(move || {
            AppState::new(
                link.params.clone(),
                link.system.clone().unwrap_or_default(),
                link.convert.unwrap_or(true),
            )
        })
    };
    let worker = use_worker(&state);
    let ctx = Ctx {
        state: state.clone(),
        worker,
        link: link.clone(),
    };

    // Load a model as soon as the worker is up: the one the link names, else the bundled one;
    // after a crash and restart, the one that was loaded.
    {
        let ctx = ctx.clone();
        use_effect_with(
            (state.worker_ready, state.load == LoadState::Idle),
            move |&(ready, idle)| {
                if ready && idle {
                    let s = &ctx.state;
                    let source = s.source.clone().or_else(|| match &ctx.link.model {
                        Some(m) => source_for(m),
                        None => catalogue::default_model().map(|e| catalogue_source(&e)),
                    });
                    match source {
                        Some(src) => ctx.load(src),
                        None => {
                            if let Some(m) = &ctx.link.model {
                                s.dispatch(Action::Problem(
                                omp_protocol::ErrorKind::BadRequest,
                                format!("The link names the model {m:?}, which is neither a catalogue entry nor a URL."),
                            ));
                            }
                        }
                    }
                    ctx.refresh_cache();
                }
            },
        );
    }

    // `autorun=1`: run the link's prompt once, when the model is ready.
    {
        let ctx = ctx.clone();
        use_effect_with(state.model.is_some() && state.worker_ready, move |&ready| {
            let s = &ctx.state;
            if ready && ctx.link.autorun && s.generations == 0 {
                if let Some(p) = &ctx.link.prompt {
                    ctx.send(p);
                }
            }
        });
    }

    // Refresh the cache panel after each load.
    {
        let ctx = ctx.clone();
        use_effect_with(state.model.clone(), move |m| {
            if m.is_some() {
                ctx.refresh_cache();
            }
        });
    }

    html! {
        <ContextProvider<Ctx> context={ctx}>
            <div class="page">
                <header class="top">
                    <h1>{ "Open Model Playground" }</h1>
                    <p class="tagline">{ "Small open language models, running in this tab. Nothing is installed; no prompt leaves your machine." }</p>
                </header>
                <main>
                    <Playground />
                </main>
            </div>
        </ContextProvider<Ctx>>
    }
}

/// Mounts the page.
pub fn run() {
    console_error_panic_hook::set_once();
    yew::Renderer::<App>::new().render();
}
