//! What makes the served app safe to deploy: the response headers, chief among them a
//! Content-Security-Policy that allows WebAssembly but no inline script (the build writes
//! `index.html` without one, see `build.rs`), lets the page talk only to itself and the
//! configured model hosts, and says who may embed it.

/// Where models may be downloaded from besides the app's own origin: Hugging Face and the CDN
/// hosts its `resolve/` links redirect to.
pub const DEFAULT_MODEL_HOSTS: &[&str] = &[
    "https://huggingface.co",
    "https://*.huggingface.co",
    "https://*.hf.co",
];

/// The deployer's choices.
#[derive(Debug, Clone)]
pub struct Policy {
    /// CSP `frame-ancestors` sources: who may show the app in an iframe (`'self'` by default;
    /// a course site's origin, or `*` for anyone).
    pub frame_ancestors: String,
    /// Model hosts the page and its worker may fetch from (CSP `connect-src`).
    pub model_hosts: Vec<String>,
    /// Send `Cross-Origin-Opener-Policy: same-origin` and `Cross-Origin-Embedder-Policy:
    /// require-corp`, which make the page cross-origin isolated: shared wasm memory, so the
    /// threaded worker build. On unless `--no-isolation`.
    pub isolated: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            frame_ancestors: "'self'".into(),
            model_hosts: DEFAULT_MODEL_HOSTS.iter().map(|h| h.to_string()).collect(),
            isolated: true,
        }
    }
}

impl Policy {
    /// The Content-Security-Policy value. `blob:` in `connect-src` is for the local file a
    /// user picks, which the worker reads through a `blob:` URL the page made.
    pub fn csp(&self) -> String {
        format!(
            "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self'; \
             connect-src 'self' blob: {}; img-src 'self' data:; style-src 'self'; object-src 'none'; \
             base-uri 'none'; form-action 'none'; frame-ancestors {}",
            self.model_hosts.join(" "),
            self.frame_ancestors
        )
    }

    /// Every security header the server sends.
    pub fn headers(&self) -> Vec<(String, String)> {
        let mut h = vec![
            ("Content-Security-Policy".into(), self.csp()),
            ("X-Content-Type-Options".into(), "nosniff".into()),
            ("Referrer-Policy".into(), "no-referrer".into()),
        ];
        if self.isolated {
            h.extend(isolation_headers());
        }
        h
    }
}

/// The headers that make a page cross-origin isolated. Model downloads are CORS requests,
/// which `require-corp` allows; an embedding page needs no change (it is isolated only if it
/// opts in itself and delegates `cross-origin-isolated` to the iframe).
pub fn isolation_headers() -> Vec<(String, String)> {
    vec![
        ("Cross-Origin-Opener-Policy".into(), "same-origin".into()),
        ("Cross-Origin-Embedder-Policy".into(), "require-corp".into()),
    ]
}
