// What kernels.mjs and profile.mjs share: a headless Chromium page holding kernel-bench modules
// (window[name] = a module's exports), the model they decode, and the `--model` argument.
import {chromium} from "playwright-core";
import fs from "node:fs";
import path from "node:path";
import {fileURLToPath} from "node:url";
import {FLAGS, CHROMIUM} from "../../tests/browser/harness.mjs";

/** Removes `--model FILE` from `args` and returns FILE, or the bundled model when absent. */
export function takeModelArg(args) {
    const at = args.indexOf("--model");
    if (at >= 0) return args.splice(at, 2)[1];
    const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
    return path.join(root, "public/models/SmolLM2-135M-Instruct.Q4_1.gguf");
}

/**
 * Removes `--warmup STEPS` from `args` and returns STEPS (untimed decode steps before the timed
 * ones, e.g. 1500 to time a long context), or `fallback` when absent.
 */
export function takeWarmupArg(args, fallback) {
    const at = args.indexOf("--warmup");
    if (at < 0) return fallback;
    const n = Number(args.splice(at, 2)[1]);
    if (!Number.isInteger(n) || n < 0) {
        console.error("--warmup takes a whole number of steps");
        process.exit(2);
    }
    return n;
}

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

/**
 * Loads the model file at `file` into each module in `names` (already instantiated) and starts
 * its generation; returns null, or what failed.
 */
export async function loadModel(page, file, names) {
    const model = fs.readFileSync(file);
    await page.evaluate(() => { window.chunks = []; });
    const CHUNK = 8 << 20;
    for (let o = 0; o < model.length; o += CHUNK) {
        await page.evaluate((b64) => window.chunks.push(Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))),
            model.subarray(o, o + CHUNK).toString("base64"));
    }
    return page.evaluate((names) => {
        const total = window.chunks.reduce((a, c) => a + c.length, 0);
        for (const name of names) {
            const e = window[name];
            const at = e.alloc(total);
            let o = 0;
            for (const c of window.chunks) {
                new Uint8Array(e.memory.buffer, at + o, c.length).set(c);
                o += c.length;
            }
            if (e.load() < 0) return `${name}: the model did not load`;
        }
        window.chunks = null;
        return null;
    }, names);
}
