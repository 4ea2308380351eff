//! Parsing a GGUF file never allocates more than a small multiple of the file's size, whatever
//! its counts and lengths claim: measured with a counting global allocator over the bundled
//! model, a tiny model, and thousands of corrupted versions of it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use omp_engine::fixtures::{tiny_llama, TinyConfig, TinyVocab};
use omp_engine::gguf::Gguf;

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = CURRENT.fetch_add(layout.size(), Ordering::SeqCst) + layout.size();
            PEAK.fetch_max(now, Ordering::SeqCst);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        CURRENT.fetch_sub(layout.size(), Ordering::SeqCst);
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Bytes allocated at the peak of parsing `bytes`, above what was allocated before.
fn parse_peak(bytes: &[u8]) -> (usize, bool) {
    let base = CURRENT.load(Ordering::SeqCst);
    PEAK.store(base, Ordering::SeqCst);
    let ok = Gguf::parse(bytes).is_ok();
    (PEAK.load(Ordering::SeqCst) - base, ok)
}

fn bundled() -> Vec<u8> {
    let path = std::env::var_os("OMP_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../public/models/SmolLM2-135M-Instruct.Q4_1.gguf")
        });
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}; run `cargo xtask models` first", path.display()))
}

/// One test, so no other test's allocations run concurrently with a measurement.
#[test]
fn parse_memory_stays_within_a_small_multiple_of_the_file() {
    // The real model: its metadata (49 152 tokens and 48 900 merges) is most of what is kept.
    let real = bundled();
    let (peak, ok) = parse_peak(&real);
    assert!(ok, "the bundled model parses");
    let header_end = 4 * 1024 * 1024; // the vocabulary and tensor table lie in the first 4 MiB
    println!(
        "bundled model: {} bytes, parse peak {} bytes ({:.3}x the file)",
        real.len(),
        peak,
        peak as f64 / real.len() as f64
    );
    assert!(peak < 8 * header_end, "parse peak {peak} for the bundled model");

    // Tiny models, then every truncation and many corruptions of one of them: the peak stays
    // within 4x the file (+64 KiB of fixed overhead), whatever a corrupted count claims.
    let mut worst = 0.0f64;
    let mut tried = 0usize;
    let mut rejected = 0usize;
    for vocab in [TinyVocab::Bpe, TinyVocab::Spm] {
        let bytes = tiny_llama(&TinyConfig {
            vocab,
            ..Default::default()
        })
        .to_bytes();
        let header = bytes.len().min(8192);
        let mut check = |case: &[u8]| {
            let (peak, ok) = parse_peak(case);
            tried += 1;
            rejected += usize::from(!ok);
            let limit = 4 * case.len() + (64 << 10);
            assert!(
                peak <= limit,
                "a {}-byte file took {peak} bytes to parse",
                case.len()
            );
            if case.len() == bytes.len() {
                worst = worst.max(peak as f64 / case.len() as f64);
            }
        };
        check(&bytes);
        for cut in 0..header {
            check(&bytes[..cut]);
        }
        // Every header byte set to 0xFF, 0x7F and 0x80 in turn: lengths and counts become huge.
        for pos in 0..header {
            for v in [0xFF, 0x7F, 0x80] {
                let mut b = bytes.clone();
                b[pos] = v;
                check(&b);
            }
        }
    }
    println!(
        "{tried} files parsed or rejected ({rejected} rejected); worst peak for a full-length corrupted file {worst:.2}x its size"
    );
}
