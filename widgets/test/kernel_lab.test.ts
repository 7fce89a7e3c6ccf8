import { describe, expect, it } from "vitest";
import { accessPixels, highlight } from "../src/kernel_lab/highlight";

describe("KernelLab editor", () => {
  it("highlights Python and escapes everything", () => {
    const html = highlight('@triton.jit\ndef add(x, BLOCK: tl.constexpr):  # <b>\n    return "</pre><script>" + 0x1F');
    expect(html).toContain('<span class="tok-dec">@triton.jit</span>');
    expect(html).toContain('<span class="tok-kw">def</span> <span class="tok-def">add</span>');
    expect(html).toContain('<span class="tok-tl">tl</span>');
    expect(html).toContain('<span class="tok-com"># &lt;b&gt;</span>');
    expect(html).toContain("&lt;/pre&gt;&lt;script&gt;");
    expect(html).not.toContain("<script>");
    expect(html).toContain('<span class="tok-num">0x1F</span>');
  });

  it("colours an access map: untouched white, read blue, written red", () => {
    const px = accessPixels([[0, 4]], [[0, 0]]);
    expect([...px.slice(0, 4)]).toEqual([255, 255, 255, 255]);
    expect([...px.slice(4, 8)]).toEqual([65, 135, 255, 255]);
    const w = accessPixels([[0]], [[2]]);
    expect([...w.slice(0, 4)]).toEqual([255, 85, 70, 255]);
  });
});
