// Where a decode step's time goes (`cargo xtask bench kernels profile`): loads one kernel-bench
// module and a model in headless Chromium, runs the prompt and 40 warm-up steps, then samples
// 120 decode steps with the DevTools CPU profiler and prints each wasm function's share of the
// samples (self time), largest first. Why: the kernel A/B says whether a change helps; this
// says which part of the step is worth changing.
//
// usage: node profile.mjs MODULE.wasm [--model FILE] [--warmup STEPS]
// `--warmup` (40 by default) sets the steps before sampling, e.g. 1500 to see a long context.
import {withPage, instantiate, loadModel, takeModelArg, takeWarmupArg} from "./module-page.mjs";
import path from "node:path";

const args = process.argv.slice(2);
const modelPath = takeModelArg(args);
const WARMUP = takeWarmupArg(args, 40);
const [file] = args;
if (!file) {
    console.error("usage: node profile.mjs MODULE.wasm [--model FILE] [--warmup STEPS]");
    process.exit(2);
}
const STEPS = 120;

await withPage(async (page) => {
    await instantiate(page, "E", file);
    const failed = await loadModel(page, modelPath, ["E"]);
    if (failed) throw new Error(failed);
    const err = await page.evaluate((warmup) => {
        for (let i = 0; i < warmup; i++) if (window.E.step() < 0) return `warm-up step ${i} failed`;
        return null;
    }, WARMUP);
    if (err) throw new Error(err);
    const cdp = await page.context().newCDPSession(page);
    await cdp.send("Profiler.enable");
    await cdp.send("Profiler.setSamplingInterval", { interval: 100 });
    await cdp.send("Profiler.start");
    const ms = await page.evaluate((steps) => {
        const t = performance.now();
        for (let i = 0; i < steps; i++) if (window.E.step() < 0) return -1;
        return performance.now() - t;
    }, STEPS);
    const { profile } = await cdp.send("Profiler.stop");
    if (ms < 0) throw new Error("a profiled step failed");
    const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
    const self = new Map();
    for (const id of profile.samples) {
        const f = nodes.get(id).callFrame;
        const name = f.functionName || f.url || "(anonymous)";
        self.set(name, (self.get(name) ?? 0) + 1);
    }
    const total = profile.samples.length;
    console.log(`${path.basename(modelPath)}: ${STEPS} decode steps after ${WARMUP} in ${ms.toFixed(0)} ms (${(ms / STEPS).toFixed(2)} ms/step), ${total} samples`);
    for (const [name, n] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 25)) {
        console.log(`${(100 * n / total).toFixed(1).padStart(6)}%  ${name}`);
    }
});
