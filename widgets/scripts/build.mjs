// Bundles each widget into an ES module anywidget loads (`_esm`), written into the Python package:
// workbench/widgets/<name>.js and .css (one per folder of src/ with an index.ts), plus the payload
// schemas (schema/*.schema.json) for Python's validation.
// Usage: node scripts/build.mjs [--check]   (--check: type-check first with tsc --noEmit)
import { build } from "esbuild";
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..");
const out = join(root, "..", "workbench", "widgets");
mkdirSync(out, { recursive: true });

// every folder of src/ with an index.ts is a widget (shared/ and generated/ are libraries)
const widgets = readdirSync(join(root, "src"), { withFileTypes: true })
  .filter((d) => d.isDirectory() && existsSync(join(root, "src", d.name, "index.ts")))
  .map((d) => d.name)
  .sort();

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
  const css = join(root, "src", name, `${name}.css`);
  if (existsSync(css)) copyFileSync(css, join(out, `${name}.css`));
}
// the payload schemas, for Python's validation (workbench.ui.assets.validate)
for (const f of readdirSync(join(root, "schema")).filter((f) => f.endsWith(".schema.json"))) {
  copyFileSync(join(root, "schema", f), join(out, f));
}
writeFileSync(join(out, "BUILD"), `built by widgets/scripts/build.mjs: ${widgets.join(", ")}\n`);
console.log(`widgets: built ${widgets.join(", ")} into ${out}`);
