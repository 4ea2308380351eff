//! Spreading matmul tiles over threads.
//!
//! The tiles go to [`Pool`], natively (helpers are std threads, see [`set_threads`]) and in the
//! threaded wasm build (`+atomics`; helpers are Web Workers). Why not rayon: it puts every idle
//! thread to sleep within microseconds, and waking one costs about as much as a whole
//! decode-sized matmul: in wasm (`Atomics.notify`) 2 threads decoded *slower* than 1
//! (docs/performance.md). In
//! [`Pool`] the helper threads spin on an epoch counter between matmuls (a token's matmuls are
//! microseconds apart) and park only after [`SPIN_CHECKS`] checks without work; the calling
//! thread takes tiles too, so nothing sleeps on the hot path. This is llama.cpp's scheme too.
//!
//! Tiles are claimed from a shared counter, and each writes its own chunk of the output, so the
//! result is bit for bit the same whatever the number of threads. A claim takes a run of
//! consecutive tiles (a share of those left, shrinking to one at the end; see [`claim_size`]).

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering::SeqCst};
use std::sync::{Condvar, Mutex};

/// Epoch checks a helper makes before parking (each is one atomic load: ~0.1–0.3 ms in all).
const SPIN_CHECKS: u32 = 200_000;

/// A value on its own cache line. Why: the counters that threads write on every claim
/// (`next`, `done`) would otherwise share a line with the epoch that idle helpers read in
/// their spin loop, and with each other.
#[repr(align(64))]
struct Line<T>(T);

impl<T> std::ops::Deref for Line<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// Tiles a claim takes when `left` are unclaimed and `threads` share them: an even share of
/// what is left, at least 1 ("guided" scheduling). Why runs and not single tiles: a thread then
/// reads long stretches of consecutive weight rows, which the memory prefetcher follows, and
/// makes few atomic claims (2-thread decode measurably faster, docs/performance.md). Why
/// shrinking: the last claims are single tiles, so no thread waits long for
/// another's last run.
pub fn claim_size(left: usize, threads: usize) -> usize {
    (left / threads.max(1)).max(1)
}

/// One published batch of tiles.
#[derive(Clone, Copy)]
struct Job {
    /// The caller's closure with its lifetime erased: valid until [`Pool::for_each`] returns,
    /// which waits for every tile, and only read by a helper while `active` counts it.
    f: *const (dyn Fn(usize) + Sync + 'static),
    total: usize,
}

/// A pool of helper threads that run [`Pool::run_helper`] and share the caller's tiles.
///
/// The epoch is odd while the caller writes a new job (helpers keep off it) and even once it is
/// published. A helper counts itself in `active` and re-reads the epoch before reading the job;
/// the caller writes a job only after making the epoch odd and seeing `active` at zero.
pub struct Pool {
    epoch: Line<AtomicU32>,
    active: AtomicUsize,
    /// The first unclaimed tile of the current job.
    next: Line<AtomicUsize>,
    /// Tiles of the current job that have finished.
    done: Line<AtomicUsize>,
    job: UnsafeCell<Option<Job>>,
    helpers: AtomicUsize,
    sleepers: AtomicUsize,
    /// A `for_each` is running (a second caller, which the engine never makes, runs serially).
    busy: AtomicBool,
    /// A tile of the current job panicked (natively; wasm aborts). Why caught: the other
    /// threads may still be running the caller's closure, so the caller must not unwind out of
    /// `for_each` before every tile is accounted for; it panics after that.
    panicked: AtomicBool,
    lock: Mutex<()>,
    wake: Condvar,
}

// SAFETY: `job` is written only by the caller that holds `busy`, while the epoch is odd and no
// helper is active; helpers read it only while counted in `active` under an even epoch.
unsafe impl Sync for Pool {}

impl Default for Pool {
    fn default() -> Self {
        Self::new()
    }
}

impl Pool {
    /// A pool with no helpers yet (everything runs on the calling thread).
    pub const fn new() -> Self {
        Self {
            epoch: Line(AtomicU32::new(0)),
            active: AtomicUsize::new(0),
            next: Line(AtomicUsize::new(0)),
            done: Line(AtomicUsize::new(0)),
            job: UnsafeCell::new(None),
            helpers: AtomicUsize::new(0),
            sleepers: AtomicUsize::new(0),
            busy: AtomicBool::new(false),
            panicked: AtomicBool::new(false),
            lock: Mutex::new(()),
            wake: Condvar::new(),
        }
    }

    /// Threads working on a `for_each`: the caller and the helpers that have started.
    pub fn threads(&self) -> usize {
        1 + self.helpers.load(SeqCst)
    }

    /// The body of a helper thread: takes tiles of every job published from now on. Never
    /// returns.
    pub fn run_helper(&self) -> ! {
        self.helpers.fetch_add(1, SeqCst);
        let mut seen = self.epoch.load(SeqCst);
        loop {
            seen = self.next_epoch(seen);
            if seen % 2 == 1 {
                continue;
            }
            self.active.fetch_add(1, SeqCst);
            if self.epoch.load(SeqCst) == seen {
                // SAFETY: see `Pool`: the job of an even epoch stays put while we are active.
                if let Some(job) = unsafe { *self.job.get() } {
                    // SAFETY: the caller waits for every tile before its closure goes away.
                    self.work(unsafe { &*job.f }, job.total);
                }
            }
            self.active.fetch_sub(1, SeqCst);
        }
    }

    /// Waits until the epoch differs from `seen`: spinning first, then parked.
    fn next_epoch(&self, seen: u32) -> u32 {
        for _ in 0..SPIN_CHECKS {
            let e = self.epoch.load(SeqCst);
            if e != seen {
                return e;
            }
            std::hint::spin_loop();
        }
        let mut guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        self.sleepers.fetch_add(1, SeqCst);
        let e = loop {
            let e = self.epoch.load(SeqCst);
            if e != seen {
                break e;
            }
            guard = self.wake.wait(guard).unwrap_or_else(|p| p.into_inner());
        };
        self.sleepers.fetch_sub(1, SeqCst);
        e
    }

    /// Claims runs of tiles (see [`claim_size`]) and runs them until none are left; then
    /// counts them as done, once.
    fn work(&self, f: &(dyn Fn(usize) + Sync), total: usize) {
        let threads = self.threads();
        let mut ran = 0;
        let mut first = self.next.load(SeqCst);
        while first < total {
            let take = claim_size(total - first, threads);
            match self
                .next
                .compare_exchange_weak(first, first + take, SeqCst, SeqCst)
            {
                Ok(_) => {
                    let run = || (first..first + take).for_each(f);
                    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)).is_err() {
                        self.panicked.store(true, SeqCst);
                    }
                    ran += take;
                    first = self.next.load(SeqCst);
                }
                Err(now) => first = now,
            }
        }
        if ran > 0 {
            self.done.fetch_add(ran, SeqCst);
        }
    }

    /// Calls `f(t)` for every `t < total`, on this thread and the helpers; returns when all
    /// calls have returned.
    pub fn for_each(&self, total: usize, f: &(dyn Fn(usize) + Sync)) {
        if total < 2 || self.helpers.load(SeqCst) == 0 || self.busy.swap(true, SeqCst) {
            (0..total).for_each(f);
            return;
        }
        // Odd: helpers keep off the job while it is rewritten.
        let odd = self.epoch.fetch_add(1, SeqCst).wrapping_add(1);
        while self.active.load(SeqCst) != 0 {
            std::hint::spin_loop();
        }
        // SAFETY: only the `busy` holder writes the lifetime-erased pointer; it is read only
        // until this call returns (below, after every tile is done).
        let erased: *const (dyn Fn(usize) + Sync + 'static) =
            unsafe { std::mem::transmute::<*const (dyn Fn(usize) + Sync + '_), _>(f as *const _) };
        // SAFETY: the epoch is odd and no helper is active (see `Pool`).
        unsafe { *self.job.get() = Some(Job { f: erased, total }) };
        self.next.store(0, SeqCst);
        self.done.store(0, SeqCst);
        self.epoch.store(odd.wrapping_add(1), SeqCst);
        if self.sleepers.load(SeqCst) > 0 {
            let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
            self.wake.notify_all();
        }
        self.work(f, total);
        while self.done.load(SeqCst) < total {
            std::hint::spin_loop();
        }
        let panicked = self.panicked.swap(false, SeqCst);
        self.busy.store(false, SeqCst);
        assert!(!panicked, "a tile of a pool job panicked (its message is above)");
    }
}

/// The engine's pool. In the threaded wasm build its helpers are Web Workers started by the
/// worker crate, each calling [`run_helper`]; natively they are std threads started on first
/// use (see [`set_threads`]).
#[cfg(any(not(target_arch = "wasm32"), target_feature = "atomics"))]
static POOL: Pool = Pool::new();

/// Runs a helper thread of the engine's pool (threaded wasm build); never returns.
#[cfg(all(target_arch = "wasm32", target_feature = "atomics"))]
pub fn run_helper() -> ! {
    POOL.run_helper()
}

/// Threads asked for with [`set_threads`] (0: the machine's parallelism).
#[cfg(not(target_arch = "wasm32"))]
static WANTED: AtomicUsize = AtomicUsize::new(0);

/// Natively, sets how many threads (the caller and its helpers) the engine computes with. It
/// takes effect only before the first product spreads over threads (the helpers then start
/// and stay). Without it the engine uses the machine's parallelism.
#[cfg(not(target_arch = "wasm32"))]
pub fn set_threads(n: usize) {
    WANTED.store(n.max(1), SeqCst);
}

#[cfg(not(target_arch = "wasm32"))]
static NATIVE_START: std::sync::Once = std::sync::Once::new();

/// The native pool, its helpers started on the first call.
#[cfg(not(target_arch = "wasm32"))]
fn pool() -> &'static Pool {
    NATIVE_START.call_once(|| {
        let n = match WANTED.load(SeqCst) {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let mut started = 0;
        for i in 1..n {
            let spawned = std::thread::Builder::new()
                .name(format!("omp-pool-{i}"))
                .spawn(|| POOL.run_helper());
            if spawned.is_err() {
                break;
            }
            started += 1;
        }
        // Helpers count themselves as they start: wait, so that `threads` is right at once.
        while POOL.threads() < 1 + started {
            std::thread::yield_now();
        }
    });
    &POOL
}

/// The threaded wasm build's pool (helpers started by the worker crate).
#[cfg(all(target_arch = "wasm32", target_feature = "atomics"))]
fn pool() -> &'static Pool {
    &POOL
}

/// Threads the engine computes with: the pool's natively and in the threaded wasm build, else 1.
pub fn threads() -> usize {
    #[cfg(any(not(target_arch = "wasm32"), target_feature = "atomics"))]
    {
        pool().threads()
    }
    #[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
    {
        1
    }
}

/// Runs `tile(t)` for every `t < total`: on the pool's threads where there is a pool.
fn run_tiles(total: usize, tile: &(dyn Fn(usize) + Sync)) {
    #[cfg(any(not(target_arch = "wasm32"), target_feature = "atomics"))]
    pool().for_each(total, tile);
    #[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
    (0..total).for_each(tile);
}

/// A pointer to the output that tiles may share: each writes only its own chunk.
struct Shared(*mut f32);

// SAFETY: chunks given to different tiles never overlap (see `for_each_chunk`).
unsafe impl Sync for Shared {}

impl Shared {
    fn get(&self) -> *mut f32 {
        self.0
    }
}

/// Calls `f(t, chunk)` for each `chunk`-long piece `t` of `out` (the last may be shorter),
/// spread over the engine's threads when there are several.
pub fn for_each_chunk(out: &mut [f32], chunk: usize, f: &(dyn Fn(usize, &mut [f32]) + Sync)) {
    for_each_chunk_of([out], chunk, &|_, t, o| f(t, o));
}

/// Calls `f(i, t, chunk)` for each `chunk`-long piece `t` of each `outs[i]` (the last piece of
/// each may be shorter), as one job for the engine's threads. Why one job: a decode step's
/// small products (a key or value projection is three tiles) leave a thread idle when
/// dispatched alone, and each dispatch has a fixed cost; together their tiles balance.
pub fn for_each_chunk_of<const N: usize>(
    outs: [&mut [f32]; N],
    chunk: usize,
    f: &(dyn Fn(usize, usize, &mut [f32]) + Sync),
) {
    let chunk = chunk.max(1);
    let total: usize = outs.iter().map(|o| o.len().div_ceil(chunk)).sum();
    if total < 2 || threads() < 2 {
        for (i, out) in outs.into_iter().enumerate() {
            out.chunks_mut(chunk).enumerate().for_each(|(t, o)| f(i, t, o));
        }
        return;
    }
    let lens = outs.each_ref().map(|o| o.len());
    let bases = outs.map(|o| Shared(o.as_mut_ptr()));
    let tile = |t: usize| {
        // Tile `t` of the whole job is tile `t` of the first output that still has tiles.
        let (mut i, mut t) = (0, t);
        while t >= lens[i].div_ceil(chunk) {
            t -= lens[i].div_ceil(chunk);
            i += 1;
        }
        let start = t * chunk;
        let end = (start + chunk).min(lens[i]);
        // SAFETY: tile `t` of output `i` exists (the job has `total` tiles), so
        // `start..end` lies in `outs[i]`; tiles are disjoint and the outputs are distinct
        // `&mut` slices.
        let o = unsafe { std::slice::from_raw_parts_mut(bases[i].get().add(start), end - start) };
        f(i, t, o);
    };
    run_tiles(total, &tile);
}

/// The work of one tile of [`for_each_chunk_pair`]: tile number and its pieces of both outputs.
pub type PairTile<'a> = dyn Fn(usize, &mut [f32], &mut [f32]) + Sync + 'a;

/// Calls `f(t, a_chunk, b_chunk)` with the `chunk`-long pieces `t` of `a` and of `b` (the same
/// length; the last pieces may be shorter), spread over the engine's threads when there are
/// several. Why: a step that needs the same rows of two outputs (decode's gate and up
/// products, then SiLU) runs as one tile instead of after a second dispatch.
pub fn for_each_chunk_pair(a: &mut [f32], b: &mut [f32], chunk: usize, f: &PairTile<'_>) {
    assert_eq!(a.len(), b.len(), "paired outputs differ in length");
    let chunk = chunk.max(1);
    let total = a.len().div_ceil(chunk);
    if total < 2 || threads() < 2 {
        for (t, (x, y)) in a.chunks_mut(chunk).zip(b.chunks_mut(chunk)).enumerate() {
            f(t, x, y);
        }
        return;
    }
    let len = a.len();
    let (pa, pb) = (Shared(a.as_mut_ptr()), Shared(b.as_mut_ptr()));
    let tile = |t: usize| {
        let start = t * chunk;
        let end = (start + chunk).min(len);
        // SAFETY: `t < total`, so `start..end` lies in both slices (equal lengths); tiles
        // are disjoint and `a`, `b` are distinct `&mut` slices.
        let (x, y) = unsafe {
            (
                std::slice::from_raw_parts_mut(pa.get().add(start), end - start),
                std::slice::from_raw_parts_mut(pb.get().add(start), end - start),
            )
        };
        f(t, x, y);
    };
    run_tiles(total, &tile);
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    /// Many small jobs back to back on a pool with two helpers, with pauses that let the
    /// helpers park: every tile runs exactly once per job, and each job's writes are complete
    /// when `for_each` returns.
    #[test]
    fn every_tile_runs_once_per_job_across_spinning_and_parked_helpers() {
        let pool: &'static Pool = Box::leak(Box::new(Pool::new()));
        for _ in 0..2 {
            std::thread::spawn(move || pool.run_helper());
        }
        while pool.threads() < 3 {
            std::thread::yield_now();
        }
        let counts: Vec<AtomicU64> = (0..97).map(|_| AtomicU64::new(0)).collect();
        for job in 0..2000u64 {
            let total = 1 + (job as usize * 7) % 97;
            pool.for_each(total, &|t| {
                counts[t].fetch_add(job + 1, SeqCst);
            });
            for (t, c) in counts.iter().enumerate() {
                let want = if t < total { job + 1 } else { 0 };
                assert_eq!(c.swap(0, SeqCst), want, "job {job}, tile {t}");
            }
            if job % 500 == 499 {
                // Both helpers stop spinning and park (the next job must wake them).
                let t0 = std::time::Instant::now();
                while pool.sleepers.load(SeqCst) < 2 {
                    assert!(t0.elapsed().as_secs() < 60, "helpers never parked");
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
            }
        }
    }

    /// Claims shrink to single tiles and, taken one after another, cover a job exactly; alone,
    /// a thread takes the whole job at once.
    #[test]
    fn claims_shrink_to_one_tile_and_cover_the_job() {
        assert_eq!(claim_size(1536, 1), 1536);
        for threads in 2..=4 {
            for total in [1, 2, 3, 18, 48, 1536] {
                let (mut first, mut sizes) = (0, vec![]);
                while first < total {
                    let take = claim_size(total - first, threads);
                    assert!(
                        take >= 1 && first + take <= total,
                        "{threads} threads, {total} tiles"
                    );
                    sizes.push(take);
                    first += take;
                }
                assert_eq!(first, total);
                assert_eq!(
                    sizes.last(),
                    Some(&1),
                    "{threads} threads, {total} tiles: {sizes:?}"
                );
                assert!(sizes.windows(2).all(|w| w[0] >= w[1]), "{sizes:?}");
            }
        }
        // A decode step's output product: far fewer claims than tiles.
        let (mut left, mut claims) = (1536, 0);
        while left > 0 {
            left -= claim_size(left, 2);
            claims += 1;
        }
        assert!(claims < 20, "{claims} claims for 1536 tiles");
    }

    /// Regression: natively a panicking tile used to be able to unwind the caller out of
    /// `for_each` while a helper still ran its closure. Now the job finishes, then the caller
    /// panics, and the pool takes the next job as usual.
    #[test]
    fn a_panicking_tile_fails_its_job_after_every_tile_and_leaves_the_pool_working() {
        let pool: &'static Pool = Box::leak(Box::new(Pool::new()));
        std::thread::spawn(move || pool.run_helper());
        while pool.threads() < 2 {
            std::thread::yield_now();
        }
        for bad in [0, 5, 63] {
            let ran = AtomicU64::new(0);
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                pool.for_each(64, &|t| {
                    ran.fetch_add(1, SeqCst);
                    assert_ne!(t, bad, "tile {t} fails on purpose");
                });
            }));
            assert!(result.is_err(), "the job with tile {bad} failing did not panic");
            assert!(
                !pool.busy.load(SeqCst),
                "the pool stayed busy after the failed job"
            );
            // Only the rest of the failing tile's run (at most half the job) is skipped.
            assert!(ran.load(SeqCst) >= 33, "{} tiles ran", ran.load(SeqCst));
            let sum = AtomicU64::new(0);
            pool.for_each(64, &|t| {
                sum.fetch_add(t as u64, SeqCst);
            });
            assert_eq!(sum.load(SeqCst), 64 * 63 / 2);
        }
    }

    /// With no helpers the caller runs every tile itself.
    #[test]
    fn a_pool_without_helpers_runs_on_the_caller() {
        let pool = Pool::new();
        let sum = AtomicU64::new(0);
        pool.for_each(10, &|t| {
            sum.fetch_add(t as u64, SeqCst);
        });
        assert_eq!(sum.load(SeqCst), 45);
        assert_eq!(pool.threads(), 1);
    }

    /// `for_each_chunk_of` covers each output once, tile numbers counted per output.
    #[test]
    fn chunks_of_several_outputs_cover_each_once() {
        let (mut a, mut b, mut c) = (vec![0f32; 130], vec![0f32; 64], vec![0f32; 5]);
        for_each_chunk_of([&mut a, &mut b, &mut c], 64, &|i, t, o| {
            for v in o.iter_mut() {
                *v += (1 + i * 10 + t) as f32;
            }
        });
        for (i, out) in [a, b, c].iter().enumerate() {
            for (k, v) in out.iter().enumerate() {
                assert_eq!(*v, (1 + i * 10 + k / 64) as f32, "output {i}, element {k}");
            }
        }
    }

    /// `for_each_chunk_pair` gives tile `t` the same rows of both outputs, each once.
    #[test]
    fn chunk_pairs_cover_both_outputs_once_and_line_up() {
        let (mut a, mut b) = (vec![0f32; 100], vec![0f32; 100]);
        for_each_chunk_pair(&mut a, &mut b, 32, &|t, x, y| {
            assert_eq!(x.len(), y.len());
            assert!(x.len() == 32 || (t == 3 && x.len() == 4));
            for (x, y) in x.iter_mut().zip(y.iter_mut()) {
                *x += 1.0 + t as f32;
                *y += 2.0 + t as f32;
            }
        });
        for i in 0..100 {
            assert_eq!(
                (a[i], b[i]),
                (1.0 + (i / 32) as f32, 2.0 + (i / 32) as f32),
                "row {i}"
            );
        }
    }

    /// `for_each_chunk` hands out disjoint chunks covering the output, the last one short.
    #[test]
    fn chunks_cover_the_output_once() {
        let mut out = vec![0f32; 1000];
        for_each_chunk(&mut out, 64, &|t, o| {
            assert!(o.len() == 64 || (t == 15 && o.len() == 1000 - 15 * 64));
            for v in o.iter_mut() {
                *v += 1.0 + t as f32;
            }
        });
        for (i, v) in out.iter().enumerate() {
            assert_eq!(*v, 1.0 + (i / 64) as f32, "element {i}");
        }
    }
}
