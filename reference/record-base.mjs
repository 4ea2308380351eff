// Records llama.cpp on a base model (no chat template), which crates/engine/tests/gemma3.rs
// compares omp against: the tokenization of the corpus, and for each raw prompt (BOS added as
// the file asks, then the text) the greedy continuation with llama.cpp's five most likely
// tokens at every step, and the teacher-forced top five over that continuation. Prompts whose
// first `stable_tokens` choices were not clear (see raw-prompts.json) are dropped.
// Usage: node record-base.mjs --model FILE --data DIR --out FILE (run by `cargo xtask reference`).
import {readFileSync, writeFileSync} from "node:fs";
import {createHash} from "node:crypto";
import {loadModel, newSequence, arg, generator} from "./common.mjs";

const modelPath = arg("model");
const data = arg("data");
const out = arg("out");
const corpus = JSON.parse(readFileSync(`${data}/tokenizer-corpus.json`, "utf8")).strings;
const raw = JSON.parse(readFileSync(`${data}/raw-prompts.json`, "utf8"));

const {model} = await loadModel(modelPath);
const sha256 = createHash("sha256").update(readFileSync(modelPath)).digest("hex");
const top5 = (probs) => [...probs.entries()].slice(0, 5).map(([t, p]) => [t, Number(Math.log(p).toFixed(5))]);

const tokenize = corpus.map((text) => ({
    text,
    ids: model.tokenize(text, false),
    ids_special: model.tokenize(text, true),
}));

const bos = model.tokens.bos;
const addBos = model.fileInfo.metadata.tokenizer?.ggml?.add_bos_token !== false;
const {sequence} = await newSequence(model);
const prompts = [];
for (const p of raw.candidates) {
    const ids = (addBos && bos != null ? [bos] : []).concat(model.tokenize(p.text, false));
    await sequence.clearHistory();
    const continuation = [];
    const stepTop5 = [];
    for await (const o of sequence.evaluateWithMetadata(ids, {probabilities: true}, {temperature: 0})) {
        if (model.isEogToken(o.token)) break;
        continuation.push(o.token);
        stepTop5.push(top5(o.probabilities));
        if (continuation.length >= raw.max_tokens) break;
    }
    await sequence.clearHistory();
    const full = ids.concat(continuation.slice(0, -1));
    const input = full.map((t, i) => (i >= ids.length - 1 ? [t, {generateNext: {probabilities: true}}] : t));
    const res = await sequence.controlledEvaluate(input);
    const forced = [];
    for (let i = ids.length - 1; i < full.length; i++) {
        const probs = res[i]?.next?.probabilities;
        forced.push(probs ? top5(probs) : []);
    }
    const margins = stepTop5.slice(0, raw.stable_tokens).map((t) => (t.length > 1 ? t[0][1] - t[1][1] : Infinity));
    const unclear = margins.findIndex((m) => m < raw.min_margin);
    const text = model.detokenize(continuation);
    if (continuation.length < raw.stable_tokens || unclear >= 0) {
        process.stderr.write(`dropped: ${JSON.stringify(p.text)} (token ${unclear}, ${continuation.length} tokens)\n`);
        continue;
    }
    prompts.push({lang: p.lang, text: p.text, prompt_ids: ids, continuation_ids: continuation, continuation_text: text, step_top5: stepTop5, teacher_forced_top5: forced});
    process.stderr.write(`kept ${prompts.length}: ${JSON.stringify(p.text)} -> ${JSON.stringify(text.slice(0, 60))}\n`);
}
for (const [lang, min] of Object.entries(raw.min_per_language)) {
    const n = prompts.filter((p) => p.lang === lang).length;
    if (n < min) throw new Error(`only ${n} ${lang} prompts kept (${min} wanted): add candidates`);
}

writeFileSync(out, JSON.stringify({
    generator: generator(),
    settings: {threads: 1, context: 2048, batch: 512, flash_attention: false, sampling: "greedy (temperature 0)"},
    model: {file: modelPath.split("/").pop(), sha256},
    max_tokens: raw.max_tokens,
    stable_tokens: raw.stable_tokens,
    min_margin: raw.min_margin,
    tokenize,
    raw: prompts,
}, null, 1) + "\n");
process.stderr.write(`wrote ${out}: ${tokenize.length} strings, ${prompts.length} prompts\n`);
