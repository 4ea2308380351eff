//! The worker entry point: all the logic is in the library.
fn main() {
    omp_worker::start();
}
