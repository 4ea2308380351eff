// One thread of the engine's pool (threaded build only). The engine worker posts the compiled
// module and its shared memory; this worker instantiates them, says "ready", then runs one of
// the pool's threads until the page closes. A failure is posted as text.
importScripts("./worker-threads.js");
self.onmessage = async (event) => {
    self.onmessage = null;
    const [module, memory] = event.data;
    try {
        await wasm_bindgen({ module_or_path: module, memory });
    } catch (e) {
        self.postMessage(String(e));
        return;
    }
    self.postMessage("ready");
    wasm_bindgen.omp_thread_run();
};
