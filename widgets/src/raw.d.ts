/** `import text from "./file?raw"`: the file's text (vite in vitest, an esbuild plugin in scripts/build.mjs). */
declare module "*?raw" {
  const text: string;
  export default text;
}
