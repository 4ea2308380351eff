//! What makes the served app safe to deploy: no inline script in `index.html` (Trunk writes its
//! boot code inline; it is moved into a file after each build), and the response headers,
//! chief among them a Content-Security-Policy that allows WebAssembly but no inline script,
//! lets the page talk only to itself and the configured model hosts, and says who may embed it.

use std::path::Path;

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

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
    /// Reads `--frame-ancestors SOURCES`, any number of `--model-host URL` and
    /// `--no-isolation` from `args`.
    pub fn from_args(args: &[String]) -> Result<Self> {
        let mut p = Self::default();
        let mut it = args.iter();
        while let Some(a) = it.next() {
            match a.as_str() {
                "--frame-ancestors" => {
                    p.frame_ancestors = it.next().context("--frame-ancestors needs a value")?.clone()
                }
                "--model-host" => {
                    let h = it.next().context("--model-host needs a URL")?;
                    if !(h.starts_with("https://") || h.starts_with("http://")) || h.contains([' ', ';', ','])
                    {
                        bail!("--model-host {h:?}: give one origin such as https://models.example.org");
                    }
                    p.model_hosts.push(h.clone());
                }
                "--no-isolation" => p.isolated = false,
                _ => {}
            }
        }
        Ok(p)
    }

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

/// Moves each inline `<script type="module">` of `dist/index.html` into its own file
/// (`boot-<hash>.js`) so the policy needs no `'unsafe-inline'`. Idempotent.
pub fn externalize_inline_scripts(dist: &Path) -> Result<()> {
    let index = dist.join("index.html");
    let mut html = std::fs::read_to_string(&index).with_context(|| format!("reading {}", index.display()))?;
    const OPEN: &str = "<script type=\"module\">";
    while let Some(start) = html.find(OPEN) {
        let body_start = start + OPEN.len();
        let Some(len) = html[body_start..].find("</script>") else {
            bail!("{}: an inline script is not closed", index.display());
        };
        let code = html[body_start..body_start + len].trim().to_string();
        let hash: String = Sha256::digest(code.as_bytes())[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let name = format!("boot-{hash}.js");
        std::fs::write(dist.join(&name), format!("{code}\n"))?;
        html.replace_range(
            start..body_start + len + "</script>".len(),
            &format!("<script type=\"module\" src=\"./{name}\"></script>"),
        );
    }
    std::fs::write(&index, html)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_module_scripts_become_files() {
        let dir = std::env::temp_dir().join(format!("omp-security-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("index.html"),
            "<head><script type=\"module\">\nimport init from './app.js';\nawait init();\n</script></head>",
        )
        .unwrap();
        externalize_inline_scripts(&dir).unwrap();
        let html = std::fs::read_to_string(dir.join("index.html")).unwrap();
        assert!(!html.contains("import init"), "{html}");
        let src = html.split("src=\"./").nth(1).unwrap().split('"').next().unwrap();
        let code = std::fs::read_to_string(dir.join(src)).unwrap();
        assert_eq!(code, "import init from './app.js';\nawait init();\n");
        // Running it again changes nothing.
        externalize_inline_scripts(&dir).unwrap();
        assert_eq!(std::fs::read_to_string(dir.join("index.html")).unwrap(), html);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn policy_allows_wasm_but_no_inline_script() {
        let p = Policy::from_args(&["--frame-ancestors".into(), "https://course.example".into()]).unwrap();
        let csp = p.csp();
        assert!(csp.contains("script-src 'self' 'wasm-unsafe-eval';"));
        assert!(!csp.contains("unsafe-inline"));
        assert!(csp.contains("frame-ancestors https://course.example"));
        assert!(csp.contains("connect-src 'self' blob: https://huggingface.co"));
        assert!(Policy::from_args(&["--model-host".into(), "x; script-src *".into()]).is_err());
    }

    #[test]
    fn serve_isolates_the_page_unless_told_not_to() {
        let has_coep = |p: &Policy| {
            p.headers()
                .iter()
                .any(|(k, v)| k == "Cross-Origin-Embedder-Policy" && v == "require-corp")
        };
        assert!(has_coep(&Policy::from_args(&[]).unwrap()));
        assert!(!has_coep(&Policy::from_args(&["--no-isolation".into()]).unwrap()));
    }
}
