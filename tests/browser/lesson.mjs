// The lesson beside the playground: both languages, Try-it blocks, the model catalogue, the
// embeddable widget and its postMessage API, keyboard-only use and narrow screens.
import {
    BASE, withBrowser, collectErrors, waitForStatus, waitForAnswer, latestAnswer, assert, assertEq,
} from "./harness.mjs";

const HOST = process.env.OMP_HOST_URL;
const THIRD = process.env.OMP_THIRD_URL;
const SECTIONS = ["intro", "goals", "what-is-open", "benefits", "families", "llama2", "mistral", "falcon", "choose", "next"];

async function sections(page) {
    return page.evaluate(() => [...document.querySelectorAll("[data-section]")].map((s) => ({
        id: s.dataset.section,
        heading: s.querySelector("h2, h3")?.textContent ?? "",
        text: s.textContent.length,
    })));
}

export const tests = [
    ["both languages render every section of the lesson", () => withBrowser(async (ctx) => {
        const page = await ctx.newPage();
        const errors = collectErrors(page);
        await page.goto(`${BASE}?lang=ko`);
        await page.waitForSelector("[data-section]");
        const ko = await sections(page);
        assertEq(ko.map((s) => s.id), SECTIONS, "Korean sections");
        assert(ko.every((s) => s.heading && s.text > 40), "every Korean section has a heading and text");
        assert(/[가-힣]/.test(ko[0].heading), `Korean heading: ${ko[0].heading}`);
        const tocKo = await page.locator("nav.toc a").count();
        assertEq(tocKo, SECTIONS.length, "table of contents entries");
        // Switch language with the button: content, URL and <html lang> follow.
        await page.getByTestId("lang-en").click();
        await page.waitForFunction(() => /Introduction/.test(document.querySelector('[data-section="intro"] h2')?.textContent ?? ""));
        const en = await sections(page);
        assertEq(en.map((s) => s.id), SECTIONS, "English sections");
        assert(page.url().includes("lang=en"), `lang kept in the URL: ${page.url()}`);
        assertEq(await page.evaluate(() => document.documentElement.lang), "en", "document language");
        // A TOC link points at its section.
        await page.locator('nav.toc a[href="#falcon"]').click();
        assert(page.url().endsWith("#falcon"), "anchors work");
        // The UI follows the language too.
        assertEq((await page.getByTestId("send").textContent()).trim(), "Send", "English button");
        await page.getByTestId("lang-ko").click();
        assertEq((await page.getByTestId("send").textContent()).trim(), "보내기", "Korean button");
        assert(errors.length === 0, errors.join("\n"));
    })],

    ["a Try-it block fills the settings and runs the playground", () => withBrowser(async (ctx) => {
        const page = await ctx.newPage();
        await page.goto(`${BASE}?lang=en`);
        await waitForStatus(page, "ready");
        await page.getByTestId("try-ask-open").click();
        const {ids} = await waitForAnswer(page);
        assert(ids.length > 0, "the experiment produced an answer");
        const asked = await page.locator(".turn.user .text").last().textContent();
        assertEq(asked, "What makes a language model open source?", "the experiment's prompt was sent");
        assertEq(await page.getByTestId("param-temperature").inputValue(), "0", "its temperature was applied");
        // The seed experiment twice gives the same answer.
        const trySeed = page.locator('[data-try="seed"] button');
        await trySeed.click();
        const first = await waitForAnswer(page);
        // Watch for the answer being replaced, then wait for the new one to finish.
        await page.evaluate(() => {
            window.restarted = false;
            new MutationObserver(() => {
                if (document.querySelector('[data-testid="output"]')?.dataset.done !== "true") window.restarted = true;
            }).observe(document.body, {subtree: true, childList: true, attributes: true});
        });
        await trySeed.click();
        await page.waitForFunction(() => window.restarted);
        const second = await waitForAnswer(page);
        assertEq(second.ids, first.ids, "same seed, same answer");
        // An experiment starts a new conversation, so history cannot change its answer.
        assertEq(await page.locator(".turn").count(), 2, "one question and one answer");
        assertEq(await page.getByTestId("param-seed").inputValue(), "7", "the seed was applied");
    })],

    ["catalogue filters work and a non-runnable model cannot be loaded", () => withBrowser(async (ctx) => {
        const page = await ctx.newPage();
        await page.goto(`${BASE}?lang=en`);
        await page.locator('[data-try="another-model"] button').click();
        await page.waitForFunction(() => document.getElementById("catalogue")?.open === true);
        const shown = () => page.evaluate(() => [...document.querySelectorAll("#catalogue [data-model]")].map((m) => m.dataset.model));
        const all = await shown();
        assert(all.length >= 8, `catalogue entries: ${all}`);
        await page.getByTestId("filter-task").selectOption("code");
        const code = await shown();
        assert(code.length > 0 && code.length < all.length, `task filter: ${code}`);
        assert(!code.includes("smollm2-135m-instruct-q4_1"), "the chat-only model is filtered out");
        await page.getByTestId("filter-task").selectOption("");
        await page.getByTestId("filter-size").selectOption("large");
        const large = await shown();
        assert(large.includes("mistral-7b-instruct-v0.2-q4_k_m") && !large.includes("smollm2-135m-instruct-q4_1"), `size filter: ${large}`);
        await page.getByTestId("filter-size").selectOption("");
        await page.getByTestId("filter-license").selectOption("llama2");
        assertEq(await shown(), ["llama-2-7b-chat-q4_k_m"], "licence filter");
        await page.getByTestId("filter-license").selectOption("");
        // An architecture the engine cannot run: disabled, with the reason.
        const phi2 = page.locator('[data-model="phi-2-q4_0"]');
        assert(await phi2.getByTestId("load-phi-2-q4_0").isDisabled(), "Phi-2 cannot be loaded");
        assert((await phi2.getByTestId("why-not").textContent()).includes("phi2"), "and says why");
        // Qwen2.5 (qwen2) and the second local model (gemma3) can.
        for (const id of ["qwen2.5-0.5b-instruct-q8_0", "gemma-3-270m-q4_k_m"]) {
            assert(!(await page.getByTestId(`load-${id}`).isDisabled()), `${id} can be loaded`);
        }
        // Too large for a tab: disabled, with the estimate.
        const mistral = page.locator('[data-model="mistral-7b-instruct-v0.2-q4_k_m"]');
        assert(await mistral.getByTestId("load-mistral-7b-instruct-v0.2-q4_k_m").isDisabled(), "Mistral 7B cannot be loaded");
        assert((await mistral.textContent()).includes("too large"), "and says it is too large");
        // The openness checklist has the five criteria with sources.
        const checks = await page.locator('[data-model="olmo-2-7b-instruct-q4_k_m"] .openness li a').count();
        assertEq(checks, 5, "five criteria with a source link");
    })],

    ["embedded in an iframe, it runs a prompt through postMessage and ignores other origins", () => withBrowser(async (ctx) => {
        assert(HOST && THIRD, "OMP_HOST_URL and OMP_THIRD_URL are set");
        const page = await ctx.newPage();
        const q = new URLSearchParams({app: BASE, third: `${THIRD}third.html`});
        await page.goto(`${HOST}index.html?${q}`);
        await page.waitForFunction(() => window.events.some((e) => e.type === "omp:ready"), null, {timeout: 180_000});
        const app = page.frameLocator("#app");
        assertEq(await app.locator("[data-section]").count(), 0, "no lesson in embed mode");
        // A third origin tries to run a prompt: nothing happens.
        await page.evaluate(() => window.attack());
        await page.waitForTimeout(2000);
        const transcript = await app.locator(".transcript").textContent();
        assert(!transcript.includes("THIRD ORIGIN PROMPT"), "the third origin's prompt was ignored");
        assert(!(await page.evaluate(() => window.events.some((e) => e.type === "omp:token"))), "no tokens after the third-origin message");
        // The host runs one.
        await page.evaluate(() => window.run("Say hello.", {temperature: 0, max_tokens: 12}));
        await page.waitForFunction(() => window.events.some((e) => e.type === "omp:done"), null, {timeout: 180_000});
        const events = await page.evaluate(() => window.events);
        const tokens = events.filter((e) => e.type === "omp:token");
        const done = events.find((e) => e.type === "omp:done");
        assert(tokens.length > 0, "omp:token events arrived");
        assertEq(done.ids.length, tokens.length, "omp:done lists every token");
        assert(done.text.startsWith(tokens.map((t) => t.text).join("")), "omp:done has the whole text");
        assert(done.stats.generated_tokens === done.ids.length, "with statistics");
        // A bad request gets omp:error.
        await page.evaluate(() => window.run("x", {temperature: "hot"}));
        await page.waitForFunction(() => window.events.some((e) => e.type === "omp:error"));
    })],

    ["the chat works with the keyboard alone", () => withBrowser(async (ctx) => {
        const page = await ctx.newPage();
        await page.goto(`${BASE}?lang=en`);
        await waitForStatus(page, "ready");
        // The first Tab reaches the skip link; Enter moves focus to the message box.
        await page.keyboard.press("Tab");
        assertEq(await page.evaluate(() => document.activeElement?.dataset.testid), "skip", "skip link first");
        await page.keyboard.press("Enter");
        assertEq(await page.evaluate(() => document.activeElement?.id), "prompt", "focus in the message box");
        await page.keyboard.type("Hi there!");
        await page.keyboard.press("Shift+Enter");
        await page.keyboard.type("How are you?");
        assertEq(await page.getByTestId("prompt").inputValue(), "Hi there!\nHow are you?", "Shift+Enter adds a line");
        await page.keyboard.press("Enter");
        const {ids} = await waitForAnswer(page);
        assert(ids.length > 0, "Enter sent the message");
        // Tab from the message box reaches Send, Stop, Clear; Space on Clear empties the chat.
        await page.getByTestId("prompt").focus();
        for (let i = 0; i < 6; i++) {
            await page.keyboard.press("Tab");
            if (await page.evaluate(() => document.activeElement?.dataset.testid) === "clear") break;
        }
        assertEq(await page.evaluate(() => document.activeElement?.dataset.testid), "clear", "Clear is reachable");
        await page.keyboard.press("Space");
        await page.waitForFunction(() => document.querySelectorAll(".turn").length === 0);
        // Focus goes back to the message box (Clear is now disabled), and it is visible.
        assertEq(await page.evaluate(() => document.activeElement?.id), "prompt", "focus back in the message box");
        const outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
        assert(outline !== "none", `a visible focus outline (${outline})`);
    })],

    ["it works 360 px wide", () => withBrowser(async (ctx) => {
        const page = await ctx.newPage();
        await page.setViewportSize({width: 360, height: 780});
        await page.goto(`${BASE}?lang=ko`);
        await waitForStatus(page, "ready");
        const width = await page.evaluate(() => document.documentElement.scrollWidth);
        assert(width <= 360, `no horizontal scrolling (${width} px)`);
        // Every form control has a label or an accessible name.
        const unlabelled = await page.evaluate(() => [...document.querySelectorAll("input, select, textarea, button")]
            .filter((el) => el.type !== "hidden")
            .filter((el) => !(el.labels?.length || el.getAttribute("aria-label") || el.textContent.trim() || el.title))
            .map((el) => el.outerHTML.slice(0, 80)));
        assertEq(unlabelled, [], "controls without a name");
    })],
    ["text has at least 4.5:1 contrast against its background", () => withBrowser(async (ctx) => {
        const page = await ctx.newPage();
        await page.goto(`${BASE}?lang=en`);
        await waitForStatus(page, "ready");
        await page.locator('[data-try="another-model"] button').click();
        const worst = await page.evaluate(() => {
            const rgb = (c) => (c.match(/[\d.]+/g) ?? []).map(Number);
            const lum = ([r, g, b]) => {
                const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
                return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
            };
            const background = (el) => {
                for (let e = el; e; e = e.parentElement) {
                    const c = rgb(getComputedStyle(e).backgroundColor);
                    if (c.length === 3 || c[3] > 0) return c;
                }
                return [255, 255, 255];
            };
            const found = [];
            const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
            for (let n = walker.nextNode(); n; n = walker.nextNode()) {
                const el = n.parentElement;
                if (!n.textContent.trim() || !el.checkVisibility() || el.closest("[disabled], .skip")) continue;
                const a = lum(rgb(getComputedStyle(el).color)), b = lum(background(el));
                const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
                found.push({ratio, text: n.textContent.trim().slice(0, 40), tag: el.tagName});
            }
            found.sort((x, y) => x.ratio - y.ratio);
            return found.slice(0, 3);
        });
        console.log(`      lowest contrast ${worst[0]?.ratio.toFixed(2)}:1 (${worst[0]?.text})`);
        assert(worst.length > 0, "text was found");
        assert(worst[0].ratio >= 4.5, `low contrast: ${JSON.stringify(worst)}`);
    })],
];

