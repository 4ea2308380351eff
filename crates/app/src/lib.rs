//! The Open Model Playground page: a Yew UI over the engine's Web Worker. It never links the
//! engine; everything it knows about models arrives as [`omp_protocol`] events.

#![deny(missing_docs)]

pub mod components;
pub mod embed;
pub mod hooks;
pub mod i18n;
pub mod state;
pub mod url;
pub mod worker;

use omp_lessons::catalogue;
use omp_lessons::lesson::Lang;
use omp_protocol::{
    ConvertMode, KvCacheType, LoadOptions, ModelSource, SamplingParams, SourceKind, WorkerRequest,
};
use yew::prelude::*;

use crate::components::header::Header;
use crate::components::lesson::LessonView;
use crate::components::playground::Playground;
use crate::hooks::use_embed_api::use_embed_api;
use crate::hooks::use_worker::use_worker;
use crate::i18n::Texts;
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
    /// Interface and lesson language.
    pub lang: Lang,
    /// Changes the language.
    pub set_lang: Callback<Lang>,
    /// Whether the page is embedded (`?embed=1`): playground only.
    pub embed: bool,
}

impl Ctx {
    /// The interface's words in the current language.
    pub fn t(&self) -> &'static Texts {
        i18n::texts(self.lang)
    }
    /// Asks the worker to load `source` with the current conversion and cache settings.
    pub fn load(&self, source: ModelSource) {
        let options = LoadOptions {
            convert: if self.state.convert {
                ConvertMode::Q8_0
            } else {
                ConvertMode::None
            },
            kv_cache: if self.state.compact_kv {
                KvCacheType::Q8_0
            } else {
                KvCacheType::F16
            },
            ..LoadOptions::default()
        };
        self.state.dispatch(Action::StartLoad(source.clone()));
        self.worker.send(&WorkerRequest::Load { source, options });
    }

    /// Sends a prompt (the conversation so far plus `text`) with the current settings;
    /// returns its request id, or `None` when nothing can be sent now.
    pub fn send(&self, text: &str) -> Option<omp_protocol::RequestId> {
        self.send_with(text, self.state.params.clone(), History::Keep)
    }

    /// Sends a prompt with the given settings (which also become the page's settings), after
    /// the conversation so far or, with [`History::Fresh`], as the first message of a new one.
    pub fn send_with(
        &self,
        text: &str,
        params: SamplingParams,
        history: History,
    ) -> Option<omp_protocol::RequestId> {
        let s = &self.state;
        if !s.can_send() || text.trim().is_empty() {
            return None;
        }
        let id = s.next_id;
        let messages = match history {
            History::Keep => s.messages_for(text),
            History::Fresh => s.fresh_messages_for(text),
        };
        self.worker.send(&WorkerRequest::Generate {
            id,
            messages,
            params: params.clone(),
        });
        if history == History::Fresh {
            s.dispatch(Action::Clear);
        }
        s.dispatch(Action::SetParams(params));
        s.dispatch(Action::Send {
            id,
            text: text.to_string(),
        });
        Some(id)
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

/// Whether a prompt continues the conversation or starts a new one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum History {
    /// After the turns so far (the chat box).
    Keep,
    /// Alone after the system prompt, the chat cleared first: an experiment that must give
    /// the same answer every time it runs (Try-it blocks, the embed API).
    Fresh,
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
        sha256: e.sha256.clone(),
        // Only an exact size is a promise the download is checked against.
        bytes: e.bytes_exact.then_some(e.bytes),
        kind: SourceKind::Catalogue,
    }
}

/// The language to start in: `?lang=`, else the browser's, else English.
fn initial_lang() -> Lang {
    let from_url = web_sys::window()
        .and_then(|w| w.location().search().ok())
        .and_then(|s| web_sys::UrlSearchParams::new_with_str(&s).ok())
        .and_then(|q| q.get("lang"))
        .and_then(|l| Lang::parse(&l));
    from_url
        .or_else(|| {
            web_sys::window()
                .and_then(|w| w.navigator().language())
                .and_then(|l| Lang::parse(&l))
        })
        .unwrap_or(Lang::En)
}

/// Keeps `lang=` in the address bar without reloading.
fn remember_lang(lang: Lang) {
    let Some(w) = web_sys::window() else { return };
    let loc = w.location();
    let Ok(search) = loc.search() else { return };
    let Ok(q) = web_sys::UrlSearchParams::new_with_str(&search) else {
        return;
    };
    q.set("lang", lang.code());
    let url = format!(
        "{}?{}{}",
        loc.pathname().unwrap_or_default(),
        String::from(q.to_string()),
        loc.hash().unwrap_or_default()
    );
    if let Ok(h) = w.history() {
        let _ = h.replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(&url));
    }
    if let Some(doc) = w.document().and_then(|d| d.document_element()) {
        let _ = doc.set_attribute("lang", lang.code());
    }
}

/// The page.
#[function_component(App)]
pub fn app() -> Html {
    let link = use_memo((), |_| url::read());
    let lang = use_state(initial_lang);
    let state = {
        let link = link.clone();
        use_reducer(move || {
            let mut s = AppState::new(
                link.params.clone(),
                link.system.clone().unwrap_or_default(),
                // Off by default: the weights then stay in place, at about half the memory.
                link.convert.unwrap_or(false),
            );
            // Off by default: an f16 cache reproduces llama.cpp's greedy answers.
            s.compact_kv = link.kv_cache == Some(KvCacheType::Q8_0);
            s
        })
    };
    let worker = use_worker(&state);
    let set_lang = {
        let lang = lang.clone();
        Callback::from(move |l: Lang| {
            remember_lang(l);
            lang.set(l);
        })
    };
    {
        let l = *lang;
        use_effect_with(l, move |l| remember_lang(*l));
    }
    let ctx = Ctx {
        state: state.clone(),
        worker,
        link: link.clone(),
        lang: *lang,
        set_lang,
        embed: link.embed,
    };
    use_embed_api(&ctx);

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

    let embed = ctx.embed;
    html! {
        <ContextProvider<Ctx> context={ctx}>
            <div class={classes!("page", embed.then_some("embedded"))}>
                if embed {
                    <main><Playground /></main>
                } else {
                    <Header />
                    <main class="layout">
                        <LessonView />
                        <Playground />
                    </main>
                }
            </div>
        </ContextProvider<Ctx>>
    }
}

/// Mounts the page.
pub fn run() {
    console_error_panic_hook::set_once();
    yew::Renderer::<App>::new().render();
}
