// Starts the engine worker: the build makes it a classic (no-modules) script; its wasm lies
// next to it. Kept as a file (not a blob URL) so the Content-Security-Policy needs no blob:.
//
// Two builds ship: `worker` (simd128) and `worker-relaxed` (simd128 + relaxed SIMD, whose
// integer dot product makes the 4- and 5-bit kernels faster). The relaxed one is used when this
// browser validates a module using `i32x4.relaxed_dot_i8x16_i7x16_add_s`; both compute the
// same bits.
const relaxedSimd = (() => {
    // (module (func (result v128) v128.const 0 v128.const 0 v128.const 0
    //   i32x4.relaxed_dot_i8x16_i7x16_add_s))
    const zero = () => [0xfd, 0x0c, ...new Array(16).fill(0)];
    const body = [0x00, ...zero(), ...zero(), ...zero(), 0xfd, 0x93, 0x02, 0x0b];
    const bytes = [
        0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
        0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7b,
        0x03, 0x02, 0x01, 0x00,
        0x0a, body.length + 2, 0x01, body.length, ...body,
    ];
    try {
        return WebAssembly.validate(new Uint8Array(bytes));
    } catch {
        return false;
    }
})();
// A third build, `worker-threads` (simd128 + relaxed SIMD + atomics, shared memory), spreads
// each matrix product over a pool of workers. Shared memory needs a cross-origin isolated page
// (served with `Cross-Origin-Opener-Policy: same-origin` and
// `Cross-Origin-Embedder-Policy: require-corp`), so it is used only then, with relaxed SIMD,
// and on a machine with more than one core.
const isolated = self.crossOriginIsolated === true;
const cores = navigator.hardwareConcurrency || 1;
const params = new URLSearchParams(self.location.search);
// `?build=plain|relaxed|threads` forces one (the browser tests compare them); `?threads=N`
// sets the pool's size (read by the threaded build itself).
const forced = params.get("build");
const threads = params.get("threads");
const name = forced === "plain" ? "worker"
    : forced === "relaxed" ? "worker-relaxed"
    : forced === "threads" ? "worker-threads"
    : isolated && relaxedSimd && cores > 1 && threads !== "1" ? "worker-threads"
    : relaxedSimd ? "worker-relaxed" : "worker";
importScripts(`./${name}.js`);
wasm_bindgen(`./${name}_bg.wasm`);
