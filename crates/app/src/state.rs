//! The page's state and every change to it, as a reducer.

use std::rc::Rc;

use omp_protocol::{
    CachedModel, ChatMessage, ErrorKind, GenStats, LoadPhase, ModelInfo, ModelSource, RequestId,
    SamplingParams, StopReason, WorkerError, WorkerEvent,
};
use yew::prelude::*;

use crate::worker::Incoming;

/// One turn of the conversation as shown.
#[derive(Debug, Clone, PartialEq)]
pub struct Turn {
    /// `user` or `assistant`.
    pub role: String,
    /// Text so far.
    pub text: String,
    /// Generated token ids (assistant turns).
    pub token_ids: Vec<u32>,
    /// Whether the turn is complete.
    pub done: bool,
}

/// Loading progress.
#[derive(Debug, Clone, PartialEq)]
pub enum LoadState {
    /// Nothing asked for yet.
    Idle,
    /// Work under way.
    Loading {
        /// What is being loaded.
        label: String,
        /// Current phase.
        phase: LoadPhase,
        /// Units done and in all.
        done: u64,
        /// Units in all, when known.
        total: Option<u64>,
        /// When the current phase began (ms), for the rate.
        phase_started: f64,
        /// Units done when the phase began.
        phase_done0: u64,
        /// Latest time an event arrived.
        now: f64,
    },
    /// A model is loaded.
    Ready,
    /// The last load failed.
    Failed,
}

/// A message in the error panel.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    /// Number for dismissing it.
    pub id: u32,
    /// What kind of problem.
    pub kind: ErrorKind,
    /// Plain words.
    pub message: String,
}

/// Everything the page shows.
#[derive(Debug, Clone, PartialEq)]
pub struct AppState {
    /// The worker is up.
    pub worker_ready: bool,
    /// The wasm has SIMD.
    pub simd: bool,
    /// Whether the worker is the relaxed-SIMD build.
    pub relaxed_simd: bool,
    /// Threads the engine uses (more than 1 only in the threaded build, when the page is
    /// cross-origin isolated).
    pub threads: u32,
    /// The last requested source.
    pub source: Option<ModelSource>,
    /// The source of the loaded model.
    pub loaded_source: Option<ModelSource>,
    /// Load progress.
    pub load: LoadState,
    /// The loaded model.
    pub model: Option<Rc<ModelInfo>>,
    /// Whether the model came from the browser cache.
    pub from_cache: bool,
    /// How long the load took.
    pub load_ms: f64,
    /// Load-time conversion of slow weight types.
    pub convert: bool,
    /// Q8_0 key/value cache instead of f16 (applies to the next load).
    pub compact_kv: bool,
    /// The conversation.
    pub turns: Vec<Turn>,
    /// System prompt (empty: the template's default).
    pub system: String,
    /// Sampling settings.
    pub params: SamplingParams,
    /// The running generation.
    pub running: Option<RequestId>,
    /// Stop was pressed for the running generation.
    pub stopping: bool,
    /// Next request id.
    pub next_id: RequestId,
    /// Statistics of the last generation.
    pub stats: Option<GenStats>,
    /// Why the last generation ended.
    pub last_reason: Option<StopReason>,
    /// Prompt tokens of the last generation (after the chat template).
    pub prompt_tokens: Option<u32>,
    /// The rendered prompt of the last generation.
    pub prompt_text: Option<String>,
    /// Problems to show.
    pub notices: Vec<Notice>,
    next_notice: u32,
    /// Browser cache contents.
    pub cache: Vec<CachedModel>,
    /// Storage used and allowed, when the browser says.
    pub storage: (Option<u64>, Option<u64>),
    /// Wasm memory of the worker.
    pub wasm_bytes: u64,
    /// Generations started (for autorun: only once).
    pub generations: u32,
    /// Whether the model catalogue is open.
    pub catalogue_open: bool,
}

impl AppState {
    /// The initial state.
    pub fn new(params: SamplingParams, system: String, convert: bool) -> Self {
        Self {
            worker_ready: false,
            simd: false,
            relaxed_simd: false,
            threads: 1,
            source: None,
            loaded_source: None,
            load: LoadState::Idle,
            model: None,
            from_cache: false,
            load_ms: 0.0,
            convert,
            compact_kv: false,
            turns: Vec::new(),
            system,
            params,
            running: None,
            stopping: false,
            next_id: 1,
            stats: None,
            last_reason: None,
            prompt_tokens: None,
            prompt_text: None,
            notices: Vec::new(),
            next_notice: 1,
            cache: Vec::new(),
            storage: (None, None),
            wasm_bytes: 0,
            generations: 0,
            catalogue_open: false,
        }
    }

    /// The conversation to send: system prompt, then completed turns and the new user turn.
    pub fn messages_for(&self, user: &str) -> Vec<ChatMessage> {
        let mut m = Vec::new();
        if !self.system.trim().is_empty() {
            m.push(ChatMessage::new("system", self.system.trim()));
        }
        for t in &self.turns {
            if !t.text.is_empty() || t.role == "user" {
                m.push(ChatMessage::new(&t.role, &t.text));
            }
        }
        m.push(ChatMessage::new("user", user));
        m
    }

    /// The messages for `user` as the first turn of a new conversation.
    pub fn fresh_messages_for(&self, user: &str) -> Vec<ChatMessage> {
        let mut m = Vec::new();
        if !self.system.trim().is_empty() {
            m.push(ChatMessage::new("system", self.system.trim()));
        }
        m.push(ChatMessage::new("user", user));
        m
    }

    /// Whether a prompt can be sent now.
    pub fn can_send(&self) -> bool {
        self.model.is_some() && self.running.is_none() && self.worker_ready
    }

    /// One word for tests and screen readers: `ready`, `generating`, `loading`, ...
    pub fn status_word(&self) -> &'static str {
        if self.running.is_some() {
            "generating"
        } else if matches!(self.load, LoadState::Loading { .. }) {
            "loading"
        } else if !self.worker_ready {
            "starting"
        } else if self.model.is_some() {
            "ready"
        } else if matches!(self.load, LoadState::Failed) {
            "no model"
        } else {
            "idle"
        }
    }

    fn notice(&mut self, kind: ErrorKind, message: String) {
        // The same message twice in a row is shown once.
        if self.notices.last().is_some_and(|n| n.message == message) {
            return;
        }
        self.notices.push(Notice {
            id: self.next_notice,
            kind,
            message,
        });
        self.next_notice += 1;
    }
}

/// Every change to the state.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Something came from the worker.
    Worker(Incoming),
    /// A load was requested.
    StartLoad(ModelSource),
    /// A prompt was sent with this id.
    Send {
        /// Request id.
        id: RequestId,
        /// The user's text.
        text: String,
    },
    /// Stop was pressed.
    Stop,
    /// Clear the conversation.
    Clear,
    /// New sampling settings.
    SetParams(SamplingParams),
    /// New system prompt.
    SetSystem(String),
    /// Conversion on or off (applies to the next load).
    SetConvert(bool),
    /// Q8_0 key/value cache on or off (applies to the next load).
    SetCompactKv(bool),
    /// Hide a notice.
    Dismiss(u32),
    /// Show a problem found on the page itself.
    Problem(ErrorKind, String),
    /// Open or close the model catalogue.
    OpenCatalogue(bool),
}

impl Reducible for AppState {
    type Action = Action;

    fn reduce(self: Rc<Self>, action: Action) -> Rc<Self> {
        let mut s = (*self).clone();
        match action {
            Action::Worker(Incoming::Event(ev)) => s.apply(ev),
            Action::Worker(Incoming::Restarted(why)) => {
                s.worker_ready = false;
                s.model = None;
                s.running = None;
                s.stopping = false;
                if let Some(t) = s.turns.last_mut() {
                    t.done = true;
                }
                s.load = LoadState::Idle;
                s.notice(
                    ErrorKind::Internal,
                    format!("The engine stopped unexpectedly ({why}) and was restarted. The model is being loaded again."),
                );
            }
            Action::StartLoad(src) => {
                s.load = LoadState::Loading {
                    label: src.label.clone(),
                    phase: LoadPhase::Checking,
                    done: 0,
                    total: src.bytes,
                    phase_started: now(),
                    phase_done0: 0,
                    now: now(),
                };
                s.model = None;
                s.source = Some(src);
            }
            Action::Send { id, text } => {
                s.turns.push(Turn {
                    role: "user".into(),
                    text,
                    token_ids: Vec::new(),
                    done: true,
                });
                s.turns.push(Turn {
                    role: "assistant".into(),
                    text: String::new(),
                    token_ids: Vec::new(),
                    done: false,
                });
                s.running = Some(id);
                s.stopping = false;
                s.next_id = id + 1;
                s.generations += 1;
            }
            Action::Stop => s.stopping = true,
            Action::Clear => {
                s.turns.clear();
                s.stats = None;
                s.last_reason = None;
                s.prompt_tokens = None;
                s.prompt_text = None;
            }
            Action::SetParams(p) => s.params = p,
            Action::SetSystem(t) => s.system = t,
            Action::SetConvert(c) => s.convert = c,
            Action::SetCompactKv(c) => s.compact_kv = c,
            Action::Dismiss(id) => s.notices.retain(|n| n.id != id),
            Action::Problem(kind, msg) => s.notice(kind, msg),
            Action::OpenCatalogue(open) => s.catalogue_open = open,
        }
        Rc::new(s)
    }
}

impl AppState {
    fn apply(&mut self, ev: WorkerEvent) {
        match ev {
            WorkerEvent::Ready {
                simd,
                relaxed_simd,
                threads,
            } => {
                self.worker_ready = true;
                self.simd = simd;
                self.relaxed_simd = relaxed_simd;
                self.threads = threads;
            }
            WorkerEvent::LoadProgress { phase, done, total } => {
                let t = now();
                if let LoadState::Loading {
                    phase: p,
                    done: d,
                    total: tot,
                    phase_started,
                    phase_done0,
                    now: n,
                    ..
                } = &mut self.load
                {
                    if *p != phase {
                        *p = phase;
                        *phase_started = t;
                        *phase_done0 = done;
                    }
                    *d = done;
                    *tot = total;
                    *n = t;
                }
            }
            WorkerEvent::Loaded {
                info,
                from_cache,
                load_ms,
            } => {
                self.model = Some(Rc::new(*info));
                self.from_cache = from_cache;
                self.load_ms = load_ms;
                self.load = LoadState::Ready;
                self.loaded_source = self.source.clone();
            }
            WorkerEvent::Kept { info } => {
                self.model = Some(Rc::new(*info));
                self.load = LoadState::Ready;
                self.source = self.loaded_source.clone();
            }
            WorkerEvent::Prompt { id, text, tokens } if Some(id) == self.running => {
                self.prompt_tokens = Some(tokens);
                self.prompt_text = Some(text);
            }
            WorkerEvent::Prompt { .. } => {}
            WorkerEvent::Token {
                id, token_id, text, ..
            } => {
                if Some(id) == self.running {
                    if let Some(t) = self.turns.last_mut() {
                        t.text.push_str(&text);
                        t.token_ids.push(token_id);
                    }
                }
            }
            WorkerEvent::Finished {
                id,
                reason,
                text,
                stats,
            } => {
                if Some(id) == self.running {
                    if let Some(t) = self.turns.last_mut() {
                        t.text.push_str(&text);
                        t.done = true;
                    }
                    self.running = None;
                    self.stopping = false;
                    self.stats = Some(stats);
                    self.last_reason = Some(reason);
                }
            }
            WorkerEvent::Failed { id, error } => self.failed(id, error),
            WorkerEvent::CacheList { models, usage, quota } => {
                self.cache = models;
                self.storage = (usage, quota);
            }
            WorkerEvent::Memory { wasm_bytes } => self.wasm_bytes = wasm_bytes,
        }
    }

    fn failed(&mut self, id: Option<RequestId>, error: WorkerError) {
        match id {
            Some(id) => {
                if Some(id) == self.running {
                    self.running = None;
                    self.stopping = false;
                    // Drop the empty answer and keep the question, so it can be edited and resent.
                    if self
                        .turns
                        .last()
                        .is_some_and(|t| t.role == "assistant" && t.text.is_empty())
                    {
                        self.turns.pop();
                    } else if let Some(t) = self.turns.last_mut() {
                        t.done = true;
                    }
                }
            }
            None => {
                if error.kind != ErrorKind::Storage && matches!(self.load, LoadState::Loading { .. }) {
                    self.load = LoadState::Failed;
                }
            }
        }
        self.notice(error.kind, error.message);
    }
}

/// `performance.now()` on the page.
pub fn now() -> f64 {
    web_sys::window()
        .and_then(|w| w.performance())
        .map_or(0.0, |p| p.now())
}
