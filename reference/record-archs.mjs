// Records llama.cpp's next-token choices on the tiny random-weight model of every architecture
// the engine runs (written by `cargo xtask reference` from the engine's own fixtures), fed a
// fixed token sequence: at every position, the two most likely next tokens and their
// log-probabilities. crates/engine/tests/archs.rs checks omp's teacher-forced choices against
// them. Usage: node record-archs.mjs --dir DIR --out FILE (DIR holds <arch>.gguf and
// tokens.json).
import {readFileSync, readdirSync, writeFileSync} from "node:fs";
import {createHash} from "node:crypto";
import {loadModel, newSequence, arg, generator} from "./common.mjs";

const dir = arg("dir");
const out = arg("out");
const tokens = JSON.parse(readFileSync(`${dir}/tokens.json`, "utf8"));
const models = {};
for (const file of readdirSync(dir).filter((f) => f.endsWith(".gguf")).sort()) {
    const path = `${dir}/${file}`;
    const arch = file.replace(/\.gguf$/, "");
    const sha256 = createHash("sha256").update(readFileSync(path)).digest("hex");
    const {model} = await loadModel(path);
    const ids = tokens[arch];
    const {sequence} = await newSequence(model, {contextSize: 512});
    const res = await sequence.controlledEvaluate(ids.map((t) => [t, {generateNext: {probabilities: true}}]));
    const top2 = [];
    for (let i = 0; i < ids.length; i++) {
        const probs = res[i]?.next?.probabilities;
        if (!probs) throw new Error(`${arch}: no probabilities at position ${i}`);
        top2.push([...probs.entries()].slice(0, 2).map(([t, p]) => [t, Number(Math.log(p).toFixed(5))]));
    }
    models[arch] = {sha256, tokens: ids, top2};
    process.stderr.write(`${arch}: ${ids.length} positions\n`);
    await model.dispose();
}
writeFileSync(out, JSON.stringify({
    generator: generator(),
    settings: {threads: 1, context: 512, batch: 512, flash_attention: false},
    models,
}, null, 1) + "\n");
process.stderr.write(`wrote ${out}\n`);
