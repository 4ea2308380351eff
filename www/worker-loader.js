// Starts the engine worker: Trunk builds it as a classic (no-modules) script; its wasm lies
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
// `?build=plain` or `?build=relaxed` forces one (the browser tests compare the two).
const forced = new URLSearchParams(self.location.search).get("build");
const name = forced === "plain" ? "worker"
    : forced === "relaxed" || (forced === null && relaxedSimd) ? "worker-relaxed" : "worker";
importScripts(`./${name}.js`);
wasm_bindgen(`./${name}_bg.wasm`);
