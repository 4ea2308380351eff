//! Getting model bytes: from the browser cache when a verified copy is there, else a streamed
//! download with progress, size and checksum checks, then into the cache. A download that is
//! cut short, fails its checksum or stalls is never stored.

use js_sys::{Array, Uint8Array};
use omp_engine::gguf::Gguf;
use omp_engine::{inspect, Error as EngineError, WASM32_MODEL_BUDGET_BYTES};
use omp_protocol::{
    CachedModel, ErrorKind, LoadOptions, LoadPhase, ModelSource, SourceKind, WorkerError, WorkerEvent,
};
use sha2::{Digest, Sha256};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{Cache, ReadableStreamDefaultReader, Request, RequestInit, Response, ResponseInit};

use crate::js::{self, post};
use crate::Inbox;

/// Name of the Cache API store (bump the suffix to drop every cached model).
const CACHE_NAME: &str = "omp-models-v1";
/// Headers stored with each cached response.
const H_SHA: &str = "x-omp-sha256";
const H_BYTES: &str = "x-omp-bytes";
/// A read that delivers nothing for this long ends the download.
const STALL_MS: i32 = 30_000;
/// Progress events at most this often.
const PROGRESS_MS: f64 = 100.0;
/// First request for the header; grown on demand up to [`MAX_HEADER`].
const HEADER_PROBE: u64 = 1 << 20;
const MAX_HEADER: u64 = 64 << 20;
/// How many times a broken download continues with a Range request before giving up.
const MAX_RESUMES: u32 = 5;

/// Why getting the bytes stopped.
pub enum Stop {
    /// A failure to show.
    Failed(WorkerError),
    /// A newer request (another Load, or Unload) replaces this one.
    Superseded,
}

impl From<WorkerError> for Stop {
    fn from(e: WorkerError) -> Self {
        Stop::Failed(e)
    }
}

fn net(msg: impl Into<String>) -> Stop {
    Stop::Failed(WorkerError::new(ErrorKind::Network, msg))
}

fn js_err(what: &str, e: &JsValue) -> Stop {
    net(format!("{what}: {}", js::describe(e)))
}

/// Bytes of a model and where they came from. Downloaded bytes are not cached yet: the caller
/// validates them first and then calls [`store`], so a file that is not a usable model is never
/// kept.
pub struct Fetched {
    pub bytes: Vec<u8>,
    pub from_cache: bool,
}

/// Gets the model's bytes.
pub async fn get(source: &ModelSource, options: &LoadOptions, inbox: &Inbox) -> Result<Fetched, Stop> {
    let cacheable = source.kind != SourceKind::LocalFile;
    if cacheable {
        if let Some(bytes) = from_cache(source, inbox).await? {
            return Ok(Fetched {
                bytes,
                from_cache: true,
            });
        }
        check_before_download(source, options, inbox).await?;
    }
    let bytes = download(source, inbox).await?;
    Ok(Fetched {
        bytes,
        from_cache: false,
    })
}

async fn open_cache() -> Option<Cache> {
    let caches = js::scope().caches().ok()?;
    JsFuture::from(caches.open(CACHE_NAME))
        .await
        .ok()?
        .dyn_into::<Cache>()
        .ok()
}

fn header(resp: &Response, name: &str) -> Option<String> {
    resp.headers().get(name).ok().flatten()
}

/// A verified cached copy: same expected checksum and the stored size read back in full.
async fn from_cache(source: &ModelSource, inbox: &Inbox) -> Result<Option<Vec<u8>>, Stop> {
    let Some(cache) = open_cache().await else {
        return Ok(None);
    };
    let Ok(found) = JsFuture::from(cache.match_with_str(&source.url)).await else {
        return Ok(None);
    };
    let Ok(resp) = found.dyn_into::<Response>() else {
        return Ok(None);
    };
    let stored_sha = header(&resp, H_SHA);
    let stored_len: Option<u64> = header(&resp, H_BYTES).and_then(|v| v.parse().ok());
    let stale = matches!((&source.sha256, &stored_sha), (Some(want), Some(have)) if want != have)
        || matches!((source.bytes, stored_len), (Some(want), Some(have)) if want != have)
        || stored_len.is_none();
    if stale {
        let _ = JsFuture::from(cache.delete_with_str(&source.url)).await;
        return Ok(None);
    }
    let total = stored_len.unwrap_or(0);
    // Reserve the whole file first. Growing by doubling instead held a 64 MiB and a 128 MiB
    // buffer at once for the bundled 94 MiB model, and wasm memory never shrinks: a load from
    // the cache peaked at about 205 MB of wasm memory against 113 MB for a download.
    let mut bytes = buffer_for(Some(total))?;
    let read = read_body(&resp, &mut bytes, Some(total), LoadPhase::ReadingCache, inbox).await?;
    if read != Read::Complete || bytes.len() as u64 != total {
        // Never trust a short entry: drop it and download again.
        let _ = JsFuture::from(cache.delete_with_str(&source.url)).await;
        return Ok(None);
    }
    Ok(Some(bytes))
}

/// Refuses a model that cannot fit in a browser tab before downloading it: the size from the
/// manifest or a HEAD request, then the GGUF header read with Range requests gives the memory
/// estimate (and the architecture, so an unsupported model is refused early too).
async fn check_before_download(
    source: &ModelSource,
    options: &LoadOptions,
    inbox: &Inbox,
) -> Result<(), Stop> {
    post(&WorkerEvent::LoadProgress {
        phase: LoadPhase::Checking,
        done: 0,
        total: None,
    });
    let size = match source.bytes {
        Some(b) => Some(b),
        None => head_size(&source.url).await,
    };
    if let Some(size) = size {
        if size > WASM32_MODEL_BUDGET_BYTES {
            return Err(too_large(size, None));
        }
    }
    let Some(size) = size else { return Ok(()) };
    let mut want = HEADER_PROBE.min(size);
    loop {
        let Some(prefix) = range_prefix(&source.url, want, inbox).await? else {
            // The server ignores Range: the full download will be checked after all.
            return Ok(());
        };
        match Gguf::parse_prefix(&prefix, size) {
            Ok(g) => {
                let info = inspect(&g, options).map_err(|e| engine_error(&e))?;
                if info.memory.total_bytes + size > WASM32_MODEL_BUDGET_BYTES {
                    return Err(too_large(size, Some(info.memory.total_bytes)));
                }
                return Ok(());
            }
            Err(EngineError::NeedMoreBytes { at_least }) if at_least <= MAX_HEADER && at_least > want => {
                want = (at_least * 2).min(size).min(MAX_HEADER);
            }
            Err(e) => return Err(Stop::Failed(engine_error(&e))),
        }
    }
}

fn too_large(size: u64, estimate: Option<u64>) -> Stop {
    let mib = |b: u64| b >> 20;
    let msg = match estimate {
        Some(est) => format!(
            "This model needs about {} MiB of memory to run ({} MiB file + {} MiB while running), more than a browser tab can address ({} MiB). It was not downloaded.",
            mib(size + est),
            mib(size),
            mib(est),
            mib(WASM32_MODEL_BUDGET_BYTES)
        ),
        None => format!(
            "This model file is {} MiB, more than a browser tab can address ({} MiB). It was not downloaded.",
            mib(size),
            mib(WASM32_MODEL_BUDGET_BYTES)
        ),
    };
    Stop::Failed(WorkerError::new(ErrorKind::TooLarge, msg))
}

async fn head_size(url: &str) -> Option<u64> {
    let init = RequestInit::new();
    init.set_method("HEAD");
    let req = Request::new_with_str_and_init(url, &init).ok()?;
    let resp: Response = JsFuture::from(js::scope().fetch_with_request(&req))
        .await
        .ok()?
        .dyn_into()
        .ok()?;
    if !resp.ok() {
        return None;
    }
    header(&resp, "content-length")?.parse().ok()
}

/// The first `n` bytes by a Range request; `None` when the server answers with the whole file
/// (its stream is cancelled after the first bytes).
async fn range_prefix(url: &str, n: u64, inbox: &Inbox) -> Result<Option<Vec<u8>>, Stop> {
    let resp = get_response(url, Some(&format!("bytes=0-{}", n - 1))).await?;
    match resp.status() {
        206 => {
            let mut prefix = Vec::new();
            match read_body(&resp, &mut prefix, Some(n), LoadPhase::Checking, inbox).await? {
                Read::Complete => Ok(Some(prefix)),
                Read::Broken(why) => Err(net(format!("Reading the model's header failed: {why}"))),
            }
        }
        200 => {
            if let Some(body) = resp.body() {
                let _ = JsFuture::from(body.cancel()).await;
            }
            Ok(None)
        }
        status => Err(http_error(status, url)),
    }
}

fn offline_or(e: &JsValue, url: &str) -> Stop {
    let online = js::scope().navigator().on_line();
    if online {
        net(format!(
            "The request for {url} failed ({}). The host may be unreachable, may not allow downloads from other sites (CORS), or may not be one of the model hosts this site's security policy allows.",
            js::describe(e)
        ))
    } else {
        net("The browser is offline, so the model cannot be downloaded. Models already in the cache still load.")
    }
}

fn http_error(status: u16, url: &str) -> Stop {
    let what = match status {
        404 => "was not found (404)".to_string(),
        401 | 403 => format!("is not accessible ({status}); the host may require a login"),
        429 => "is rate-limited by its host (429); try again later".to_string(),
        500..=599 => format!("failed on the server ({status})"),
        other => format!("answered with HTTP status {other}"),
    };
    net(format!("The model at {url} {what}."))
}

/// Downloads the whole file with progress; checks its length and checksum. A transfer cut
/// off midway continues with an HTTP Range request from the first missing byte when the
/// server accepts ranges (up to [`MAX_RESUMES`] times); otherwise it fails and nothing is kept.
async fn download(source: &ModelSource, inbox: &Inbox) -> Result<Vec<u8>, Stop> {
    let mut resp = get_response(&source.url, None).await?;
    if !resp.ok() {
        return Err(http_error(resp.status(), &source.url));
    }
    let declared: Option<u64> = header(&resp, "content-length").and_then(|v| v.parse().ok());
    if let Some(ct) = header(&resp, "content-type") {
        if ct.starts_with("text/html") {
            return Err(Stop::Failed(WorkerError::new(
                ErrorKind::BadModel,
                format!(
                    "{} returned a web page, not a model file. Check that the link points at the .gguf file itself (on Hugging Face: a 'resolve/...' link).",
                    source.url
                ),
            )));
        }
    }
    let resumable = header(&resp, "accept-ranges").is_some_and(|v| v.trim() == "bytes");
    let expected = source.bytes.or(declared);
    let phase = if source.kind == SourceKind::LocalFile {
        LoadPhase::ReadingCache
    } else {
        LoadPhase::Downloading
    };
    let mut bytes = buffer_for(expected)?;
    let mut resumes = 0;
    loop {
        let read = read_body(&resp, &mut bytes, expected, phase, inbox).await?;
        let got = bytes.len() as u64;
        let short = expected.is_some_and(|want| got < want);
        let why = match read {
            Read::Complete if !short => break,
            Read::Complete => "the connection closed early".to_string(),
            Read::Broken(why) => why,
        };
        let Some(want) = expected.filter(|_| resumable && resumes < MAX_RESUMES && got > 0) else {
            return Err(match expected {
                Some(want) => net(format!(
                    "The download ended early ({why}): {got} of {want} bytes arrived. Nothing was kept; try again."
                )),
                None => net(format!("The download failed ({why}). Nothing was kept; try again.")),
            });
        };
        resumes += 1;
        resp = get_response(&source.url, Some(&format!("bytes={got}-"))).await?;
        // Only a partial answer that starts exactly where we stopped can be appended.
        let range_ok = resp.status() == 206
            && header(&resp, "content-range")
                .is_some_and(|v| v.trim().starts_with(&format!("bytes {got}-{}/", want - 1)));
        if !range_ok {
            if let Some(body) = resp.body() {
                let _ = JsFuture::from(body.cancel()).await;
            }
            return Err(net(format!(
                "The download broke off after {got} of {want} bytes ({why}) and the server would not resume it (HTTP {}). Nothing was kept; try again.",
                resp.status()
            )));
        }
    }
    let got = bytes.len() as u64;
    if let Some(want) = &source.sha256 {
        post(&WorkerEvent::LoadProgress {
            phase: LoadPhase::Verifying,
            done: 0,
            total: Some(got),
        });
        let have = sha256_hex(&bytes);
        if &have != want {
            return Err(Stop::Failed(WorkerError::new(
                ErrorKind::BadModel,
                format!("The downloaded file's SHA-256 is {have}, not the expected {want}. It was not kept."),
            )));
        }
    }
    Ok(bytes)
}

/// A GET for `url`, with a `Range` header (e.g. `bytes=0-1023`, `bytes=5000-`) when given.
async fn get_response(url: &str, range: Option<&str>) -> Result<Response, Stop> {
    let init = RequestInit::new();
    if let Some(range) = range {
        let headers = web_sys::Headers::new().map_err(|e| js_err("headers", &e))?;
        headers.set("Range", range).map_err(|e| js_err("headers", &e))?;
        init.set_headers(&headers);
    }
    let req = Request::new_with_str_and_init(url, &init).map_err(|e| js_err("request", &e))?;
    JsFuture::from(js::scope().fetch_with_request(&req))
        .await
        .map_err(|e| offline_or(&e, url))?
        .dyn_into()
        .map_err(|e| js_err("fetch", &e))
}

fn sha256_hex(bytes: &[u8]) -> String {
    let mut h = Sha256::new();
    for chunk in bytes.chunks(1 << 20) {
        h.update(chunk);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads a response body, appending to `buf` (which may hold the start of the file already)
/// and reporting progress; gives up when a read stalls or a newer request supersedes this one.
/// A connection that breaks midway is [`Read::Broken`], so the caller can resume.
/// An empty buffer with room for a file of `size` bytes when the size is known, so reading it
/// never grows the buffer by doubling (wasm memory keeps the peak); a clear error when the
/// memory is not there.
fn buffer_for(size: Option<u64>) -> Result<Vec<u8>, Stop> {
    let mut bytes = Vec::new();
    if let Some(n) = size {
        if bytes.try_reserve_exact(n as usize).is_err() {
            return Err(Stop::Failed(WorkerError::new(
                ErrorKind::TooLarge,
                format!("There is not enough memory for a {} MiB file.", n >> 20),
            )));
        }
    }
    Ok(bytes)
}

async fn read_body(
    resp: &Response,
    buf: &mut Vec<u8>,
    total: Option<u64>,
    phase: LoadPhase,
    inbox: &Inbox,
) -> Result<Read, Stop> {
    let body = resp.body().ok_or_else(|| net("the response has no body"))?;
    let reader: ReadableStreamDefaultReader = body.get_reader().unchecked_into();
    let mut last_report = 0.0;
    loop {
        let read = reader.read();
        let race = js_sys::Promise::race(&Array::of2(&read, &js::timeout(STALL_MS)));
        let result = match JsFuture::from(race).await {
            Ok(r) => r,
            Err(_) if !js::scope().navigator().on_line() => {
                return Err(net(
                    "The browser went offline during the download. Nothing was kept.",
                ))
            }
            Err(e) => return Ok(Read::Broken(js::describe(&e))),
        };
        if result.is_undefined() {
            let _ = JsFuture::from(reader.cancel()).await;
            return Err(net(format!(
                "The download stalled: no data for {} seconds. Nothing was kept.",
                STALL_MS / 1000
            )));
        }
        let done = js_sys::Reflect::get(&result, &"done".into())
            .map(|d| d.is_truthy())
            .unwrap_or(true);
        if done {
            break;
        }
        let value = js_sys::Reflect::get(&result, &"value".into()).map_err(|e| js_err("read", &e))?;
        let chunk: Uint8Array = value.dyn_into().map_err(|e| js_err("read", &e))?;
        js::append(buf, &chunk);
        if let Some(t) = total {
            if buf.len() as u64 > t && phase != LoadPhase::Checking {
                let _ = JsFuture::from(reader.cancel()).await;
                return Err(net(format!(
                    "The server sent more than the {t} bytes it announced. Nothing was kept."
                )));
            }
            if phase == LoadPhase::Checking && buf.len() as u64 >= t {
                let _ = JsFuture::from(reader.cancel()).await;
                buf.truncate(t as usize);
                break;
            }
        }
        if inbox.supersedes_load() {
            let _ = JsFuture::from(reader.cancel()).await;
            return Err(Stop::Superseded);
        }
        let now = js::now_ms();
        if now - last_report >= PROGRESS_MS {
            last_report = now;
            post(&WorkerEvent::LoadProgress {
                phase,
                done: buf.len() as u64,
                total,
            });
        }
    }
    post(&WorkerEvent::LoadProgress {
        phase,
        done: buf.len() as u64,
        total,
    });
    Ok(Read::Complete)
}

/// How a body read ended (stalls, cancellation and offline are [`Stop`]s).
#[derive(Debug, PartialEq)]
enum Read {
    /// The stream ended normally.
    Complete,
    /// The connection broke; the text says how.
    Broken(String),
}

/// Puts a verified model into the cache (call it only once the bytes have been validated). A full quota is reported, and the model is used anyway.
pub async fn store(source: &ModelSource, bytes: &[u8]) {
    let Some(cache) = open_cache().await else { return };
    let result: Result<(), JsValue> = async {
        // SAFETY: the view is used immediately (to build a Blob, or copied), before any
        // allocation could move wasm memory.
        let view = unsafe { Uint8Array::view(bytes) };
        // In the threaded build wasm memory is a SharedArrayBuffer, which a Blob refuses: copy
        // it out first.
        #[cfg(target_feature = "atomics")]
        let view = {
            let copy = Uint8Array::new_with_length(view.length());
            copy.set(&view, 0);
            copy
        };
        let parts = Array::of1(&view);
        let blob = web_sys::Blob::new_with_u8_array_sequence(&parts)?;
        let headers = web_sys::Headers::new()?;
        headers.set("content-type", "application/octet-stream")?;
        headers.set(H_BYTES, &bytes.len().to_string())?;
        headers.set(H_SHA, source.sha256.as_deref().unwrap_or(&sha256_hex(bytes)))?;
        let init = ResponseInit::new();
        init.set_headers(&headers);
        let resp = Response::new_with_opt_blob_and_init(Some(&blob), &init)?;
        JsFuture::from(cache.put_with_str(&source.url, &resp)).await?;
        Ok(())
    }
    .await;
    if let Err(e) = result {
        let msg = if js::error_name(&e).as_deref() == Some("QuotaExceededError") {
            "The browser's storage quota is full, so the model was not saved for next time. It is loaded and works now; free space in the cache panel to keep it.".to_string()
        } else {
            format!(
                "The model could not be saved in the browser cache ({}). It is loaded and works now.",
                js::describe(&e)
            )
        };
        post(&WorkerEvent::Failed {
            id: None,
            error: WorkerError::new(ErrorKind::Storage, msg),
        });
    }
}

/// Lists cached models and the origin's storage numbers.
pub async fn list_cache() -> WorkerEvent {
    let mut models = Vec::new();
    if let Some(cache) = open_cache().await {
        if let Ok(keys) = JsFuture::from(cache.keys()).await {
            for req in Array::from(&keys).iter() {
                let Ok(req) = req.dyn_into::<Request>() else {
                    continue;
                };
                let url = req.url();
                let Ok(found) = JsFuture::from(cache.match_with_request(&req)).await else {
                    continue;
                };
                let Ok(resp) = found.dyn_into::<Response>() else {
                    continue;
                };
                models.push(CachedModel {
                    bytes: header(&resp, H_BYTES).and_then(|v| v.parse().ok()).unwrap_or(0),
                    sha256: header(&resp, H_SHA),
                    url,
                });
            }
        }
    }
    let (mut usage, mut quota) = (None, None);
    if let Ok(storage) = js::scope().navigator().storage().estimate() {
        if let Ok(est) = JsFuture::from(storage).await {
            let est: web_sys::StorageEstimate = est.unchecked_into();
            usage = est.get_usage().map(|v| v as u64);
            quota = est.get_quota().map(|v| v as u64);
        }
    }
    WorkerEvent::CacheList { models, usage, quota }
}

/// Deletes one cached model.
pub async fn delete_cached(url: &str) {
    if let Some(cache) = open_cache().await {
        let _ = JsFuture::from(cache.delete_with_str(url)).await;
    }
}

/// An engine error in the protocol's terms.
pub fn engine_error(e: &EngineError) -> WorkerError {
    let kind = match e {
        EngineError::TooLarge { .. } => ErrorKind::TooLarge,
        EngineError::Template(_) => ErrorKind::Template,
        EngineError::InvalidInput(_) => ErrorKind::BadRequest,
        EngineError::Compute(_) => ErrorKind::Internal,
        _ => ErrorKind::BadModel,
    };
    let msg = match kind {
        ErrorKind::BadModel => format!("This file cannot be used as a model: {e}."),
        _ => e.to_string(),
    };
    WorkerError::new(kind, msg)
}
