// Drives bench/browser/index.html in Debian's headless Chromium: for every model file, omp and
// wllama on the same prompt, 1 thread on a plain origin and (when an isolated origin is given)
// 2 threads on a cross-origin-isolated one. Each engine run gets a fresh browser, so the
// renderer's peak resident memory (VmHWM) is that run's peak tab memory. Prints one table and,
// with --json FILE, writes every run.
import {chromium} from "playwright-core";
import {mkdtempSync, rmSync, readFileSync, readdirSync, writeFileSync} from "node:fs";
import {tmpdir} from "node:os";
import {join} from "node:path";
import {FLAGS, CHROMIUM} from "../../tests/browser/harness.mjs";

function arg(name, fallback) {
    const i = process.argv.indexOf(`--${name}`);
    return i >= 0 ? process.argv[i + 1] : fallback;
}

const plain = arg("plain");
const isolated = arg("isolated");
const models = arg("models").split(",");
const runs = Number(arg("runs", "3"));
const tokens = Number(arg("tokens", "128"));
const prompt = arg("prompt", "Write a short story about a robot who learns to paint.");
const only = arg("engines", "omp,wllama").split(",");
const jsonOut = arg("json");
const TIMEOUT_MIN = Number(arg("timeout-min", "15"));
const fullContext = process.argv.includes("--full-context");
const paired = Number(arg("paired", "0"));
// omp's load-time conversion (`none`, `q8_0`, `q4_0`), as the app's option; wllama has none.
const convert = arg("convert", "none");
// Native llama.cpp's 1-thread decode tok/s per file (`name=value,...`, measured by the xtask
// before the browser runs): the main table's last column divides omp's 1-thread decode by it.
const native = new Map((arg("native") ?? "").split(",").filter(Boolean).map((kv) => {
    const at = kv.lastIndexOf("=");
    return [kv.slice(0, at), Number(kv.slice(at + 1))];
}));

/** Pids of `root` and all its descendants. */
function descendants(root) {
    const parent = new Map();
    for (const d of readdirSync("/proc")) {
        if (!/^\d+$/.test(d)) continue;
        try {
            const stat = readFileSync(`/proc/${d}/stat`, "utf8");
            const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
            parent.set(Number(d), ppid);
        } catch { /* gone */ }
    }
    const out = new Set([root]);
    let grew = true;
    while (grew) {
        grew = false;
        for (const [pid, pp] of parent) {
            if (out.has(pp) && !out.has(pid)) {
                out.add(pid);
                grew = true;
            }
        }
    }
    return [...out];
}

/** The largest peak resident set (bytes) of the browser's renderer processes. */
function rendererPeak(browserPid) {
    let peak = 0;
    for (const pid of descendants(browserPid)) {
        try {
            const cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8");
            if (!cmd.includes("--type=renderer")) continue;
            const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
            if (m) peak = Math.max(peak, Number(m[1]) * 1024);
        } catch { /* gone */ }
    }
    return peak;
}

function browserPid(dir) {
    for (const d of readdirSync("/proc")) {
        if (!/^\d+$/.test(d)) continue;
        try {
            const cmd = readFileSync(`/proc/${d}/cmdline`, "utf8");
            if (cmd.includes(dir) && !cmd.includes("--type=")) return Number(d);
        } catch { /* gone */ }
    }
    return null;
}

/** Runs one engine on one model in a fresh browser; returns the page's result plus memory. */
async function one(base, engine, model, threads, extra = {}) {
    const dir = mkdtempSync(join(tmpdir(), "omp-bench-"));
    const context = await chromium.launchPersistentContext(dir, {
        executablePath: CHROMIUM,
        headless: true,
        args: FLAGS,
    });
    try {
        const page = context.pages()[0] ?? await context.newPage();
        page.on("pageerror", (e) => console.error(`pageerror: ${e.message}`));
        if (process.env.OMP_BENCH_DEBUG) page.on("console", (m) => console.error(`console: ${m.text()}`));
        await page.goto(new URL("bench/index.html", base).href);
        await page.waitForFunction(() => document.body.dataset.ready === "true");
        const isolatedPage = await page.evaluate(() => window.bench.isolated());
        if (threads > 1 && !isolatedPage) throw new Error(`${base} is not cross-origin isolated`);
        const t0 = Date.now();
        let timer;
        const result = await Promise.race([
            page.evaluate(
                ([engine, opts]) => window.bench[engine](opts),
                [engine, {model, runs, tokens, prompt, threads, ...extra}],
            ),
            new Promise((_, reject) => {
                timer = setTimeout(
                    () => reject(new Error(`${engine} on ${model} (${threads} threads) took over ${TIMEOUT_MIN} min`)),
                    TIMEOUT_MIN * 60_000,
                );
            }),
        ]).finally(() => clearTimeout(timer));
        console.error(`  ${engine} ${model.split("/").pop()} ${threads} thread(s): ${((Date.now() - t0) / 1000).toFixed(0)} s`);
        // wllama's wasm memory is not read: its Emscripten heap is not reachable from the page,
        // and evaluating in its workers hangs on a pthread blocked in `Atomics.wait`.
        const pid = browserPid(dir);
        result.tab_peak_bytes = pid ? rendererPeak(pid) : null;
        result.isolated = isolatedPage;
        return result;
    } finally {
        await context.close();
        rmSync(dir, {recursive: true, force: true});
    }
}

const median = (xs) => {
    const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
    return s.length ? s[Math.floor(s.length / 2)] : NaN;
};
const mb = (b) => (b ? (b / 1e6).toFixed(1) : "-");
const f1 = (x) => (Number.isFinite(x) ? x.toFixed(1) : "-");

/** Prints `lines` (the first is the header) as aligned columns. */
function table(lines) {
    const widths = lines[0].map((_, i) => Math.max(...lines.map((l) => String(l[i]).length)));
    for (const l of lines) console.log(l.map((c, i) => String(c).padEnd(widths[i])).join("  "));
}

if (fullContext) {
    // Memory and long-context decode with the whole context cached: each key/value cache type
    // on 1 thread, and (on the isolated origin) the default f16 cache on 2 threads.
    const out = [];
    const lines = [["model", "kv cache", "threads", "tokens", "stopped", "decode tok/s at the end", "KV MB (estimate)", "wasm MB", "file MB", "wasm / file"]];
    const configs = [[plain, 1, "f16"], [plain, 1, "q8_0"]];
    if (isolated) configs.push([isolated, 2, "f16"]);
    for (const model of models) {
        for (const [base, threads, kv] of configs) {
            const r = await one(base, "ompFull", model, threads, {kv_cache: kv});
            if (r.threads !== threads) throw new Error(`omp ran on ${r.threads} thread(s), not ${threads}`);
            out.push({model, ...r});
            lines.push([model.split("/").pop(), r.kv_cache, r.threads, r.tokens, r.reason, f1(r.decode_tokens_per_s),
                mb(r.kv_cache_bytes), mb(r.wasm_bytes), mb(r.file_bytes), (r.wasm_bytes / r.file_bytes).toFixed(2) + "x"]);
        }
    }
    table(lines);
    if (jsonOut) writeFileSync(jsonOut, JSON.stringify(out, null, 2));
    process.exit(0);
}

if (paired > 0) {
    // omp's 2-thread gain, measured in rounds: each round runs 1 thread (plain origin, the
    // build a non-isolated page gets), the threaded build on 1 thread and the threaded build on
    // 2 threads (both on the isolated origin) back to back, in alternating order, one warm-up
    // and one measured generation each. Why: the machine drifts by ±15% over minutes, and a
    // ratio of two blocks of runs taken minutes apart carries that drift; a ratio within a
    // round mostly does not. The middle run splits the gain into what the threaded build
    // costs on its own (shared memory, atomics, the pool's bookkeeping) and what the second
    // thread adds.
    if (!isolated) throw new Error("--paired needs the isolated origin (drop --no-threads)");
    const configs = [
        {key: "one", base: plain, threads: 1},
        {key: "pool1", base: isolated, threads: 1, build: "threads"},
        {key: "two", base: isolated, threads: 2},
    ];
    const out = [];
    const lines = [["model", "rounds", "1 thread", "threaded build, 1 thread", "2 threads",
        "2/1 (median of rounds)", "2/1 range", "2 / threaded 1 (median)"]];
    for (const model of models) {
        const rounds = [];
        for (let round = 0; round < paired; round++) {
            const order = round % 2 === 0 ? configs : [...configs].reverse();
            const decode = {};
            for (const {key, base, threads, build} of order) {
                const r = await one(base, "omp", model, threads, {runs: 1, build});
                if (r.threads !== threads) throw new Error(`omp ran on ${r.threads} thread(s), not ${threads}`);
                decode[key] = median(r.runs.filter((x) => !x.warmup).map((x) => x.decode_tokens_per_s));
            }
            rounds.push({...decode, ratio: decode.two / decode.one, pool_ratio: decode.two / decode.pool1});
        }
        out.push({model, rounds});
        const ratios = rounds.map((p) => p.ratio);
        const med = (k) => f1(median(rounds.map((p) => p[k])));
        lines.push([model.split("/").pop(), paired, med("one"), med("pool1"), med("two"),
            median(ratios).toFixed(2) + "x", `${Math.min(...ratios).toFixed(2)}-${Math.max(...ratios).toFixed(2)}x`,
            median(rounds.map((p) => p.pool_ratio)).toFixed(2) + "x"]);
    }
    table(lines);
    if (jsonOut) writeFileSync(jsonOut, JSON.stringify(out, null, 2));
    process.exit(0);
}

const rows = [];
for (const model of models) {
    const configs = [[plain, 1]];
    if (isolated) configs.push([isolated, 2]);
    // Each engine's 1- and 2-thread runs back to back: the machine drifts by ±15% over minutes,
    // and the 2/1 column is the narrowest target the table carries (the omp/wllama ratios are
    // several times larger than that drift).
    for (const engine of only) {
        for (const [base, threads] of configs) {
            const r = await one(base, engine, model, threads, engine === "omp" ? {convert} : {});
            const measured = r.runs.filter((x) => !x.warmup);
            const label = engine === "omp" && r.relaxed_simd ? "omp (relaxed SIMD)" : engine;
            rows.push({
                model: model.split("/").pop(),
                engine: engine === "omp" && convert !== "none" ? `${label}, converted to ${convert}` : label,
                threads_asked: threads,
                threads_used: engine === "omp" ? r.threads : threads,
                generated: median(measured.map((x) => x.generated_tokens)),
                prefill: median(measured.map((x) => x.prefill_tokens_per_s)),
                decode: median(measured.map((x) => x.decode_tokens_per_s)),
                load_ms: r.load_ms,
                wasm_bytes: r.wasm_bytes,
                tab_peak_bytes: r.tab_peak_bytes,
                file_bytes: r.file_bytes,
                native_decode: native.get(model.split("/").pop()) ?? null,
                raw: r,
            });
        }
    }
}

const header = ["model", "engine", "threads", "prefill tok/s", "decode tok/s", "load ms",
    "wasm MB", "tab peak MB", "decode omp/wllama", "prefill omp/wllama", "decode 2t/1t",
    ...(native.size ? ["1t decode omp/llama.cpp native"] : [])];
const lines = [header];
// The rows in table order (by model, then threads), whatever order they ran in.
const ordered = models.map((m) => m.split("/").pop()).flatMap((m) =>
    [1, 2].flatMap((t) => rows.filter((r) => r.model === m && r.threads_asked === t)));
for (const r of ordered) {
    const peer = rows.find((x) => x.model === r.model && x.engine === "wllama"
        && x.threads_asked === r.threads_asked);
    const ratio = (k) => (r.engine.startsWith("omp") && peer ? (r[k] / peer[k]).toFixed(2) + "x" : "");
    const single = rows.find((x) => x.model === r.model && x.engine === r.engine && x.threads_asked === 1);
    const gain = r.threads_asked > 1 && r.threads_used > 1 && single ? (r.decode / single.decode).toFixed(2) + "x" : "";
    lines.push([r.model, r.engine, `${r.threads_used}${r.threads_used !== r.threads_asked ? ` (of ${r.threads_asked})` : ""}`,
        f1(r.prefill), f1(r.decode), r.load_ms ? r.load_ms.toFixed(0) : "-", mb(r.wasm_bytes),
        mb(r.tab_peak_bytes), ratio("decode"), ratio("prefill"), gain,
        ...(native.size ? [r.engine.startsWith("omp") && r.threads_used === 1 && native.get(r.model)
            ? `${(r.decode / native.get(r.model)).toFixed(2)}x (${f1(native.get(r.model))})` : ""] : [])]);
}
table(lines);
if (jsonOut) writeFileSync(jsonOut, JSON.stringify(rows, null, 2));
