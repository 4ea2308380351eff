// Records llama.cpp's tokenization of the corpus and its greedy chat continuations, which
// crates/engine/tests/reference.rs compares omp against. Run through `cargo xtask reference`.
import {readFileSync, writeFileSync} from "node:fs";
import {createHash} from "node:crypto";
import {loadModel, newSequence, renderChat, arg, generator} from "./common.mjs";

const modelPath = arg("model");
const data = arg("data");
const out = arg("out");
const corpus = JSON.parse(readFileSync(`${data}/tokenizer-corpus.json`, "utf8")).strings;
const chat = JSON.parse(readFileSync(`${data}/chat-prompts.json`, "utf8"));

const {model} = await loadModel(modelPath);
const sha256 = createHash("sha256").update(readFileSync(modelPath)).digest("hex");

const tokenize = corpus.map((text) => ({
    text,
    ids: model.tokenize(text, false),
    ids_special: model.tokenize(text, true),
}));

const {sequence} = await newSequence(model);
const prompts = [];
const rejected = [];
for (const p of chat.candidates) {
    const {text, ids} = renderChat(model, p.messages);
    await sequence.clearHistory();
    // Greedy, one token per step as in normal generation, keeping llama.cpp's five most likely
    // tokens at every step (how close each choice was).
    const continuation = [];
    const stepTop5 = [];
    for await (const out of sequence.evaluateWithMetadata(ids, {probabilities: true}, {temperature: 0})) {
        if (model.isEogToken(out.token)) break;
        continuation.push(out.token);
        stepTop5.push([...out.probabilities.entries()].slice(0, 5).map(([t, pr]) => [t, Number(Math.log(pr).toFixed(5))]));
        if (continuation.length >= chat.max_tokens) break;
    }
    // Teacher-forced: feed prompt + continuation in one batch and keep llama.cpp's five most
    // likely next tokens at every continuation position (for near-tie analysis).
    await sequence.clearHistory();
    const full = ids.concat(continuation.slice(0, -1));
    const input = full.map((t, i) => (i >= ids.length - 1 ? [t, {generateNext: {probabilities: true}}] : t));
    const res = await sequence.controlledEvaluate(input);
    const top = [];
    for (let i = ids.length - 1; i < full.length; i++) {
        const probs = res[i]?.next?.probabilities;
        top.push(probs ? [...probs.entries()].slice(0, 5).map(([t, pr]) => [t, Number(Math.log(pr).toFixed(5))]) : []);
    }
    // Keep prompts whose first `stable_tokens` choices were clear (see chat-prompts.json).
    const margins = stepTop5.slice(0, chat.stable_tokens).map((t) => (t.length > 1 ? t[0][1] - t[1][1] : Infinity));
    const unstable = margins.findIndex((m) => m < chat.min_margin);
    if (continuation.length >= chat.stable_tokens && unstable >= 0 || continuation.length < chat.stable_tokens && margins.some((m) => m < chat.min_margin)) {
        rejected.push({messages: p.messages, reason: `token ${unstable} was chosen by a margin of ${margins[unstable].toFixed(3)} nats`});
        process.stderr.write(`rejected: ${JSON.stringify(p.messages.at(-1).content)} (token ${unstable})\n`);
        continue;
    }
    prompts.push({
        lang: p.lang,
        messages: p.messages,
        text,
        prompt_ids: ids,
        continuation_ids: continuation,
        continuation_text: model.detokenize(continuation),
        step_top5: stepTop5,
        teacher_forced_top5: top,
    });
    process.stderr.write(`kept ${prompts.length}: ${JSON.stringify(model.detokenize(continuation).slice(0, 60))}\n`);
}

for (const [lang, min] of Object.entries(chat.min_per_language)) {
    const n = prompts.filter((p) => p.lang === lang).length;
    if (n < min) throw new Error(`only ${n} ${lang} prompts kept (${min} wanted): add candidates`);
}

writeFileSync(out, JSON.stringify({
    generator: generator(),
    settings: {threads: 1, context: 2048, batch: 512, flash_attention: false, sampling: "greedy (temperature 0)"},
    model: {file: modelPath.split("/").pop(), sha256},
    max_tokens: chat.max_tokens,
    stable_tokens: chat.stable_tokens,
    min_margin: chat.min_margin,
    tokenize,
    chat: prompts,
    rejected,
}, null, 1) + "\n");
process.stderr.write(`wrote ${out}\n`);
