//! A small static file server for the built app: `dist/` at `/`, the bundled models at
//! `/models/`, HTTP Range requests (downloads resume with them, and the worker reads a GGUF
//! header with one before downloading), and the security headers a deployment should send.

use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};

/// What to serve and how.
#[derive(Debug, Clone)]
pub struct Site {
    /// URL prefix → directory, longest prefix first.
    pub mounts: Vec<(String, PathBuf)>,
    /// Extra response headers (CSP, isolation).
    pub headers: Vec<(String, String)>,
    /// Tests only: serve `/faults/<kind>/<file>` from this directory with the fault injected
    /// (see [`crate::faults`]).
    pub faults: Option<PathBuf>,
}

/// Binds `127.0.0.1:port` (0: any free port) and returns the port and a function that serves
/// forever.
pub fn bind(port: u16) -> Result<(u16, TcpListener)> {
    let l = TcpListener::bind(("127.0.0.1", port))
        .with_context(|| format!("cannot listen on 127.0.0.1:{port}"))?;
    let port = l.local_addr()?.port();
    Ok((port, l))
}

/// Serves `site` on a free port in a background thread; returns its base URL.
pub fn start(site: Site) -> Result<String> {
    let (port, listener) = bind(0)?;
    std::thread::spawn(move || serve(listener, site));
    Ok(format!("http://127.0.0.1:{port}/"))
}

/// Serves connections until the process ends (one thread per connection).
pub fn serve(listener: TcpListener, site: Site) {
    let site = Arc::new(site);
    for stream in listener.incoming().flatten() {
        let site = site.clone();
        std::thread::spawn(move || {
            let _ = handle(stream, &site);
        });
    }
}

pub fn content_type(p: &Path) -> &'static str {
    match p.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "wasm" => "application/wasm",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "txt" | "md" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// Maps a request path to a file, refusing anything that climbs out of its mount.
fn resolve(site: &Site, path: &str) -> Option<PathBuf> {
    let path = path.split(['?', '#']).next().unwrap_or("/");
    let path = percent_decode(path);
    for (prefix, dir) in &site.mounts {
        let Some(rest) = path.strip_prefix(prefix.as_str()) else {
            continue;
        };
        let rel = Path::new(rest.trim_start_matches('/'));
        if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
            return None;
        }
        let mut p = dir.join(rel);
        if p.is_dir() {
            p = p.join("index.html");
        }
        return p.is_file().then_some(p);
    }
    None
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or(""), 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `bytes=a-b`, `bytes=a-` or `bytes=-n` against a file of `len` bytes.
pub fn parse_range(v: &str, len: u64) -> Option<(u64, u64)> {
    let spec = v.strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (start, end) = if a.is_empty() {
        let n: u64 = b.parse().ok()?;
        (len.saturating_sub(n), len.checked_sub(1)?)
    } else {
        let start: u64 = a.parse().ok()?;
        let end = if b.is_empty() {
            len - 1
        } else {
            b.parse::<u64>().ok()?.min(len - 1)
        };
        (start, end)
    };
    (start <= end && end < len).then_some((start, end))
}

/// One parsed request: what the handlers need of it.
pub struct Req {
    /// `GET`, `HEAD`, ...
    pub method: String,
    /// Path and query.
    pub target: String,
    /// The `Range` header, if any.
    pub range: Option<String>,
}

fn read_request(stream: &TcpStream) -> std::io::Result<Req> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("/").to_string();
    let mut range = None;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h == "\r\n" || h == "\n" {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.trim().eq_ignore_ascii_case("range") {
                range = Some(v.trim().to_string());
            }
        }
    }
    Ok(Req {
        method,
        target,
        range,
    })
}

fn handle(stream: TcpStream, site: &Site) -> std::io::Result<()> {
    let req = read_request(&stream)?;
    let mut out = stream;
    let extra: String = site
        .headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    if req.method != "GET" && req.method != "HEAD" {
        return write!(
            out,
            "HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\nConnection: close\r\n{extra}\r\n"
        );
    }
    if let (Some(dir), Some(rest)) = (&site.faults, req.target.strip_prefix("/faults/")) {
        return crate::faults::respond(&mut out, &req, rest, dir, &extra);
    }
    let Some(file) = resolve(site, &req.target) else {
        return not_found(&mut out, &extra);
    };
    send_file(&mut out, &req, &file, &extra)
}

/// A plain-text 404.
pub fn not_found(out: &mut TcpStream, extra: &str) -> std::io::Result<()> {
    let body = "not found";
    write!(
        out,
        "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n{body}",
        body.len()
    )
}

/// Sends `file` (or the part `req.range` asks for).
pub fn send_file(out: &mut TcpStream, req: &Req, file: &Path, extra: &str) -> std::io::Result<()> {
    let mut f = std::fs::File::open(file)?;
    let len = f.metadata()?.len();
    let ct = content_type(file);
    let (status, start, end) = match req.range.as_deref() {
        Some(r) if len > 0 => match parse_range(r, len) {
            Some((s, e)) => ("206 Partial Content", s, e),
            None => {
                return write!(
                    out,
                    "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{len}\r\nContent-Length: 0\r\nConnection: close\r\n{extra}\r\n"
                )
            }
        },
        _ => ("200 OK", 0, len.saturating_sub(1)),
    };
    let n = if len == 0 { 0 } else { end - start + 1 };
    let mut head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ct}\r\nContent-Length: {n}\r\nAccept-Ranges: bytes\r\nCache-Control: no-cache\r\nConnection: close\r\n{extra}"
    );
    if status.starts_with("206") {
        head.push_str(&format!("Content-Range: bytes {start}-{end}/{len}\r\n"));
    }
    head.push_str("\r\n");
    out.write_all(head.as_bytes())?;
    if req.method == "HEAD" || n == 0 {
        return Ok(());
    }
    copy_range(out, &mut f, start, n)
}

/// Copies `n` bytes of `f` from `start` to `out`.
pub fn copy_range(out: &mut TcpStream, f: &mut std::fs::File, start: u64, n: u64) -> std::io::Result<()> {
    f.seek(SeekFrom::Start(start))?;
    let mut left = n;
    let mut buf = vec![0u8; 256 << 10];
    while left > 0 {
        let want = left.min(buf.len() as u64) as usize;
        let k = f.read(&mut buf[..want])?;
        if k == 0 {
            break;
        }
        out.write_all(&buf[..k])?;
        left -= k as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), Some((0, 9)));
        assert_eq!(parse_range("bytes=90-", 100), Some((90, 99)));
        assert_eq!(parse_range("bytes=-10", 100), Some((90, 99)));
        assert_eq!(parse_range("bytes=0-1000", 100), Some((0, 99)));
        assert_eq!(parse_range("bytes=100-", 100), None);
        assert_eq!(parse_range("bytes=0-1,5-6", 100), None);
    }

    #[test]
    fn paths_cannot_escape() {
        let site = Site {
            mounts: vec![("/".into(), PathBuf::from("."))],
            headers: vec![],
            faults: None,
        };
        assert_eq!(resolve(&site, "/../etc/passwd"), None);
        assert_eq!(resolve(&site, "/%2e%2e/etc/passwd"), None);
        assert!(resolve(&site, "/Cargo.toml").is_some());
    }
}
