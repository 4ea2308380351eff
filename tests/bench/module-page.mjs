// What kernels.mjs and profile.mjs share: a headless Chromium page holding kernel-bench modules
// (window[name] = a module's exports) and, for decode, a model's bytes (window.chunks).
import {chromium} from "playwright-core";
import fs from "node:fs";
import {FLAGS, CHROMIUM} from "../e2e/harness.mjs";

/** Runs `fn(page)` on a blank page of a fresh headless Chromium, closed after. */
export async function withPage(fn) {
    const browser = await chromium.launch({executablePath: CHROMIUM, args: FLAGS});
    try {
        const page = await browser.newPage();
        await page.goto("about:blank");
        return await fn(page);
    } finally {
        await browser.close();
    }
}

/** Instantiates the kernel-bench module in `file` as `window[name]`. */
export async function instantiate(page, name, file) {
    await page.evaluate(async ([name, b64]) => {
        const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
        const module = await WebAssembly.compile(bytes);
        // The engine links getrandom's browser backend but never calls it: any import that
        // is called is a bug in the bench, so each one throws.
        const imports = {};
        for (const i of WebAssembly.Module.imports(module)) {
            (imports[i.module] ??= {})[i.name] = () => { throw new Error(`unexpected import ${i.name}`); };
        }
        window[name] = (await WebAssembly.instantiate(module, imports)).exports;
    }, [name, fs.readFileSync(file).toString("base64")]);
}

/** Sends the model file at `path` to the page as `window.chunks` (8 MB pieces). */
export async function sendModel(page, path) {
    const model = fs.readFileSync(path);
    await page.evaluate(() => { window.chunks = []; });
    const CHUNK = 8 << 20;
    for (let o = 0; o < model.length; o += CHUNK) {
        await page.evaluate((b64) => window.chunks.push(Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))),
            model.subarray(o, o + CHUNK).toString("base64"));
    }
}
