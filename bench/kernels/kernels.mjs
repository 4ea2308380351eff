// A/B timing of two kernel-bench modules in one headless Chromium page (`cargo xtask
// bench kernels ab`). Alternating the two step by step means the machine's drift affects both
// alike; the median of the per-step ratios B/A is the answer (under 1: B is faster).
//
// usage: node kernels.mjs A.wasm B.wasm [decode | TYPE,ROWS,COLS,M] [--model FILE] [--warmup STEPS]
import {withPage, instantiate, loadModel, takeModelArg, takeWarmupArg} from "./module-page.mjs";

const args = process.argv.slice(2);
const modelPath = takeModelArg(args);
const WARMUP = takeWarmupArg(args, 0);
const [fileA, fileB, mode = "decode"] = args;
if (!fileA || !fileB) {
    console.error("usage: node kernels.mjs A.wasm B.wasm [decode | TYPE,ROWS,COLS,M] [--model FILE] [--warmup STEPS]");
    process.exit(2);
}
const TYPES = { Q4_0: 2, Q4_1: 3, Q5_0: 6, Q5_1: 7, Q8_0: 8 };
const median = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];

await withPage(async (page) => {
    await instantiate(page, "A", fileA);
    await instantiate(page, "B", fileB);
    if (mode === "decode") {
        const failed = await loadModel(page, modelPath, ["A", "B"]);
        if (failed) throw new Error(failed);
        const r = await page.evaluate(([warmup, steps]) => {
            for (let i = 0; i < warmup; i++) {
                for (const name of ["A", "B"]) if (window[name].step() < 0) return `${name}: warm-up step ${i} failed`;
            }
            const times = { A: [], B: [] };
            for (let i = 0; i < steps; i++) {
                for (const name of i % 2 ? ["A", "B"] : ["B", "A"]) {
                    const t = performance.now();
                    if (window[name].step() < 0) return `${name}: step ${i} failed`;
                    times[name].push(performance.now() - t);
                }
            }
            return times;
        }, [WARMUP, 160]);
        if (typeof r === "string") throw new Error(r);
        // The first steps are the prompt's prefill chunks; time the decode steps only.
        const a = r.A.slice(-128), b = r.B.slice(-128);
        const ratio = median(a.map((x, i) => b[i] / x));
        console.log(`decode ms/token: A median ${median(a).toFixed(2)} min ${Math.min(...a).toFixed(2)} | B median ${median(b).toFixed(2)} min ${Math.min(...b).toFixed(2)} | B/A ${ratio.toFixed(3)}`);
    } else {
        const [ty, rows, cols, m] = mode.split(",");
        const id = TYPES[ty.toUpperCase()];
        if (id === undefined) throw new Error(`type ${ty}: one of ${Object.keys(TYPES).join(", ")}`);
        const r = await page.evaluate(([id, rows, cols, m]) => {
            const times = { A: [], B: [] };
            for (const name of ["A", "B"]) {
                if (window[name].mm_setup(id, rows, cols, m) < 0) return `${name}: bad product shape`;
                window[name].mm_run(5);
            }
            for (let i = 0; i < 20; i++) {
                for (const name of ["A", "B"]) {
                    const t = performance.now();
                    window[name].mm_run(100);
                    times[name].push((performance.now() - t) / 100);
                }
            }
            return times;
        }, [id, Number(rows), Number(cols), Number(m)]);
        if (typeof r === "string") throw new Error(r);
        const ratio = median(r.A.map((x, i) => r.B[i] / x));
        console.log(`${ty} ${rows}x${cols}, ${m} row(s): A min ${(Math.min(...r.A) * 1000).toFixed(0)} µs, B min ${(Math.min(...r.B) * 1000).toFixed(0)} µs | B/A ${ratio.toFixed(3)}`);
    }
});
