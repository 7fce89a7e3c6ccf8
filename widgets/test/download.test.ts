import { describe, expect, it } from "vitest";
import { decodeReply } from "../src/download/index";

describe("download replies", () => {
  it("makes a blob of the buffer with the kernel's name and type", async () => {
    const bytes = new TextEncoder().encode("<html>report</html>");
    const out = decodeReply({ kind: "file", name: "report.html", mime: "text/html" }, [bytes.buffer]);
    expect("blob" in out && out.name).toBe("report.html");
    if (!("blob" in out)) throw new Error("no blob");
    expect(out.blob.type).toBe("text/html");
    expect(await out.blob.text()).toBe("<html>report</html>");
  });

  it("keeps the suggested name a plain file name", () => {
    const out = decodeReply({ kind: "file", name: "../../etc/passwd", mime: "" }, [new ArrayBuffer(1)]);
    expect("name" in out && out.name).toBe(".._.._etc_passwd");
  });

  it("reads a DataView window, not the whole underlying buffer", async () => {
    const whole = new Uint8Array([1, 2, 3, 4, 5]);
    const out = decodeReply({ kind: "file", name: "x.bin" }, [new DataView(whole.buffer, 1, 3)]);
    if (!("blob" in out)) throw new Error("no blob");
    expect(new Uint8Array(await out.blob.arrayBuffer())).toEqual(new Uint8Array([2, 3, 4]));
  });

  it("reports errors and missing files", () => {
    expect(decodeReply({ kind: "error", error: "too big" }, [])).toEqual({ error: "too big" });
    expect(decodeReply({ kind: "file", name: "a" }, [])).toEqual({ error: "the kernel sent no file" });
  });
});
