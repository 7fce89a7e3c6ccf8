// TypeScript types from the one payload schema (schema/graph.schema.json) -> src/generated/schema.ts.
// Generated at build time and never committed: the schema is the source of truth, Python validates
// against the same file (workbench.ui.payloads).
import { compile } from "json-schema-to-typescript";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const schema = JSON.parse(readFileSync(join(here, "..", "schema", "graph.schema.json"), "utf8"));
const ts = await compile(schema, "WidgetPayloads", {
  bannerComment: "/* Generated from widgets/schema/graph.schema.json by scripts/gen-types.mjs: do not edit. */",
  unreachableDefinitions: true,
  additionalProperties: false,
  format: false,
});
const out = join(here, "..", "src", "generated", "schema.ts");
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, ts);
