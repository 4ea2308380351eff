//! The catalogue's claims agree with the engine: the same memory budget, the same list of
//! architectures it can run, and an estimate close to the engine's own for the bundled model.

use omp_lessons::catalogue::{default_model, manifest_models, BROWSER_BUDGET_BYTES};
use omp_protocol::{ConvertMode, KvCacheType, LoadOptions};

#[test]
fn same_budget_and_architectures() {
    assert_eq!(BROWSER_BUDGET_BYTES, omp_engine::WASM32_MODEL_BUDGET_BYTES);
    for m in manifest_models() {
        let supported = omp_engine::arch::supported().contains(&m.architecture.as_str());
        assert_eq!(m.runnable, supported, "{}: runnable flag vs the engine", m.id);
    }
}

#[test]
fn estimate_is_close_to_the_engines_for_the_bundled_model() {
    let d = default_model().unwrap();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../public/models")
        .join(&d.file);
    let bytes =
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}; run `cargo xtask models`", path.display()));
    assert_eq!(bytes.len() as u64, d.bytes);
    for (convert, mode, compact) in [
        (false, ConvertMode::None, false),
        (true, ConvertMode::Q8_0, false),
        (false, ConvertMode::None, true),
    ] {
        let gguf = omp_engine::gguf::Gguf::parse(&bytes).unwrap();
        let info = omp_engine::inspect(
            &gguf,
            &LoadOptions {
                context_length: 2048,
                convert: mode,
                kv_cache: if compact {
                    KvCacheType::Q8_0
                } else {
                    KvCacheType::F16
                },
            },
        )
        .unwrap();
        let engine = (info.memory.total_bytes + info.file_bytes) as f64;
        let ours = d.estimate_bytes(convert, compact) as f64;
        let ratio = ours / engine;
        // With conversion the catalogue assumes every matrix becomes Q8_0; this file's
        // embedding is Q8_0 already, so the catalogue may be higher, never much lower.
        let allowed = if convert { 0.95..1.4 } else { 0.8..1.25 };
        assert!(
            allowed.contains(&ratio),
            "convert={convert} compact_kv={compact}: catalogue {ours} vs engine {engine}"
        );
    }
}
