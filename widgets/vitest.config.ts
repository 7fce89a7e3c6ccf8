import { defineConfig } from "vitest/config";

// Unit tests run in Node: layout, payload decoding and interaction state need no DOM.
export default defineConfig({ test: { include: ["test/**/*.test.ts"], environment: "node", pool: "threads", poolOptions: { threads: { singleThread: true } } } });
