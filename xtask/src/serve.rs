//! `cargo xtask serve`: build, then serve the app with the headers a deployment should send.

use std::path::Path;

use anyhow::{bail, Result};

use crate::{build, security, server, setup, timing::Timer};

/// `cargo xtask serve` flags.
#[derive(clap::Args)]
pub struct Args {
    /// Port to listen on (127.0.0.1).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Serve the `dist/` there is instead of building first.
    #[arg(long)]
    no_build: bool,
    /// Add the browser tests' fault-injecting routes (`/faults/<kind>/<file>`), to run them by hand.
    #[arg(long)]
    faults: bool,
    /// CSP `frame-ancestors` sources: who may embed the app (e.g. `https://course.example`, or `*`).
    #[arg(long, value_name = "SOURCES", default_value = "'self'")]
    frame_ancestors: String,
    /// A host models may be fetched from besides Hugging Face (repeatable).
    #[arg(long, value_name = "URL")]
    model_host: Vec<String>,
    /// No COOP/COEP headers: embeddable without isolation, but single-threaded.
    #[arg(long)]
    no_isolation: bool,
}

impl Args {
    /// The deployment policy these flags describe.
    fn policy(&self) -> Result<security::Policy> {
        let mut p = security::Policy {
            frame_ancestors: self.frame_ancestors.clone(),
            isolated: !self.no_isolation,
            ..Default::default()
        };
        for h in &self.model_host {
            if !(h.starts_with("https://") || h.starts_with("http://")) || h.contains([' ', ';', ',']) {
                bail!("--model-host {h:?}: give one origin such as https://models.example.org");
            }
            p.model_hosts.push(h.clone());
        }
        Ok(p)
    }
}

/// The site as the server presents it, with the security headers of `policy`.
pub fn site(root: &Path, policy: &security::Policy) -> server::Site {
    server::Site {
        mounts: vec![
            ("/models/".into(), root.join("public/models")),
            ("/".into(), root.join("dist")),
        ],
        headers: policy.headers(),
        faults: None,
    }
}

/// Builds (unless `--no-build`), then serves until interrupted.
pub fn run(root: &Path, args: &Args) -> Result<()> {
    let policy = args.policy()?;
    if !args.no_build {
        let mut t = Timer::default();
        setup::all(root, &mut t)?;
        t.step("build", || build::app(root))?;
    }
    let faults = args.faults.then(|| root.join("public/models"));
    let (port, listener) = server::bind(args.port)?;
    println!("Open Model Playground: http://127.0.0.1:{port}/  (Ctrl-C stops)");
    server::serve(
        listener,
        server::Site {
            faults,
            ..site(root, &policy)
        },
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        a: Args,
    }

    fn policy(args: &[&str]) -> Result<security::Policy> {
        let mut v = vec!["serve"];
        v.extend(args);
        T::try_parse_from(v)?.a.policy()
    }

    #[test]
    fn policy_allows_wasm_but_no_inline_script() {
        let p = policy(&["--frame-ancestors", "https://course.example"]).unwrap();
        let csp = p.csp();
        assert!(csp.contains("script-src 'self' 'wasm-unsafe-eval';"));
        assert!(!csp.contains("unsafe-inline"));
        assert!(csp.contains("frame-ancestors https://course.example"));
        assert!(csp.contains("connect-src 'self' blob: https://huggingface.co"));
        assert!(policy(&["--model-host", "x; script-src *"]).is_err());
        let p = policy(&["--model-host", "https://models.example.org"]).unwrap();
        assert!(p.csp().contains("https://models.example.org;"));
    }

    #[test]
    fn serve_isolates_the_page_unless_told_not_to() {
        let has_coep = |p: &security::Policy| {
            p.headers()
                .iter()
                .any(|(k, v)| k == "Cross-Origin-Embedder-Policy" && v == "require-corp")
        };
        assert!(has_coep(&policy(&[]).unwrap()));
        assert!(!has_coep(&policy(&["--no-isolation"]).unwrap()));
    }
}
