// The playground in headless Chromium: the bundled model loads and answers, matches the
// native engine token for token, stops promptly, never blocks the page, loads from the cache
// on the next visit, survives bad files, and reproduces a shared link.
import {execFileSync} from "node:child_process";
import {readFileSync, statSync} from "node:fs";
import {
    BASE, withBrowser, collectErrors, waitForStatus, waitForAnswer, ask, setParam, assert, assertEq,
} from "./harness.mjs";

const MODEL = process.env.OMP_MODEL;
/** Gemma 3 270M (base, Q4_K_M): the second local model, another architecture and K-quants. */
const GEMMA = process.env.OMP_GEMMA3_MODEL;
/** The app served with COOP/COEP, as `cargo xtask serve` does. */
const ISOLATED = process.env.OMP_ISOLATED_URL;
const OMP = process.env.OMP_BIN ?? "target/release/omp";
const GREEDY_PROMPT = "What is an open model?";

/** What `omp generate` produces natively for the same request (`convert`: with load-time
 * conversion of slow weight types, which the app does only when asked, `?convert=1`). */
function nativeGreedy(prompt, maxTokens, convert = false, extra = [], model = MODEL, chat = true) {
    const args = ["generate", model, ...(chat ? ["--chat"] : []), "--prompt", prompt, "--temperature", "0", "--max-tokens", String(maxTokens), "--json", ...extra];
    if (convert) args.push("--convert");
    return JSON.parse(execFileSync(OMP, args, {encoding: "utf8"})).ids;
}

/** Runs in the page: starts the engine worker at `url`, loads `file` (the bundled model unless
 * named) without conversion and answers `prompt` greedily with 24 tokens; returns the worker's
 * Ready flags and the token ids. */
const workerGreedy = ({url, prompt, file = "models/SmolLM2-135M-Instruct.Q4_1.gguf"}) => new Promise((resolve, reject) => {
    const w = new Worker(url);
    const out = {ids: []};
    const send = (r) => w.postMessage(JSON.stringify(r));
    w.onerror = (e) => reject(new Error(`${url}: ${e.message}`));
    w.onmessage = (e) => {
        const ev = JSON.parse(e.data);
        if (ev.type === "ready") {
            out.relaxed = ev.relaxed_simd;
            out.threads = ev.threads;
            send({type: "load", options: {context_length: 2048, convert: "none"}, source: {
                url: file, label: url, sha256: null, bytes: null, kind: "url"}});
        } else if (ev.type === "loaded") {
            send({type: "generate", id: 1, messages: [{role: "user", content: prompt}],
                params: {temperature: 0, top_k: 0, top_p: 1, min_p: 0, max_tokens: 24}});
        } else if (ev.type === "token") {
            out.ids.push(ev.token_id);
        } else if (ev.type === "finished") {
            w.terminate();
            resolve(out);
        } else if (ev.type === "failed") {
            reject(new Error(`${url}: ${ev.error.message}`));
        }
    };
});

/** Records the longest main-thread task and the longest gap between animation frames. */
const PROBE = () => {
    window.__omp_longest = 0;
    window.__omp_gap = 0;
    new PerformanceObserver((list) => {
        for (const e of list.getEntries()) window.__omp_longest = Math.max(window.__omp_longest, e.duration);
    }).observe({type: "longtask", buffered: false});
    let last = 0;
    const tick = (t) => {
        if (last && window.__omp_measure) window.__omp_gap = Math.max(window.__omp_gap, t - last);
        last = t;
        requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
};

export const tests = [
    ["the bundled model loads and answers", () => withBrowser(async (ctx) => {
        const page = await ctx.newPage();
        const errors = collectErrors(page);
        await page.goto(BASE);
        await waitForStatus(page, "ready");
        const summary = await page.getByTestId("model-summary").textContent();
        assert(summary.includes("SmolLM2") || summary.includes("Smollm2"), `model summary: ${summary}`);
        await ask(page, "Hello! Who are you?");
        const {text, ids} = await waitForAnswer(page);
        assert(ids.length > 0 && text.trim().length > 0, `an answer: ${JSON.stringify(text)}`);
        const stats = await page.getByTestId("stats").textContent();
        assert(/Decode\s*[\d.]+ tokens\/s/.test(stats), `stats show decode speed: ${stats}`);
        assert(errors.length === 0, `no page errors: ${errors.join("\n")}`);
    })],

    ["greedy output in the browser equals omp generate natively", () => withBrowser(async (ctx) => {
        const page = await ctx.newPage();
        const q = new URLSearchParams({prompt: GREEDY_PROMPT, temperature: "0", max_tokens: "32", autorun: "1"});
        await page.goto(`${BASE}?${q}`);
        const browser = (await waitForAnswer(page)).ids;
        const native = nativeGreedy(GREEDY_PROMPT, 32);
        assertEq(browser, native, "token ids, browser vs native (no conversion, the default)");
        assert(browser.length > 0, "tokens were generated");
    })],

    ["greedy output matches natively with load-time conversion too", () => withBrowser(async (ctx) => {
        const page = await ctx.newPage();
        const q = new URLSearchParams({prompt: GREEDY_PROMPT, temperature: "0", max_tokens: "32", autorun: "1", convert: "1"});
        await page.goto(`${BASE}?${q}`);
        const browser = (await waitForAnswer(page)).ids;
        assertEq(browser, nativeGreedy(GREEDY_PROMPT, 32, true), "token ids, browser vs native (convert on)");
    })],

    ["a link asking for a Q8_0 key/value cache gets one, and the native engine's tokens with it", () => withBrowser(async (ctx) => {
        const page = await ctx.newPage();
        const q = new URLSearchParams({prompt: GREEDY_PROMPT, temperature: "0", max_tokens: "32", autorun: "1", kv_cache: "q8_0"});
        await page.goto(`${BASE}?${q}`);
        const browser = (await waitForAnswer(page)).ids;
        assertEq(browser, nativeGreedy(GREEDY_PROMPT, 32, false, ["--kv-cache", "q8_0"]), "token ids, browser vs native (Q8_0 cache)");
        assert(await page.getByTestId("compact-kv").isChecked(), "the cache setting shows the link's choice");
        const stats = await page.getByTestId("stats").textContent();
        assert(/key\/value cache Q8_0/.test(stats), `the statistics name the cache type: ${stats}`);
        // The checkbox drives the setting, which a copied link carries.
        const copied = async () => {
            await page.getByTestId("copy-link").click();
            return page.getByTestId("link").inputValue();
        };
        assert((await copied()).includes("kv_cache=q8_0"), "a copied link keeps the Q8_0 cache");
        await page.getByTestId("compact-kv").uncheck();
        assert(!(await copied()).includes("kv_cache"), "unchecked, the link asks for the default cache");
    })],

    ["both single-threaded worker builds (simd128, and relaxed SIMD) answer with the native engine's tokens", () => withBrowser(async (ctx) => {
        const page = await ctx.newPage();
        await page.goto(BASE);
        // Two more workers, one per build, forced with `worker-loader.js?build=`; each loads the
        // bundled file without conversion and answers the same greedy chat prompt.
        const plain = await page.evaluate(workerGreedy, {url: "worker-loader.js?build=plain", prompt: GREEDY_PROMPT});
        const relaxed = await page.evaluate(workerGreedy, {url: "worker-loader.js?build=relaxed", prompt: GREEDY_PROMPT});
        assertEq([plain.relaxed, relaxed.relaxed], [false, true], "each build says which it is");
        assertEq([plain.threads, relaxed.threads], [1, 1], "threads");
        const native = nativeGreedy(GREEDY_PROMPT, 24, false);
        assert(native.length > 0, "native tokens");
        assertEq(plain.ids, native, "simd128 build vs native");
        assertEq(relaxed.ids, native, "relaxed-SIMD build vs native");
    })],

    ["on a cross-origin isolated page the threaded build computes on 2 threads with the native engine's tokens", () => withBrowser(async (ctx) => {
        const page = await ctx.newPage();
        await page.goto(ISOLATED);
        assert(await page.evaluate(() => self.crossOriginIsolated), "the page is cross-origin isolated");
        // The loader picks the threaded build by itself; `threads=2` pins the pool's size.
        const run = await page.evaluate(workerGreedy, {url: "worker-loader.js?threads=2", prompt: GREEDY_PROMPT});
        assertEq(run.threads, 2, "threads the worker reports");
        assertEq(run.ids, nativeGreedy(GREEDY_PROMPT, 24, false), "threaded build vs native");
        // The app itself, as deployed with isolation: its Statistics panel shows the threads.
        const cores = await page.evaluate(() => navigator.hardwareConcurrency);
        await waitForStatus(page, "ready");
        const shown = await page.getByTestId("threads").textContent();
        assertEq(shown, String(cores > 1 ? Math.min(cores, 4) : 1), "threads in the Statistics panel");
        // A page that is not isolated gets one thread even when asking for two.
        const plain = await ctx.newPage();
        await plain.goto(BASE);
        const single = await plain.evaluate(workerGreedy, {url: "worker-loader.js?threads=2", prompt: GREEDY_PROMPT});
        assertEq(single.threads, 1, "threads without isolation");
    })],

    ["Gemma 3 270M (gemma3, K-quants, a base model) continues text with the native engine's tokens, in the app and all three worker builds", () => withBrowser(async (ctx) => {
        const file = "models/gemma-3-270m-q4_k_m.gguf";
        const prompt = "Monday, Tuesday, Wednesday,";
        // A base model continues the text itself: `omp generate` without `--chat`.
        const native = nativeGreedy(prompt, 24, false, [], GEMMA, false);
        assert(native.length > 0, "native tokens");
        const page = await ctx.newPage();
        // In the app, from the catalogue: it says it is a base model, and continues the text.
        const q = new URLSearchParams({model: "gemma-3-270m-q4_k_m", prompt, temperature: "0", max_tokens: "24", autorun: "1"});
        await page.goto(`${BASE}?${q}`);
        const app = await waitForAnswer(page);
        const seen = await page.locator(".prompt-view pre").textContent();
        assertEq(seen, prompt, "the model saw the text itself, no chat turns");
        assertEq(app.ids, native, "the app vs native");
        assert(await page.getByTestId("base-model").isVisible(), "the app says it is a base model");
        // Its architecture, from the file: one key/value head for four query heads, sliding windows.
        await page.locator('[data-testid="architecture"] summary').click();
        const arch = await page.getByTestId("architecture").textContent();
        for (const want of ["gemma3", "MQA", "4 query heads, 1 key/value heads", "512 positions, on 15 of 18 layers", "262144"]) {
            assert(arch.includes(want), `architecture panel has ${JSON.stringify(want)}: ${arch}`);
        }
        assertEq(await page.locator('[data-testid="architecture"] svg rect').count(), 5, "four query heads and one key/value head drawn");
        assert(app.text.includes("Thursday"), `it continues the text: ${JSON.stringify(app.text)}`);
        for (const build of ["plain", "relaxed"]) {
            const run = await page.evaluate(workerGreedy, {url: `worker-loader.js?build=${build}`, prompt, file});
            assertEq(run.ids, native, `${build} build vs native`);
        }
        const isolated = await ctx.newPage();
        await isolated.goto(ISOLATED);
        const run = await isolated.evaluate(workerGreedy, {url: "worker-loader.js?threads=2", prompt, file});
        assertEq(run.threads, 2, "threads the worker reports");
        assertEq(run.ids, native, "threaded build vs native");
    })],

    ["Stop halts generation within 300 ms and the next prompt works", () => withBrowser(async (ctx) => {
        const page = await ctx.newPage();
        await page.goto(BASE);
        await waitForStatus(page, "ready");
        await setParam(page, "max_tokens", 1000);
        await ask(page, "Write a very long story about a lighthouse keeper.");
        await page.waitForFunction(() => (document.querySelector('[data-testid="output"]')?.dataset.tokenIds ?? "").split(",").length >= 5, null, {timeout: 120_000});
        const elapsed = await page.evaluate(() => new Promise((resolve) => {
            const t0 = performance.now();
            document.querySelector('[data-testid="stop"]').click();
            const check = () => {
                if (document.querySelector('[data-testid="status"]').textContent !== "generating") resolve(performance.now() - t0);
                else requestAnimationFrame(check);
            };
            check();
        }));
        assert(elapsed <= 300, `stopped after ${elapsed.toFixed(0)} ms`);
        const stopped = (await page.getByTestId("stats").textContent());
        assert(stopped.includes("stopped"), `stats say stopped: ${stopped}`);
        await setParam(page, "max_tokens", 8);
        await ask(page, "Say hi.");
        const {ids} = await waitForAnswer(page);
        assert(ids.length > 0 && ids.length <= 8, `the next prompt works (${ids.length} tokens)`);
    })],

    ["the main thread is never blocked for more than 100 ms", () => withBrowser(async (ctx) => {
        const page = await ctx.newPage();
        await page.addInitScript(PROBE);
        await page.goto(BASE);
        // Measure from the moment the app is up: model download, build and generation.
        await page.waitForSelector('[data-testid="status"]');
        await page.evaluate(() => { window.__omp_longest = 0; window.__omp_gap = 0; window.__omp_measure = true; });
        await waitForStatus(page, "ready");
        await setParam(page, "max_tokens", 48);
        await ask(page, "Tell me about open models.");
        await waitForAnswer(page);
        const {longest, gap} = await page.evaluate(() => ({longest: window.__omp_longest, gap: window.__omp_gap}));
        console.log(`      longest main-thread task ${longest.toFixed(0)} ms, longest frame gap ${gap.toFixed(0)} ms`);
        assert(longest <= 100, `a main-thread task took ${longest.toFixed(0)} ms`);
    })],

    ["a reload takes the model from the cache, with no request for it", () => withBrowser(async (ctx) => {
        const page = await ctx.newPage();
        await page.goto(BASE);
        await waitForStatus(page, "ready");
        const modelRequests = [];
        page.on("request", (r) => { if (r.url().includes("/models/")) modelRequests.push(r.url()); });
        await page.reload();
        await waitForStatus(page, "ready");
        const summary = await page.getByTestId("model-summary").textContent();
        assert(summary.includes("from the browser cache"), `loaded from cache: ${summary}`);
        assertEq(modelRequests, [], "model requests after reload");
        const cache = await page.getByTestId("cache").textContent();
        assert(cache.includes("SmolLM2-135M-Instruct.Q4_1.gguf"), `cache panel lists the model: ${cache}`);
        // Regression: the cached copy was read into a buffer grown by doubling, so a load from
        // the cache peaked at about twice the file (205 MB of wasm memory for the 98 MB model,
        // against 113 MB for a download).
        const file = statSync(MODEL).size;
        // The worker reports its memory after each request; wait for the report after the load.
        await page.waitForFunction((file) => Number(document.querySelector("[data-testid=wasm-memory]")?.dataset.bytes) > file, file);
        const wasm = Number(await page.getByTestId("wasm-memory").getAttribute("data-bytes"));
        console.log(`      wasm memory after a load from the cache: ${(wasm / 1e6).toFixed(1)} MB for a ${(file / 1e6).toFixed(1)} MB file`);
        assert(wasm > file && wasm <= 1.3 * file, `wasm memory ${wasm} for a ${file}-byte file`);
    })],

    ["a truncated or non-GGUF file shows an error and the bundled model still works", () => withBrowser(async (ctx) => {
        const page = await ctx.newPage();
        await page.goto(BASE);
        await waitForStatus(page, "ready");
        const bytes = readFileSync(MODEL);
        for (const [name, buffer, needle] of [
            ["truncated.gguf", bytes.subarray(0, 3_000_000), "truncated"],
            ["page.gguf", Buffer.from("<!doctype html><html><body>not a model</body></html>"), "not a GGUF"],
        ]) {
            await page.getByTestId("file-input").setInputFiles({name, mimeType: "application/octet-stream", buffer});
            await page.waitForFunction((n) => document.querySelector('[data-testid="error"]')?.textContent.includes(n), needle, {timeout: 60_000});
            // The model loaded before is still there.
            await waitForStatus(page, "ready", 60_000);
        }
        await setParam(page, "max_tokens", 8);
        await ask(page, "Hi!");
        const {ids} = await waitForAnswer(page);
        assert(ids.length > 0, "the bundled model answers after the bad files");
        const summary = await page.getByTestId("model-summary").textContent();
        assert(summary.includes("135M"), `still the bundled model: ${summary}`);
    })],

    ["a copied link reproduces the same greedy output", () => withBrowser(async (ctx) => {
        const page = await ctx.newPage();
        await page.goto(BASE);
        await waitForStatus(page, "ready");
        await setParam(page, "temperature", 0);
        await setParam(page, "max_tokens", 24);
        await page.locator("details.system > summary").click();
        await page.getByTestId("system").fill("You answer in one sentence.");
        await ask(page, "Why do people share open models?");
        const first = (await waitForAnswer(page)).ids;
        await page.getByTestId("prompt").fill("Why do people share open models?");
        await page.getByTestId("copy-link").click();
        const link = await page.getByTestId("link").inputValue();
        assert(link.includes("autorun=1") && link.includes("temperature=0") && link.includes("system="), `link: ${link}`);
        const again = await ctx.newPage();
        await again.goto(link);
        const second = (await waitForAnswer(again)).ids;
        assertEq(second, first, "the link reproduces the answer");
    })],
];
