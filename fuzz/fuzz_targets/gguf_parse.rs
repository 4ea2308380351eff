//! Raw bytes into the GGUF parser, the header-prefix parser and the model-level checks: any
//! outcome but a panic (or an allocation far beyond the input) is fine.
#![no_main]

use libfuzzer_sys::fuzz_target;
use omp_engine::gguf::Gguf;
use omp_engine::protocol::LoadOptions;
use omp_engine::Model;

fuzz_target!(|data: &[u8]| {
    let _ = Gguf::parse(data);
    // The same bytes as the start of a longer file (what the worker reads with a Range request).
    let _ = Gguf::parse_prefix(data, data.len() as u64 * 2 + 1);
    let _ = Model::check(data, &LoadOptions::default());
});
