//! The models the playground offers, from `public/models/manifest.json` (compiled in, so the
//! page knows them before any request).

use serde::Deserialize;

/// One model of the manifest.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ModelEntry {
    /// Stable id used in links (`?model=`).
    pub id: String,
    /// Display name.
    pub name: String,
    /// Model family (SmolLM2, Llama 2, ...).
    pub family: String,
    /// File name.
    pub file: String,
    /// Where a deployment loads the file from (Hugging Face `resolve/<revision>/` link).
    pub url: String,
    /// SHA-256 of the file.
    pub sha256: String,
    /// Size in bytes.
    pub bytes: u64,
    /// `general.architecture`.
    pub architecture: String,
    /// Main weight type.
    pub quantization: String,
    /// Number of weights.
    pub parameters: u64,
    /// Licence identifier.
    pub license: String,
    /// Whether the file is served by this site under `models/`.
    pub bundled: bool,
}

impl ModelEntry {
    /// The URL the page loads this model from: same-origin `models/<file>` for bundled
    /// entries, the host's URL otherwise.
    pub fn load_url(&self) -> String {
        if self.bundled {
            format!("models/{}", self.file)
        } else {
            self.url.clone()
        }
    }
}

#[derive(Deserialize)]
struct Manifest {
    models: Vec<ModelEntry>,
}

const MANIFEST: &str = include_str!("../../../public/models/manifest.json");

/// Every model of the manifest.
pub fn manifest_models() -> Vec<ModelEntry> {
    // The manifest is part of the source tree and checked by a test below.
    serde_json::from_str::<Manifest>(MANIFEST)
        .map(|m| m.models)
        .unwrap_or_default()
}

/// The model loaded when nothing else is asked for.
pub fn default_model() -> Option<ModelEntry> {
    manifest_models().into_iter().find(|m| m.bundled)
}

/// A model by id.
pub fn find(id: &str) -> Option<ModelEntry> {
    manifest_models().into_iter().find(|m| m.id == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_parses_and_has_a_bundled_model() {
        let models: Manifest = serde_json::from_str(MANIFEST).expect("manifest.json is valid");
        assert!(!models.models.is_empty());
        let d = default_model().unwrap();
        assert_eq!(d.load_url(), "models/SmolLM2-135M-Instruct.Q4_1.gguf");
        assert_eq!(d.sha256.len(), 64);
        assert!(d.url.starts_with("https://huggingface.co/") && d.url.contains("/resolve/"));
        assert_eq!(find(&d.id), Some(d));
    }
}
