import { describe, expect, it } from "vitest";
import {
  IDLE, canSend, checkFiles, chunksOf, progressText, reduce, splitError, splitName, uploadId,
  type UploadState,
} from "../src/model_picker/logic";

const MiB = 1 << 20;
const limits = { maxBytes: 10 * MiB, maxFiles: 4 };

describe("file checks before sending", () => {
  it("accepts a model and the pairs multi-file formats need", () => {
    expect(checkFiles([{ name: "m.onnx", size: 100 }], limits)).toBeNull();
    expect(checkFiles([{ name: "m.xml", size: 100 }, { name: "m.bin", size: 5 * MiB }], limits)).toBeNull();
    expect(checkFiles([{ name: "m.ncnn.param", size: 10 }, { name: "m.ncnn.bin", size: 10 }], limits)).toBeNull();
    expect(checkFiles([{ name: "m.onnx", size: 10 }, { name: "m.onnx.data", size: 10 }], limits)).toBeNull();
    expect(checkFiles([{ name: "folder.zip", size: 10 }], limits)).toBeNull();
  });

  it("refuses a file over the limit before a byte is sent, naming the file and the limit", () => {
    const err = checkFiles([{ name: "big.onnx", size: 10 * MiB + 1 }], limits);
    expect(err).toContain("big.onnx");
    expect(err).toContain("10.0 MB");
    expect(err).toContain("nothing was sent");
    expect(checkFiles([{ name: "a.xml", size: 6 * MiB }, { name: "a.bin", size: 6 * MiB }], limits))
      .toContain("together");
    expect(checkFiles([{ name: "exact.onnx", size: 10 * MiB }], limits)).toBeNull();
  });

  it("refuses empty, duplicate, too many files, a zip with others, and a graph without its weights", () => {
    expect(checkFiles([], limits)).toContain("no file");
    expect(checkFiles([{ name: "e.onnx", size: 0 }], limits)).toContain("empty");
    expect(checkFiles([{ name: "a.onnx", size: 1 }, { name: "A.ONNX", size: 1 }], limits)).toContain("twice");
    expect(checkFiles(Array.from({ length: 5 }, (_, i) => ({ name: `f${i}`, size: 1 })), limits)).toContain("more than 4");
    expect(checkFiles([{ name: "m.zip", size: 1 }, { name: "m.onnx", size: 1 }], limits)).toContain(".zip");
    expect(checkFiles([{ name: "m.xml", size: 1 }], limits)).toContain("m.bin");
    expect(checkFiles([{ name: "m.xml", size: 1 }, { name: "other.bin", size: 1 }], limits)).toContain("m.bin");
    expect(checkFiles([{ name: "m.param", size: 1 }], limits)).toContain("ncnn");
  });

  it("splits names at the last suffix", () => {
    expect(splitName("a.b.XML")).toEqual(["a.b", ".xml"]);
    expect(splitName("noext")).toEqual(["noext", ""]);
    expect(splitName(".hidden")).toEqual([".hidden", ""]);
  });
});

describe("chunk planning", () => {
  it("covers every byte of every file once, in the order the kernel expects", () => {
    const sizes = [2.5 * MiB, 1, 0, MiB];
    const plan = chunksOf(sizes, MiB);
    expect(plan.map((c) => [c.file, c.offset, c.length])).toEqual([
      [0, 0, MiB], [0, MiB, MiB], [0, 2 * MiB, 0.5 * MiB], [1, 0, 1], [3, 0, MiB],
    ]);
    for (const [file, size] of sizes.entries()) {
      expect(plan.filter((c) => c.file === file).reduce((s, c) => s + c.length, 0)).toBe(size);
    }
    expect(plan.every((c) => c.length > 0 && c.length <= MiB)).toBe(true);
    expect(() => chunksOf([1], 0)).toThrow();
  });
});

describe("upload state", () => {
  const files = [{ name: "m.xml", size: 3 * MiB }, { name: "m.bin", size: MiB }];
  const started = (): UploadState => reduce(IDLE, { type: "start", id: "u1", files });

  it("waits for the kernel's first ack, then sends a window of chunks ahead of the acks", () => {
    let s = started();
    expect(s.phase).toBe("starting");
    expect(s.total).toBe(4 * MiB);
    expect(canSend(s, 4, MiB, 2)).toBe(false); // not before the kernel accepted the upload
    s = reduce(s, { type: "ack", id: "u1", received: 0 });
    expect(s.phase).toBe("sending");
    s = reduce(s, { type: "sent", bytes: MiB });
    s = reduce(s, { type: "sent", bytes: MiB });
    expect(canSend(s, 4, MiB, 2)).toBe(false); // two in flight
    s = reduce(s, { type: "ack", id: "u1", received: MiB });
    expect(canSend(s, 4, MiB, 2)).toBe(true);
    expect(progressText(s)).toBe("uploading m.xml + m.bin: 1.0 MB of 4.0 MB (25%)");
    s = reduce(reduce(s, { type: "sent", bytes: MiB }), { type: "sent", bytes: MiB });
    expect(s.next).toBe(4);
    expect(canSend(s, 4, MiB, 8)).toBe(false); // nothing left
    s = reduce(s, { type: "ack", id: "u1", received: 4 * MiB, done: true });
    expect(s.phase).toBe("loading");
    expect(progressText(s)).toContain("loading");
    expect(reduce(s, { type: "settled" })).toEqual(IDLE);
  });

  it("ignores acks of another upload and acks that go back or beyond what was sent", () => {
    let s = reduce(started(), { type: "ack", id: "u1", received: 0 });
    s = reduce(s, { type: "sent", bytes: MiB });
    expect(reduce(s, { type: "ack", id: "old", received: MiB })).toBe(s);
    expect(reduce(s, { type: "ack", id: "u1", received: 2 * MiB })).toBe(s);
    const acked = reduce(s, { type: "ack", id: "u1", received: MiB });
    expect(reduce(acked, { type: "ack", id: "u1", received: 0 })).toBe(acked);
  });

  it("stops on the kernel's abort or the user's cancel, and shows why", () => {
    const s = reduce(started(), { type: "ack", id: "u1", received: 0 });
    const aborted = reduce(s, { type: "abort", id: "u1", error: "chunks out of order — fix: try again" });
    expect(aborted.phase).toBe("refused");
    expect(canSend(aborted, 4, MiB, 4)).toBe(false);
    expect(progressText(aborted)).toContain("out of order");
    expect(reduce(s, { type: "abort", id: "other", error: "x" })).toBe(s);
    const cancelled = reduce(s, { type: "cancel" });
    expect(cancelled.phase).toBe("cancelled");
    expect(reduce(cancelled, { type: "sent", bytes: 1 })).toBe(cancelled);
    expect(reduce(IDLE, { type: "refuse", error: "too big" })).toMatchObject({ phase: "refused", error: "too big" });
  });
});

describe("helpers", () => {
  it("splits a WorkbenchError into problem and fix", () => {
    expect(splitError("x is bad — fix: do y")).toEqual({ problem: "x is bad", fix: "do y" });
    expect(splitError("plain")).toEqual({ problem: "plain", fix: "" });
  });

  it("makes ids the kernel accepts", () => {
    expect(uploadId()).toMatch(/^[a-z0-9]{16}$/);
    expect(uploadId(() => 0.999)).toBe("9".repeat(16));
  });
});
