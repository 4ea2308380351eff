// A minimal test harness around playwright-core and Debian's Chromium (never a downloaded
// browser). Each test gets a fresh persistent profile, so the Cache API has a normal quota.
import {chromium} from "playwright-core";
import {mkdtempSync, rmSync} from "node:fs";
import {tmpdir} from "node:os";
import {join} from "node:path";

export const BASE = process.env.OMP_BASE_URL ?? "http://127.0.0.1:8080/";
export const CHROMIUM = process.env.OMP_CHROMIUM ?? "/usr/bin/chromium";
export const FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
];

/** A fresh browser profile; `fn(context)` runs in it and the profile is removed after. */
export async function withBrowser(fn, {args = []} = {}) {
    const dir = mkdtempSync(join(tmpdir(), "omp-e2e-"));
    const context = await chromium.launchPersistentContext(dir, {
        executablePath: CHROMIUM,
        headless: true,
        args: [...FLAGS, ...args],
        viewport: {width: 1280, height: 900},
    });
    try {
        return await fn(context);
    } finally {
        await context.close();
        rmSync(dir, {recursive: true, force: true});
    }
}

/** Page errors and console errors, for failure messages. */
export function collectErrors(page) {
    const errors = [];
    page.on("pageerror", (e) => errors.push(`pageerror: ${e.message}`));
    page.on("console", (m) => {
        if (m.type() === "error") errors.push(`console: ${m.text()}`);
    });
    return errors;
}

export const status = (page) => page.getByTestId("status").textContent();

/** Waits until the status word is `word` (e.g. "ready"). */
export async function waitForStatus(page, word, timeout = 180_000) {
    await page.waitForFunction(
        (w) => document.querySelector('[data-testid="status"]')?.textContent === w,
        word,
        {timeout},
    );
}

/** Waits for the latest answer to be complete and returns its text and token ids. */
export async function waitForAnswer(page, timeout = 180_000) {
    await page.waitForFunction(
        () => document.querySelector('[data-testid="output"]')?.dataset.done === "true"
            && document.querySelector('[data-testid="status"]')?.textContent !== "generating",
        null,
        {timeout},
    );
    return latestAnswer(page);
}

export async function latestAnswer(page) {
    return page.evaluate(() => {
        const el = document.querySelector('[data-testid="output"]');
        const ids = el?.dataset.tokenIds ?? "";
        return {text: el?.textContent ?? "", ids: ids ? ids.split(",").map(Number) : []};
    });
}

export async function ask(page, prompt) {
    await page.getByTestId("prompt").fill(prompt);
    await page.getByTestId("send").click();
}

/** Sets the number input of a sampling parameter. */
export async function setParam(page, name, value) {
    const input = page.getByTestId(`param-${name}`);
    await input.fill(String(value));
    await input.dispatchEvent("change");
}

export function assert(cond, msg) {
    if (!cond) throw new Error(`assertion failed: ${msg}`);
}

export function assertEq(a, b, msg) {
    const sa = JSON.stringify(a), sb = JSON.stringify(b);
    if (sa !== sb) throw new Error(`${msg}\n  got:      ${sa}\n  expected: ${sb}`);
}

/** Runs the named tests in order and exits non-zero if any failed. `OMP_ONLY` filters. */
export async function run(tests) {
    const only = process.env.OMP_ONLY;
    let failed = 0;
    for (const [name, fn] of tests) {
        if (only && !name.includes(only)) continue;
        const t0 = Date.now();
        try {
            await fn();
            console.log(`ok    ${name} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
        } catch (e) {
            failed++;
            console.log(`FAIL  ${name} (${((Date.now() - t0) / 1000).toFixed(1)} s)\n${e.stack ?? e}`);
        }
    }
    console.log(failed ? `${failed} browser test(s) failed` : "all browser tests passed");
    process.exit(failed ? 1 : 0);
}
