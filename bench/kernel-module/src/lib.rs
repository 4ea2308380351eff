//! A bare wasm module over the engine, for timing kernel changes on a noisy machine.
//!
//! Why: this VM's speed drifts by ±20% within minutes, so two `bench browser` runs cannot tell
//! a 5% kernel change from noise. `cargo xtask bench kernels` builds this crate for the browser
//! twice (before and after a change), instantiates both modules in one headless-Chromium page
//! and alternates them step by step, so drift hits both alike; the median of the per-step time
//! ratios is the answer. No wasm-bindgen: the page calls these exports directly and writes the
//! model file into the module's memory at the address [`alloc`] returns.
//!
//! Every export returns a status instead of panicking where input could be wrong (a bad file,
//! an unknown type); a panic would only abort the bench page.

#![deny(missing_docs)]

use std::cell::RefCell;
use std::sync::Arc;

use omp_engine::clock::NoClock;
use omp_engine::kernels::{QActivations, QMatrix, WeightType};
use omp_engine::protocol::{LoadOptions, SamplingParams};
use omp_engine::{Generator, Model};

/// A fixed English prompt, long enough that the decode steps see a few hundred cached tokens.
const PROMPT: &str = "The history of open language models is a long story. It began in the early days of \
machine learning research, when scientists at several universities and companies started to share their \
code, their data and the weights of the models they trained. In this essay I will describe";

/// What the exports work on: one model's generator or one matrix product.
#[derive(Default)]
struct State {
    /// The file being written by the page (see [`alloc`]).
    file: Vec<u8>,
    /// A greedy generation over the loaded model, stepped by [`step`].
    generator: Option<Generator<'static>>,
    /// A product set up by [`mm_setup`]: weights, activations and output.
    product: Option<(QMatrix, QActivations, Vec<f32>)>,
}

thread_local! {
    static STATE: RefCell<State> = RefCell::new(State::default());
}

/// Reserves `n` bytes for the model file and returns their address in the module's memory.
#[no_mangle]
pub extern "C" fn alloc(n: usize) -> *mut u8 {
    STATE.with_borrow_mut(|s| {
        s.file = vec![0; n];
        s.file.as_mut_ptr()
    })
}

/// Loads the file written at [`alloc`]'s address and starts a greedy generation of the fixed
/// prompt. Returns the prompt's token count, or -1 when the file does not load.
#[no_mangle]
pub extern "C" fn load() -> i32 {
    STATE.with_borrow_mut(|s| {
        let bytes = std::mem::take(&mut s.file);
        let Ok(model) = Model::load(bytes, &LoadOptions::default()) else {
            return -1;
        };
        // The generator borrows the model for as long as the page lives.
        let model: &'static mut Model = Box::leak(Box::new(model));
        let ids = model.tokenizer().encode(PROMPT, false, false);
        let n = ids.len() as i32;
        match model.generate(&ids, &SamplingParams::greedy(u32::MAX), Arc::new(NoClock)) {
            Ok(g) => {
                s.generator = Some(g);
                n
            }
            Err(_) => -1,
        }
    })
}

/// One generation step (a prefill chunk, then one token per call). Returns 0, or -1 when
/// nothing is loaded or the step failed.
#[no_mangle]
pub extern "C" fn step() -> i32 {
    STATE.with_borrow_mut(|s| match s.generator.as_mut().map(Generator::step) {
        Some(Ok(_)) => 0,
        _ => -1,
    })
}

/// Sets up a `rows` × `cols` product of GGML type `ty` with pseudo-random blocks and `m`
/// activation rows. Returns 0, or -1 for a type without a kernel or a shape that is not whole
/// blocks.
#[no_mangle]
pub extern "C" fn mm_setup(ty: u32, rows: usize, cols: usize, m: usize) -> i32 {
    let Some(ty) = WeightType::from_ggml_id(ty) else {
        return -1;
    };
    if !cols.is_multiple_of(32) || rows == 0 || m == 0 {
        return -1;
    }
    let bb = ty.block_bytes();
    let mut data = vec![0u8; rows * cols / 32 * bb];
    let mut seed = 12345u32;
    for b in data.chunks_exact_mut(bb) {
        for v in b.iter_mut() {
            seed = seed.wrapping_mul(1664525).wrapping_add(1013904223);
            *v = (seed >> 24) as u8;
        }
        // Scale 2^-7 (f16 0x2000) and, for the `_1` types, minimum -2^-7 (0xa000): finite
        // values, so timing never meets NaN or infinities.
        b[..2].copy_from_slice(&[0x00, 0x20]);
        if ty.has_min() {
            b[2..4].copy_from_slice(&[0x00, 0xa0]);
        }
    }
    let Some(w) = QMatrix::new(ty, rows, cols, data) else {
        return -1;
    };
    let x: Vec<f32> = (0..m * cols)
        .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
        .collect();
    let mut a = QActivations::default();
    a.quantize(&x, m, cols);
    STATE.with_borrow_mut(|s| s.product = Some((w, a, vec![0f32; rows * m])));
    0
}

/// Runs the product set up by [`mm_setup`] `reps` times. Returns its first output (so the
/// work cannot be optimised away), or NaN when nothing is set up.
#[no_mangle]
pub extern "C" fn mm_run(reps: u32) -> f32 {
    STATE.with_borrow_mut(|s| match s.product.as_mut() {
        Some((w, a, out)) => {
            for _ in 0..reps {
                w.matmul(a, out);
            }
            out[0]
        }
        None => f32::NAN,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The exports work natively too: a product runs, bad shapes and types are refused, and
    /// a file that is not a model does not load.
    #[test]
    fn exports_refuse_bad_input_and_run_good_input() {
        assert_eq!(mm_setup(8, 64, 96, 1), 0, "Q8_0");
        assert!(mm_run(2).is_finite());
        assert_eq!(mm_setup(8, 64, 95, 1), -1, "partial block");
        assert_eq!(mm_setup(99, 64, 96, 1), -1, "unknown type");
        let p = alloc(16);
        assert!(!p.is_null());
        assert_eq!(load(), -1, "zeros are not a GGUF file");
        assert_eq!(step(), -1, "nothing loaded");
    }
}
