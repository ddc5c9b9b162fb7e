// Parse a Mermaid diagram (file given as the argument) with Mermaid itself; print {"ok", "diagramType"|"error"}.
// Mermaid expects a browser: jsdom stands in for the DOM it touches while parsing (nothing is rendered).
import { JSDOM } from "jsdom";
import fs from "node:fs";
const dom = new JSDOM("<!DOCTYPE html><body></body>");
globalThis.window = dom.window; globalThis.document = dom.window.document;
const { default: mermaid } = await import("mermaid");
mermaid.initialize({ startOnLoad: false });
const text = fs.readFileSync(process.argv[2], "utf8");
try {
  const r = await mermaid.parse(text);
  console.log(JSON.stringify({ ok: true, diagramType: r.diagramType }));
} catch (e) {
  console.log(JSON.stringify({ ok: false, error: String(e.message || e) }));
  process.exit(1);
}
