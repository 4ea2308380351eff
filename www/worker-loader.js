// Starts the engine worker: Trunk builds it as a classic (no-modules) script; its wasm lies
// next to it. Kept as a file (not a blob URL) so the Content-Security-Policy needs no blob:.
importScripts("./worker.js");
wasm_bindgen("./worker_bg.wasm");
