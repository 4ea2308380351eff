//! Network faults for the browser tests, served only by the test server:
//! `/faults/<kind>/<file>` answers for `public/models/<file>` with one thing wrong.
//!
//! | kind | what the browser gets |
//! |---|---|
//! | `cut` | the full length announced, half the bytes sent, then the connection closes; Range requests are served properly, so the download can resume |
//! | `cut-norange` | the same cut, from a server that does not accept ranges |
//! | `html` | status 200 with a sign-in web page instead of the model |
//! | `404`, `429`, `500` | that status |
//! | `short-length` | `Content-Length` of half the file and only that half: a complete-looking but truncated file |
//! | `long-length` | `Content-Length` 1000 bytes larger than the file, the whole file, then the connection closes |
//! | `stall` | 1 MiB of the file, then nothing (the connection stays open for 60 s) |
//! | `huge` | a llama model of about 3.2 GiB that exists only as a header (`<file>` is ignored); HEAD and Range requests work, a full GET is refused with 403 so a test notices it |
//!
//! `/faults/log` lists every fault request so far as JSON (`method`, `target`, `range`), so a
//! test can see what the browser asked for (a resume, a HEAD, no full download).

use std::io::Write;
use std::net::TcpStream;
use std::path::Path;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use crate::server::{self, Req};

/// The `huge` model's header and its whole file length.
fn huge() -> &'static (Vec<u8>, u64) {
    static HUGE: OnceLock<(Vec<u8>, u64)> = OnceLock::new();
    HUGE.get_or_init(|| {
        // Llama-2-7B widths with 16 blocks in Q8_0: a 3.2 GiB file that fits the 3.5 GiB budget
        // alone, so the worker reads its header, but not with its key/value cache at 2048
        // tokens (0.5 GiB) added. The test for this is `huge_fixture_fits_alone_but_not_running`.
        let cfg = omp_engine::fixtures::TinyConfig {
            weight_type: "Q8_0",
            layers: 16,
            embedding: 4096,
            heads: 32,
            kv_heads: 32,
            feed_forward: 11008,
            context: 4096,
            ..Default::default()
        };
        let w = omp_engine::fixtures::virtual_llama(&cfg).expect("7B widths are whole Q8_0 blocks");
        w.header()
    })
}

/// Requests seen so far.
static LOG: Mutex<Vec<serde_json::Value>> = Mutex::new(Vec::new());

/// Answers `req` for `rest` (`<kind>/<file>`) with the fault injected.
pub fn respond(
    out: &mut TcpStream,
    req: &Req,
    rest: &str,
    models: &Path,
    extra: &str,
) -> std::io::Result<()> {
    let rest = rest.split(['?', '#']).next().unwrap_or("");
    if rest == "log" {
        let body = LOG
            .lock()
            .map(|l| serde_json::Value::from(l.clone()).to_string())
            .unwrap_or_default();
        return write!(
            out,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n{extra}\r\n{body}",
            body.len()
        );
    }
    if let Ok(mut l) = LOG.lock() {
        l.push(serde_json::json!({"method": req.method, "target": req.target, "range": req.range}));
    }
    let (kind, name) = rest.split_once('/').unwrap_or((rest, ""));
    if kind == "huge" {
        return respond_huge(out, req, extra);
    }
    let file = models.join(name);
    if name.contains("..") || name.contains('/') || !file.is_file() {
        return server::not_found(out, extra);
    }
    let mut f = std::fs::File::open(&file)?;
    let len = f.metadata()?.len();
    let head = |status: &str, ct: &str, n: u64, ranges: bool| {
        format!(
            "HTTP/1.1 {status}\r\nContent-Type: {ct}\r\nContent-Length: {n}\r\n{}Cache-Control: no-store\r\nConnection: close\r\n{extra}\r\n",
            if ranges { "Accept-Ranges: bytes\r\n" } else { "" }
        )
    };
    let octets = "application/octet-stream";
    match kind {
        "cut" if req.range.is_some() => server::send_file(out, req, &file, extra),
        "cut" | "cut-norange" => {
            out.write_all(head("200 OK", octets, len, kind == "cut").as_bytes())?;
            if req.method == "GET" {
                server::copy_range(out, &mut f, 0, len / 2)?;
            }
            Ok(())
        }
        "html" => {
            let body = "<!doctype html><html><head><title>Sign in</title></head><body><form>Sign in to continue</form></body></html>";
            out.write_all(head("200 OK", "text/html; charset=utf-8", body.len() as u64, false).as_bytes())?;
            out.write_all(body.as_bytes())
        }
        "404" | "429" | "500" => {
            let status = match kind {
                "404" => "404 Not Found",
                "429" => "429 Too Many Requests",
                _ => "500 Internal Server Error",
            };
            out.write_all(head(status, "text/plain", 0, false).as_bytes())
        }
        "short-length" => {
            out.write_all(head("200 OK", octets, len / 2, false).as_bytes())?;
            if req.method == "GET" {
                server::copy_range(out, &mut f, 0, len / 2)?;
            }
            Ok(())
        }
        "long-length" if req.range.is_some() => server::send_file(out, req, &file, extra),
        "long-length" => {
            out.write_all(head("200 OK", octets, len + 1000, true).as_bytes())?;
            if req.method == "GET" {
                server::copy_range(out, &mut f, 0, len)?;
            }
            Ok(())
        }
        "stall" => {
            out.write_all(head("200 OK", octets, len, false).as_bytes())?;
            if req.method == "GET" {
                server::copy_range(out, &mut f, 0, 1 << 20)?;
                out.flush()?;
                std::thread::sleep(Duration::from_secs(60));
            }
            Ok(())
        }
        _ => server::not_found(out, extra),
    }
}

fn respond_huge(out: &mut TcpStream, req: &Req, extra: &str) -> std::io::Result<()> {
    let (header, len) = huge();
    let len = *len;
    let Some(range) = &req.range else {
        if req.method == "HEAD" {
            return write!(
                out,
                "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {len}\r\nAccept-Ranges: bytes\r\nConnection: close\r\n{extra}\r\n"
            );
        }
        let body = "the test server does not stream its virtual multi-gigabyte model";
        return write!(
            out,
            "HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n{body}",
            body.len()
        );
    };
    let Some((start, end)) = server::parse_range(range, len) else {
        return write!(
            out,
            "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{len}\r\nContent-Length: 0\r\nConnection: close\r\n{extra}\r\n"
        );
    };
    // Header bytes where the range overlaps the header, zeros after it (at most 64 MiB).
    let end = end.min(start + (64 << 20) - 1);
    let n = end - start + 1;
    write!(
        out,
        "HTTP/1.1 206 Partial Content\r\nContent-Type: application/octet-stream\r\nContent-Length: {n}\r\nContent-Range: bytes {start}-{end}/{len}\r\nAccept-Ranges: bytes\r\nConnection: close\r\n{extra}\r\n"
    )?;
    if req.method == "HEAD" {
        return Ok(());
    }
    let mut body = vec![0u8; n as usize];
    let h = header.len() as u64;
    if start < h {
        let stop = h.min(end + 1);
        body[..(stop - start) as usize].copy_from_slice(&header[start as usize..stop as usize]);
    }
    out.write_all(&body)
}

#[cfg(test)]
mod tests {
    use omp_engine::gguf::Gguf;
    use omp_engine::WASM32_MODEL_BUDGET_BYTES as BUDGET;

    /// The `huge` fault tests the refusal after the header was read: the file alone must pass
    /// the size check made from HEAD, and the engine's estimate at the app's default context
    /// must then push it over the budget.
    #[test]
    fn huge_fixture_fits_alone_but_not_running() {
        let (header, len) = super::huge();
        assert!(*len < BUDGET, "the file alone ({len} bytes) fits");
        let gguf = Gguf::parse_prefix(header, *len).unwrap();
        let info = omp_engine::inspect(&gguf, &omp_engine::protocol::LoadOptions::default()).unwrap();
        assert!(
            len + info.memory.total_bytes > BUDGET,
            "file {len} + running {} exceeds {BUDGET}",
            info.memory.total_bytes
        );
    }
}
