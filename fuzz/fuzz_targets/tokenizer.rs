//! Any text through both tokenizer families: encoding never panics, and byte-level BPE decodes
//! back to exactly the text it was given.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use omp_engine::fixtures::{tiny_llama, TinyConfig, TinyVocab};
use omp_engine::gguf::Gguf;
use omp_engine::tokenizer::Tokenizer;

fn tokenizers() -> &'static [Tokenizer; 2] {
    static T: OnceLock<[Tokenizer; 2]> = OnceLock::new();
    T.get_or_init(|| {
        let make = |vocab| {
            let bytes = tiny_llama(&TinyConfig {
                vocab,
                layers: 1,
                ..Default::default()
            })
            .to_bytes();
            Tokenizer::from_gguf(&Gguf::parse(&bytes).expect("fixture parses")).expect("fixture tokenizer")
        };
        [make(TinyVocab::Bpe), make(TinyVocab::Spm)]
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let [bpe, spm] = tokenizers();
    for special in [false, true] {
        let ids = bpe.encode(text, false, special);
        if !special {
            assert_eq!(bpe.decode(&ids, false), text, "BPE round trip");
        }
        let _ = spm.decode(&spm.encode(text, true, special), true);
    }
});
