import { formatPlan, planPod } from "/work/main/src/plan/mod.ts";
import { inputFromManifest } from "/work/main/tests/plan/_fixtures.ts";
console.log(formatPlan(planPod(inputFromManifest(Deno.readTextFileSync(Deno.args[0])))));
