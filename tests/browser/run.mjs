// Runs every browser test file against OMP_BASE_URL (started by `cargo xtask test`).
import {run} from "./harness.mjs";
import {tests as playground} from "./playground.mjs";
import {tests as lesson} from "./lesson.mjs";
import {tests as faults} from "./faults.mjs";

await run([...playground, ...lesson, ...faults]);
