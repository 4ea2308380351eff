//! Reproducible links: the page reads its model, prompt and sampling settings from URL
//! parameters, and "Copy link" writes the current ones back.

use omp_protocol::{KvCacheType, SamplingParams};
use web_sys::UrlSearchParams;

/// What a link asks for.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LinkConfig {
    /// A catalogue id or a model URL.
    pub model: Option<String>,
    /// A prompt to put in the input (and run with `autorun`).
    pub prompt: Option<String>,
    /// System prompt.
    pub system: Option<String>,
    /// Sampling settings (defaults where the link is silent).
    pub params: SamplingParams,
    /// Run the prompt once the model is ready.
    pub autorun: bool,
    /// Load-time conversion (default on).
    pub convert: Option<bool>,
    /// Key/value cache storage (`kv_cache=q8_0`; default f16).
    pub kv_cache: Option<KvCacheType>,
    /// Embedded in another page (`embed=1`): playground only.
    pub embed: bool,
    /// The only origin whose `postMessage` requests are answered (`parent_origin=`).
    pub parent_origin: Option<String>,
}

fn search() -> Option<UrlSearchParams> {
    let search = web_sys::window()?.location().search().ok()?;
    UrlSearchParams::new_with_str(&search).ok()
}

/// Reads the current page's parameters. Unparsable numbers are ignored (the default stays).
pub fn read() -> LinkConfig {
    let Some(q) = search() else {
        return LinkConfig::default();
    };
    parse(|k| q.get(k))
}

/// Parses parameters given a getter (separate from the browser for tests).
pub fn parse(get: impl Fn(&str) -> Option<String>) -> LinkConfig {
    let mut p = SamplingParams::default();
    let num = |k: &str| {
        get(k)
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|v| v.is_finite())
    };
    if let Some(v) = num("temperature") {
        p.temperature = v as f32;
    }
    if let Some(v) = num("top_k") {
        p.top_k = v.clamp(0.0, 1e6) as u32;
    }
    if let Some(v) = num("top_p") {
        p.top_p = v as f32;
    }
    if let Some(v) = num("min_p") {
        p.min_p = v as f32;
    }
    if let Some(v) = num("repeat_penalty") {
        p.repeat_penalty = v as f32;
    }
    if let Some(v) = num("max_tokens") {
        p.max_tokens = v.clamp(1.0, 8192.0) as u32;
    }
    if let Some(v) = num("seed") {
        p.seed = v.max(0.0) as u64;
    }
    if p.validate().is_err() {
        p = SamplingParams {
            seed: p.seed,
            max_tokens: p.max_tokens,
            ..SamplingParams::default()
        };
    }
    let flag = |k: &str| get(k).map(|v| matches!(v.as_str(), "1" | "true" | "yes" | "on"));
    LinkConfig {
        model: get("model").filter(|v| !v.is_empty()),
        prompt: get("prompt"),
        system: get("system"),
        params: p,
        autorun: flag("autorun").unwrap_or(false),
        convert: flag("convert"),
        kv_cache: get("kv_cache").and_then(|v| KvCacheType::parse(v.trim())),
        embed: flag("embed").unwrap_or(false),
        parent_origin: get("parent_origin").filter(|o| o.starts_with("http://") || o.starts_with("https://")),
    }
}

/// A link to this page that reproduces `cfg`.
pub fn build(cfg: &LinkConfig) -> String {
    let Some(window) = web_sys::window() else {
        return String::new();
    };
    let loc = window.location();
    let base = format!(
        "{}{}",
        loc.origin().unwrap_or_default(),
        loc.pathname().unwrap_or_else(|_| "/".into())
    );
    let q = match UrlSearchParams::new() {
        Ok(q) => q,
        Err(_) => return base,
    };
    // Parameters the page itself uses for other purposes (language, embedding) are kept.
    if let Some(cur) = search() {
        for k in ["lang", "embed", "parent_origin"] {
            if let Some(v) = cur.get(k) {
                q.append(k, &v);
            }
        }
    }
    if let Some(m) = &cfg.model {
        q.append("model", m);
    }
    if let Some(p) = &cfg.prompt {
        q.append("prompt", p);
    }
    if let Some(s) = cfg.system.as_ref().filter(|s| !s.is_empty()) {
        q.append("system", s);
    }
    let p = &cfg.params;
    q.append("temperature", &p.temperature.to_string());
    q.append("top_k", &p.top_k.to_string());
    q.append("top_p", &p.top_p.to_string());
    q.append("min_p", &p.min_p.to_string());
    q.append("repeat_penalty", &p.repeat_penalty.to_string());
    q.append("max_tokens", &p.max_tokens.to_string());
    q.append("seed", &p.seed.to_string());
    if let Some(c) = cfg.convert {
        q.append("convert", if c { "1" } else { "0" });
    }
    if let Some(kv) = cfg.kv_cache {
        q.append("kv_cache", kv.as_str());
    }
    if cfg.autorun {
        q.append("autorun", "1");
    }
    format!("{base}?{}", String::from(q.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn from(pairs: &[(&str, &str)]) -> LinkConfig {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        parse(|k| m.get(k).cloned())
    }

    #[test]
    fn reads_every_parameter() {
        let c = from(&[
            ("model", "smollm2"),
            ("prompt", "hi"),
            ("temperature", "0"),
            ("top_k", "5"),
            ("top_p", "0.5"),
            ("min_p", "0.1"),
            ("repeat_penalty", "1.2"),
            ("max_tokens", "32"),
            ("seed", "7"),
            ("autorun", "1"),
            ("kv_cache", "q8_0"),
        ]);
        assert_eq!(c.model.as_deref(), Some("smollm2"));
        assert_eq!(c.kv_cache, Some(KvCacheType::Q8_0));
        assert_eq!(c.params.temperature, 0.0);
        assert_eq!(c.params.top_k, 5);
        assert_eq!(c.params.max_tokens, 32);
        assert_eq!(c.params.seed, 7);
        assert!(c.autorun);
    }

    #[test]
    fn nonsense_falls_back_to_defaults() {
        let c = from(&[
            ("temperature", "hot"),
            ("top_p", "7"),
            ("max_tokens", "-3"),
            ("kv_cache", "q2"),
        ]);
        assert_eq!(c.kv_cache, None);
        assert_eq!(c.params.temperature, SamplingParams::default().temperature);
        assert_eq!(c.params.top_p, SamplingParams::default().top_p);
        assert_eq!(c.params.max_tokens, 1);
        assert!(!c.autorun);
    }
}
