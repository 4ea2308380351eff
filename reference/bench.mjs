// llama.cpp's decode and prefill speed on the benchmark prompt, measured the way `omp bench`
// measures omp: greedy, a warm-up run, then the median of measured runs. Prints JSON.
import {loadModel, newSequence, renderChat, greedy, arg} from "./common.mjs";

const modelPath = arg("model");
const threads = Number(arg("threads", "1"));
const tokens = Number(arg("tokens", "128"));
const runs = Number(arg("runs", "3"));
const prompt = arg("prompt", "Write a short story about a robot who learns to paint.");

const {model} = await loadModel(modelPath);
const {sequence} = await newSequence(model, {threads});
// A base model (no chat template) takes the text itself, BOS first, as omp sends it.
const ids = model.fileInfo.metadata.tokenizer?.chat_template
    ? renderChat(model, [{role: "user", content: prompt}]).ids
    : [model.tokens.bos, ...model.tokenize(prompt, false)];
const results = [];
for (let r = 0; r <= runs; r++) {
    await sequence.clearHistory();
    const t0 = performance.now();
    let tFirst = 0, tLast = 0;
    const out = await greedy(model, sequence, ids, tokens, (_t, n) => {
        tLast = performance.now();
        if (n === 1) tFirst = tLast;
    });
    if (r === 0) continue;
    results.push({
        generated_tokens: out.length,
        prefill_tokens_per_s: ids.length * 1000 / (tFirst - t0),
        decode_tokens_per_s: (out.length - 1) * 1000 / (tLast - tFirst),
    });
}
const median = (k) => results.map((x) => x[k]).sort((a, b) => a - b)[Math.floor(results.length / 2)];
console.log(JSON.stringify({
    engine: "llama.cpp (node-llama-cpp)",
    model: modelPath.split("/").pop(),
    threads,
    prompt_tokens: ids.length,
    generated_tokens: results[0]?.generated_tokens ?? 0,
    prefill_tokens_per_s: median("prefill_tokens_per_s"),
    decode_tokens_per_s: median("decode_tokens_per_s"),
    runs: results,
}));
