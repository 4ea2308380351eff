// Shared set-up for the llama.cpp reference scripts: the prebuilt CPU binaries only (never a
// build, never a download), one thread unless asked otherwise.
import {readFileSync} from "node:fs";
import {getLlama, JinjaTemplateChatWrapper} from "node-llama-cpp";

export async function loadModel(modelPath) {
    const llama = await getLlama({build: "never", gpu: false, logLevel: "error", progressLogs: false});
    const model = await llama.loadModel({modelPath});
    return {llama, model};
}

export async function newSequence(model, {threads = 1, contextSize = 2048} = {}) {
    const context = await model.createContext({contextSize, threads, batchSize: 512, flashAttention: false});
    return {context, sequence: context.getSequence()};
}

/** Renders `messages` ({role, content}) with the model's own chat template, ending where the
 * assistant's answer begins, and returns the text and llama.cpp's token ids for it. */
export function renderChat(model, messages) {
    const template = model.fileInfo.metadata.tokenizer.chat_template;
    const wrapper = new JinjaTemplateChatWrapper({template});
    const chatHistory = messages.map((m) =>
        m.role === "assistant" ? {type: "model", response: [m.content]}
            : m.role === "system" ? {type: "system", text: m.content}
                : {type: "user", text: m.content});
    chatHistory.push({type: "model", response: []});
    const {contextText} = wrapper.generateContextState({chatHistory});
    const text = contextText.toString();
    const ids = model.tokenize(text, true);
    return {text, ids};
}

/** Greedy continuation: token ids until an end-of-generation token or `maxTokens`. */
export async function greedy(model, sequence, promptIds, maxTokens, onToken = () => {}) {
    const out = [];
    for await (const t of sequence.evaluate(promptIds, {temperature: 0})) {
        if (model.isEogToken(t)) break;
        out.push(t);
        onToken(t, out.length);
        if (out.length >= maxTokens) break;
    }
    return out;
}

export function arg(name, fallback) {
    const i = process.argv.indexOf(`--${name}`);
    return i >= 0 ? process.argv[i + 1] : fallback;
}

/** Which llama.cpp made a record: the node-llama-cpp version and its llama.cpp tag. */
export function generator() {
    const read = (path) => JSON.parse(readFileSync(new URL(path, import.meta.url), "utf8"));
    const pkg = read("./node_modules/node-llama-cpp/package.json");
    const info = read("./node_modules/node-llama-cpp/llama/llama.cpp.info.json");
    return `node-llama-cpp ${pkg.version} (llama.cpp ${info.tag}), prebuilt CPU binaries`;
}
