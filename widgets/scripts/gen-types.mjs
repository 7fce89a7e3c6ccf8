// TypeScript types from the payload schemas -> src/generated/: schema/graph.schema.json -> schema.ts (the
// graph, overlay and kernel-lab payloads), every other schema/<name>.schema.json -> <name>.ts.
// Generated at build time and never committed: the schemas are the source of truth, Python validates
// against the same files (workbench.ui.assets.validate).
import { compile } from "json-schema-to-typescript";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const dir = join(here, "..", "schema");
const outDir = join(here, "..", "src", "generated");
mkdirSync(outDir, { recursive: true });
for (const file of readdirSync(dir).filter((f) => f.endsWith(".schema.json")).sort()) {
  const schema = JSON.parse(readFileSync(join(dir, file), "utf8"));
  const stem = file.slice(0, -".schema.json".length);
  const ts = await compile(schema, schema.title ?? "Payloads", {
    bannerComment: `/* Generated from widgets/schema/${file} by scripts/gen-types.mjs: do not edit. */`,
    unreachableDefinitions: true,
    additionalProperties: false,
    format: false,
  });
  writeFileSync(join(outDir, stem === "graph" ? "schema.ts" : `${stem}.ts`), ts);
}
