// The benchmark page: `window.bench.omp(opts)` and `window.bench.wllama(opts)` load one model
// and run the same chat prompt greedily, a warm-up run and then `runs` measured runs, each with
// an empty prompt cache so that every run pays the full prefill. Both engines report their own
// prefill and decode rates (omp: the worker's GenStats; wllama: llama.cpp's timings).
import {Wllama} from "/wllama/esm/index.js";

const quiet = {debug() {}, log() {}, warn: console.warn, error: console.error};

/** The omp worker as the app starts it (`threads` sets its pool's size; on an isolated page
 * the loader picks the threaded build, which `build` can force), spoken to in the app's JSON
 * protocol. */
function ompWorker(threads, build) {
    const forced = build ? `&build=${build}` : "";
    const worker = new Worker(`/app/worker-loader.js?threads=${threads}${forced}`);
    const listeners = new Set();
    let wasmBytes = 0;
    worker.onmessage = (e) => {
        const ev = JSON.parse(e.data);
        if (ev.type === "memory") wasmBytes = Math.max(wasmBytes, ev.wasm_bytes);
        for (const l of [...listeners]) l(ev);
    };
    const next = (pred) => new Promise((resolve, reject) => {
        const l = (ev) => {
            if (ev.type === "failed") {
                listeners.delete(l);
                reject(new Error(ev.error.message));
            } else if (pred(ev)) {
                listeners.delete(l);
                resolve(ev);
            }
        };
        listeners.add(l);
    });
    /** Calls `fn` on every event until the returned function is called. */
    const on = (fn) => {
        listeners.add(fn);
        return () => listeners.delete(fn);
    };
    const send = (r) => worker.postMessage(JSON.stringify(r));
    return {next, on, send, wasmBytes: () => wasmBytes};
}

async function omp({model, runs, tokens, prompt, threads, build, convert}) {
    const w = ompWorker(threads, build);
    const ready = await w.next((e) => e.type === "ready");
    const loaded = w.next((e) => e.type === "loaded");
    w.send({
        type: "load",
        source: {url: model, label: model, sha256: null, bytes: null, kind: "url"},
        options: {context_length: 2048, convert: convert ?? "none"},
    });
    const info = await loaded;
    const results = [];
    for (let r = 0; r <= runs; r++) {
        const id = r + 1;
        const ids = [];
        const off = w.on((e) => {
            if (e.type === "token" && e.id === id) ids.push(e.token_id);
        });
        const done = w.next((e) => e.type === "finished" && e.id === id);
        w.send({type: "reset_cache"});
        w.send({
            type: "generate",
            id,
            messages: [{role: "user", content: prompt}],
            params: {temperature: 0, top_k: 0, top_p: 1, min_p: 0, repeat_penalty: 1, max_tokens: tokens, seed: 1},
        });
        const fin = await done.finally(off);
        const s = fin.stats;
        results.push({
            warmup: r === 0,
            prompt_tokens: s.prompt_tokens,
            generated_tokens: s.generated_tokens,
            prefill_tokens_per_s: s.prefill_tokens_per_s,
            decode_tokens_per_s: s.decode_tokens_per_s,
            ids: ids.slice(0, 16),
        });
    }
    // The worker reports its memory after each request; wait for the last report.
    await new Promise((r) => setTimeout(r, 100));
    return {
        engine: "omp",
        simd: ready.simd,
        relaxed_simd: ready.relaxed_simd,
        threads: ready.threads,
        build: build ?? null,
        load_ms: info.load_ms,
        wasm_bytes: w.wasmBytes(),
        file_bytes: info.info.file_bytes,
        runs: results,
    };
}

async function wllama({model, runs, tokens, prompt, threads}) {
    const w = new Wllama({default: "/wllama/esm/wasm/wllama.wasm"}, {logger: quiet, allowOffline: true});
    const t0 = performance.now();
    await w.loadModelFromUrl(new URL(model, location.href).href, {
        n_threads: threads,
        n_ctx: 2048,
        n_gpu_layers: 0,
        n_batch: 512,
    });
    const loadMs = performance.now() - t0;
    const results = [];
    for (let r = 0; r <= runs; r++) {
        const res = await w.createChatCompletion({
            messages: [{role: "user", content: prompt}],
            max_tokens: tokens,
            temperature: 0,
            seed: 1,
            cache_prompt: false,
        });
        const t = res.timings ?? {};
        results.push({
            warmup: r === 0,
            prompt_tokens: t.prompt_n,
            generated_tokens: t.predicted_n,
            prefill_tokens_per_s: t.prompt_per_second,
            decode_tokens_per_s: t.predicted_per_second,
            text: res.choices?.[0]?.message?.content?.slice(0, 80),
        });
    }
    return {
        engine: "wllama",
        threads,
        multithread: typeof w.isMultithread === "function" ? w.isMultithread() : null,
        load_ms: loadMs,
        runs: results,
    };
}

/** Fills a 2048-token context: a prompt of about 1800 tokens (`prompt` repeated), then greedy
 * tokens until the context is full. Reports the worker's wasm memory with every position
 * cached, the decode rate at that length, and the threads the worker used. */
async function ompFull({model, prompt, threads, kv_cache}) {
    const w = ompWorker(threads);
    const ready = await w.next((e) => e.type === "ready");
    const loaded = w.next((e) => e.type === "loaded");
    w.send({
        type: "load",
        source: {url: model, label: model, sha256: null, bytes: null, kind: "url"},
        options: {context_length: 2048, convert: "none", kv_cache},
    });
    const info = await loaded;
    const done = w.next((e) => e.type === "finished" && e.id === 1);
    w.send({
        type: "generate",
        id: 1,
        messages: [{role: "user", content: Array(150).fill(prompt).join(" ")}],
        params: {temperature: 0, top_k: 0, top_p: 1, min_p: 0, repeat_penalty: 1, max_tokens: 4096, seed: 1},
    });
    const fin = await done;
    await new Promise((r) => setTimeout(r, 100));
    return {
        engine: "omp",
        threads: ready.threads,
        kv_cache: info.info.kv_cache,
        reason: fin.reason,
        tokens: fin.stats.prompt_tokens + fin.stats.generated_tokens,
        prompt_tokens: fin.stats.prompt_tokens,
        prefill_tokens_per_s: fin.stats.prefill_tokens_per_s,
        decode_tokens_per_s: fin.stats.decode_tokens_per_s,
        kv_cache_bytes: info.info.memory.kv_cache_bytes,
        wasm_bytes: w.wasmBytes(),
        file_bytes: info.info.file_bytes,
    };
}

window.bench = {omp, ompFull, wllama, isolated: () => self.crossOriginIsolated === true};
document.body.dataset.ready = "true";
