// Bad networks against the real app: the test server's /faults/<kind>/<file> routes (see
// xtask/src/faults.rs) answer for the bundled model with one thing wrong. Every case must end
// with a clear message, the previous model still working, and nothing partial in the cache.
// Also: the page runs under its strict Content-Security-Policy, and text is never markup.
import {BASE, withBrowser, waitForStatus, waitForAnswer, ask, setParam, assert, assertEq} from "./harness.mjs";

const FILE = "SmolLM2-135M-Instruct.Q4_1.gguf";
const fault = (kind) => `${BASE}faults/${kind}/${FILE}`;

/** Loads a model URL the way a user does: paste it and press Load. */
async function loadUrl(page, url) {
    await page.locator("#model-url").fill(url);
    await page.locator("#model-url").press("Enter");
}

async function waitForError(page, needle, timeout = 90_000) {
    await page.waitForFunction(
        (n) => document.querySelector('[data-testid="error"]')?.textContent.includes(n),
        needle,
        {timeout},
    ).catch(async (e) => {
        const shown = await page.getByTestId("error").textContent().catch(() => "(no error shown)");
        throw new Error(`expected an error with ${JSON.stringify(needle)}; shown: ${shown}\n${e.message}`);
    });
}

async function cached(page, url) {
    return page.evaluate(async (u) => Boolean(await (await caches.open("omp-models-v1")).match(u)), url);
}

async function log() {
    return (await fetch(`${BASE}faults/log`)).json();
}

/** The bundled model still answers. */
async function stillWorks(page) {
    await waitForStatus(page, "ready", 60_000);
    await setParam(page, "max_tokens", 6);
    await ask(page, "Hi!");
    const {ids} = await waitForAnswer(page);
    assert(ids.length > 0, "the model loaded before still answers");
    const summary = await page.getByTestId("model-summary").textContent();
    assert(summary.includes("135M"), `still the bundled model: ${summary}`);
}

export const tests = [
    ["a download cut off midway resumes with a Range request", () => withBrowser(async (ctx) => {
        const page = await ctx.newPage();
        await page.goto(BASE);
        await waitForStatus(page, "ready");
        const url = fault("cut");
        const before = (await log()).length;
        await loadUrl(page, url);
        await page.waitForFunction((u) => document.querySelector('[data-testid="model-summary"]')?.textContent.includes("135M")
            && document.querySelector('[data-testid="status"]')?.textContent === "ready"
            && !document.querySelector('[data-testid="from-cache"]'), url, {timeout: 120_000});
        const seen = (await log()).slice(before).filter((r) => r.target.startsWith("/faults/cut/") && r.method === "GET");
        const resume = seen.find((r) => /^bytes=[1-9]\d*-$/.test(r.range ?? ""));
        assert(resume, `a resuming Range request was made: ${JSON.stringify(seen)}`);
        assert(await cached(page, url), "the completed, verified file is cached");
        await setParam(page, "max_tokens", 6);
        await ask(page, "Hi!");
        assert((await waitForAnswer(page)).ids.length > 0, "the resumed model answers");
    })],

    ["broken downloads, web pages, HTTP errors and wrong lengths: clear errors, nothing cached", () => withBrowser(async (ctx) => {
        const page = await ctx.newPage();
        await page.goto(BASE);
        await waitForStatus(page, "ready");
        for (const [kind, needle] of [
            ["cut-norange", "ended early"],
            ["html", "returned a web page"],
            ["404", "was not found (404)"],
            ["429", "rate-limited"],
            ["short-length", "truncated"],
            ["long-length", "would not resume"],
            // A host the page's CSP does not list (and nothing listens there either).
            ["http://127.0.0.1:9/model.gguf", "security policy allows"],
        ]) {
            const url = kind.startsWith("http") ? kind : fault(kind);
            await loadUrl(page, url);
            await waitForError(page, needle);
            await waitForStatus(page, "ready", 60_000);
            assert(!(await cached(page, url)), `${kind}: nothing was cached`);
        }
        await stillWorks(page);
    })],

    ["a stalled download gives up with a clear message", () => withBrowser(async (ctx) => {
        const page = await ctx.newPage();
        await page.goto(BASE);
        await waitForStatus(page, "ready");
        const url = fault("stall");
        await loadUrl(page, url);
        await waitForError(page, "stalled");
        assert(!(await cached(page, url)), "nothing was cached");
        await stillWorks(page);
    })],

    ["a model too large for a tab is refused before download, with the estimate", () => withBrowser(async (ctx) => {
        const page = await ctx.newPage();
        await page.goto(BASE);
        await waitForStatus(page, "ready");
        const before = (await log()).length;
        await loadUrl(page, `${BASE}faults/huge/model.gguf`);
        await waitForError(page, "It was not downloaded");
        const text = await page.getByTestId("error").textContent();
        assert(/needs about \d+ MiB of memory to run \(\d+ MiB file \+ \d+ MiB while running\)/.test(text), `the estimate is shown: ${text}`);
        const seen = (await log()).slice(before);
        assert(seen.some((r) => r.method === "HEAD"), `the size came from a HEAD request: ${JSON.stringify(seen)}`);
        assert(seen.some((r) => r.method === "GET" && r.range === "bytes=0-1048575"), "the header came from a Range request");
        assertEq(seen.filter((r) => r.method === "GET" && !r.range), [], "no full download was started");
        await stillWorks(page);
    })],

    ["a full storage quota is reported and the model still works", () => withBrowser(async (ctx) => {
        const page = await ctx.newPage();
        const cdp = await ctx.newCDPSession(page);
        await cdp.send("Storage.overrideQuotaForOrigin", {origin: new URL(BASE).origin, quotaSize: 1 << 20});
        await page.goto(BASE);
        await waitForError(page, "quota is full", 180_000);
        await stillWorks(page);
        assert(!(await cached(page, `${BASE}models/${FILE}`)), "nothing was cached");
    })],

    ["a crash inside the worker restarts it, says so, and loads the model again", () => withBrowser(async (ctx) => {
        const page = await ctx.newPage();
        await page.goto(BASE);
        await waitForStatus(page, "ready");
        const [worker] = page.workers();
        assert(worker, "the engine worker is running");
        // An uncaught exception in the worker reaches the page as the worker's `error` event,
        // the same signal a wasm trap (unreachable, out of memory) gives.
        await worker.evaluate(() => setTimeout(() => { throw new Error("simulated engine crash"); }));
        await waitForError(page, "restarted");
        await stillWorks(page);
    })],

    ["offline, a new model cannot be downloaded but the loaded one keeps working", () => withBrowser(async (ctx) => {
        const page = await ctx.newPage();
        await page.goto(BASE);
        await waitForStatus(page, "ready");
        await ctx.setOffline(true);
        await loadUrl(page, fault("cut"));
        await waitForError(page, "offline");
        await stillWorks(page);
    })],
    ["the app runs under a strict CSP, and prompts and answers are text, never markup", () => withBrowser(async (ctx) => {
        const page = await ctx.newPage();
        await page.addInitScript(() => {
            window.cspViolations = [];
            document.addEventListener("securitypolicyviolation", (e) => window.cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`));
        });
        const refused = [];
        page.on("console", (m) => { if (/Content Security Policy/i.test(m.text())) refused.push(m.text()); });
        const resp = await page.goto(BASE);
        const csp = resp.headers()["content-security-policy"] ?? "";
        assert(csp.includes("script-src 'self' 'wasm-unsafe-eval'") && !csp.includes("unsafe-inline"), `CSP: ${csp}`);
        assert(/connect-src 'self' [^;]*huggingface/.test(csp) && csp.includes("frame-ancestors"), `CSP: ${csp}`);
        assertEq(await page.evaluate(() => document.querySelectorAll("script:not([src])").length), 0, "inline scripts");
        await waitForStatus(page, "ready");
        const attack = `<img src=x onerror="window.pwned=1"><b>bold</b>`;
        await setParam(page, "max_tokens", 6);
        await ask(page, attack);
        await waitForAnswer(page);
        assertEq(await page.locator(".turn.user .text").last().textContent(), attack, "the prompt is shown as typed");
        assertEq(await page.locator(".transcript img, .transcript b").count(), 0, "no element was made from the text");
        assertEq(await page.evaluate(() => window.pwned), undefined, "no script ran");
        assertEq(await page.evaluate(() => window.cspViolations), [], "CSP violations");
        assertEq(refused, [], "console CSP messages");
    })],
];
