//! Wall-clock time for statistics, supplied by the host: `std::time::Instant` panics on
//! wasm32-unknown-unknown, and the engine must not depend on web APIs, so the worker passes a
//! clock backed by `performance.now()` and native programs use [`MonotonicClock`].

use std::sync::Arc;

/// A source of milliseconds from an arbitrary origin.
pub trait Clock: Send + Sync {
    /// Milliseconds since the clock's origin.
    fn now_ms(&self) -> f64;
}

/// A shared clock handle.
pub type SharedClock = Arc<dyn Clock>;

/// A clock that always reads zero, for hosts without a timer (statistics read zero).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoClock;

impl Clock for NoClock {
    fn now_ms(&self) -> f64 {
        0.0
    }
}

/// `std::time::Instant`, for native hosts.
#[cfg(not(target_arch = "wasm32"))]
#[derive(Debug, Clone, Copy)]
pub struct MonotonicClock(std::time::Instant);

#[cfg(not(target_arch = "wasm32"))]
impl Default for MonotonicClock {
    fn default() -> Self {
        Self(std::time::Instant::now())
    }
}

#[cfg(not(target_arch = "wasm32"))]
impl Clock for MonotonicClock {
    fn now_ms(&self) -> f64 {
        self.0.elapsed().as_secs_f64() * 1000.0
    }
}

/// The best clock for the platform without host help: monotonic natively, none in wasm.
pub fn default_clock() -> SharedClock {
    #[cfg(not(target_arch = "wasm32"))]
    {
        Arc::new(MonotonicClock::default())
    }
    #[cfg(target_arch = "wasm32")]
    {
        Arc::new(NoClock)
    }
}
