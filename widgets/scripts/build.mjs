// Bundles each widget into an ES module anywidget loads (`_esm`), written into the Python package:
// workbench/widgets/<name>.js and .css, plus the payload schema for Python's validation.
// Usage: node scripts/build.mjs [--check]   (--check: type-check first with tsc --noEmit)
import { build } from "esbuild";
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..");
const out = join(root, "..", "workbench", "widgets");
mkdirSync(out, { recursive: true });

const widgets = ["graph", "kernel_lab", "netron"];

// `import text from "./x?raw"`: the file's text as a string (what vite does in vitest)
const raw = {
  name: "raw",
  setup(b) {
    b.onResolve({ filter: /\?raw$/ }, (a) => ({ path: join(a.resolveDir, a.path.slice(0, -4)), namespace: "raw" }));
    b.onLoad({ filter: /.*/, namespace: "raw" }, (a) => ({ contents: readFileSync(a.path, "utf8"), loader: "text" }));
  },
};
for (const name of widgets) {
  await build({
    entryPoints: [join(root, "src", name, "index.ts")],
    outfile: join(out, `${name}.js`),
    bundle: true,
    format: "esm",
    target: "es2022",
    minify: true,
    legalComments: "none",
    logLevel: "warning",
    plugins: [raw],
  });
  copyFileSync(join(root, "src", name, `${name}.css`), join(out, `${name}.css`));
}
copyFileSync(join(root, "schema", "graph.schema.json"), join(out, "graph.schema.json"));
writeFileSync(join(out, "BUILD"), `built by widgets/scripts/build.mjs: ${widgets.join(", ")}\n`);
console.log(`widgets: built ${widgets.join(", ")} into ${out}`);
