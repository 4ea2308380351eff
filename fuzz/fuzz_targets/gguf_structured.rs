//! A valid tiny model with a few bytes overwritten (in the header, where the counts, lengths,
//! types and offsets are), then checked and, if it still passes, loaded and run for a step.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use omp_engine::clock;
use omp_engine::fixtures::{tiny_llama, TinyConfig, TinyVocab};
use omp_engine::protocol::{LoadOptions, SamplingParams};
use omp_engine::Model;

fn models() -> &'static [Vec<u8>; 2] {
    static M: OnceLock<[Vec<u8>; 2]> = OnceLock::new();
    M.get_or_init(|| {
        let make = |vocab| {
            tiny_llama(&TinyConfig {
                vocab,
                layers: 1,
                ..Default::default()
            })
            .to_bytes()
        };
        [make(TinyVocab::Bpe), make(TinyVocab::Spm)]
    })
}

fuzz_target!(|data: &[u8]| {
    // data: [which model, then (u16 position, byte) triples]
    let Some((&which, edits)) = data.split_first() else {
        return;
    };
    let mut bytes = models()[usize::from(which & 1)].clone();
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
