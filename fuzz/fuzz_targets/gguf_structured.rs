//! A valid tiny model with a few bytes overwritten (in the header, where the counts, lengths,
//! types and offsets are), then checked and, if it still passes, loaded and run for a step.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use omp_engine::clock;
use omp_engine::fixtures::{reference_models, tiny, tiny_llama, TinyConfig, TinyVocab};
use omp_engine::protocol::{LoadOptions, SamplingParams};
use omp_engine::Model;

/// The tiny llama with each tokenizer family, then every architecture's reference model.
fn models() -> &'static [Vec<u8>] {
    static M: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    M.get_or_init(|| {
        let make = |vocab| {
            tiny_llama(&TinyConfig {
                vocab,
                layers: 1,
                ..Default::default()
            })
            .to_bytes()
        };
        let mut all = vec![make(TinyVocab::Bpe), make(TinyVocab::Spm)];
        for (_, arch, shape) in reference_models() {
            all.extend(tiny(arch, &shape).map(|w| w.to_bytes()));
        }
        all
    })
}

fuzz_target!(|data: &[u8]| {
    // data: [which model (the corpus's 0 and 1 stay the two llamas), then (u16 position, byte)
    // triples]
    let Some((&which, edits)) = data.split_first() else {
        return;
    };
    let mut bytes = models()[usize::from(which) % models().len()].clone();
    let header = bytes.len().min(16 << 10);
    for e in edits.chunks_exact(3) {
        let pos = usize::from(u16::from_le_bytes([e[0], e[1]])) % header;
        bytes[pos] = e[2];
    }
    let opts = LoadOptions {
        context_length: 64,
        ..LoadOptions::default()
    };
    if Model::check(&bytes, &opts).is_err() {
        return;
    }
    let Ok(mut model) = Model::load(&bytes, &opts) else {
        return;
    };
    let prompt = model.tokenizer().encode("Hello world", true, false);
    if prompt.is_empty() {
        return;
    }
    let params = SamplingParams {
        max_tokens: 2,
        ..SamplingParams::default()
    };
    if let Ok(mut g) = model.generate(&prompt, &params, clock::default_clock()) {
        let _ = g.step();
    }
});
