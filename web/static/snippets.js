// The request on screen as curl, Python (openai) and Node (openai) code. The
// key stays an environment variable: it is never copied out of the page.
"use strict";

// SDK_FIELDS are the parameters the OpenAI SDKs name for each endpoint; the
// rest are sdgate's extensions, which Python must pass in extra_body (its
// methods take no unknown keyword arguments).
const COMMON_FIELDS = ["model", "n", "size", "response_format", "user"];
const SDK_FIELDS = {
  generations: new Set([...COMMON_FIELDS, "prompt", "quality", "output_format", "output_compression", "background",
    "moderation", "style", "stream", "partial_images"]),
  edits: new Set([...COMMON_FIELDS, "prompt", "quality", "output_format", "output_compression", "background",
    "input_fidelity", "stream", "partial_images"]),
  variations: new Set(COMMON_FIELDS),
};
const METHODS = { generations: "generate", edits: "edit", variations: "createVariation" };
const PY_METHODS = { generations: "generate", edits: "edit", variations: "create_variation" };

const shq = (s) => "'" + String(s).replaceAll("'", "'\\''") + "'";
const pyLit = (v) => (typeof v === "boolean" ? (v ? "True" : "False") : JSON.stringify(v));

// files are the multipart uploads of an edit or variation: field -> file name.
function curlSnippet(kind, body, files) {
  const url = `${location.origin}/v1/images/${kind}`;
  const head = `curl ${url} \\\n  -H "Authorization: Bearer $SDGATE_KEY" \\\n`;
  if (kind === "generations") {
    return head + `  -H "Content-Type: application/json" \\\n  -d ${shq(JSON.stringify(body))}`;
  }
  const parts = Object.entries(files).map(([f, name]) => `  -F ${f}=@${name}`);
  for (const [k, v] of Object.entries(body)) parts.push(`  --form-string ${k}=${shq(v)}`);
  return head + parts.join(" \\\n");
}

function pythonSnippet(kind, body, files) {
  const args = Object.entries(files).map(([f, name]) => `    ${f}=open(${pyLit(name)}, "rb"),`);
  const sdk = SDK_FIELDS[kind];
  const extra = Object.entries(body).filter(([k]) => !sdk.has(k));
  for (const [k, v] of Object.entries(body)) if (sdk.has(k)) args.push(`    ${k}=${pyLit(v)},`);
  if (extra.length) args.push(`    extra_body={${extra.map(([k, v]) => `${pyLit(k)}: ${pyLit(v)}`).join(", ")}},`);
  const ext = body.output_format || "png";
  const save = body.stream
    ? `for event in result:\n    if event.type.endswith(".completed"):\n        open(f"image-{event.seed}.${ext}", "wb").write(base64.b64decode(event.b64_json))`
    : `for i, d in enumerate(result.data):\n    open(f"image-{i}.${ext}", "wb").write(base64.b64decode(d.b64_json))`;
  return `import base64, os\nfrom openai import OpenAI\n\n` +
    `client = OpenAI(base_url=${pyLit(location.origin + "/v1")}, api_key=os.environ["SDGATE_KEY"])\n` +
    `result = client.images.${PY_METHODS[kind]}(\n${args.join("\n")}\n)\n${save}`;
}

function nodeSnippet(kind, body, files) {
  const args = Object.entries(files).map(([f, name]) => `  ${f}: fs.createReadStream(${JSON.stringify(name)}),`);
  for (const [k, v] of Object.entries(body)) args.push(`  ${k}: ${JSON.stringify(v)},`);
  const ext = body.output_format || "png";
  const save = body.stream
    ? `for await (const ev of result) {\n  if (ev.type.endsWith(".completed")) fs.writeFileSync(\`image-\${ev.seed}.${ext}\`, Buffer.from(ev.b64_json, "base64"));\n}`
    : `result.data.forEach((d, i) => fs.writeFileSync(\`image-\${i}.${ext}\`, Buffer.from(d.b64_json, "base64")));`;
  const extensions = Object.keys(body).filter((k) => !SDK_FIELDS[kind].has(k));
  const note = extensions.length ? `// ${extensions.join(", ")}: sdgate extensions; the SDK sends them as given.\n` : "";
  return `import fs from "node:fs";\nimport OpenAI from "openai";\n\n` +
    `const client = new OpenAI({ baseURL: ${JSON.stringify(location.origin + "/v1")}, apiKey: process.env.SDGATE_KEY });\n` +
    `${note}const result = await client.images.${METHODS[kind]}({\n${args.join("\n")}\n});\n${save}`;
}

// showSnippets fills the three snippet blocks for one request.
function showSnippets(kind, body, files) {
  $("curl").textContent = curlSnippet(kind, body, files || {});
  $("python").textContent = pythonSnippet(kind, body, files || {});
  $("node").textContent = nodeSnippet(kind, body, files || {});
}

function bindCopyButtons() {
  for (const b of document.querySelectorAll("button[data-copy]")) {
    b.addEventListener("click", async () => {
      try {
        await navigator.clipboard.writeText($(b.dataset.copy).textContent);
        b.textContent = "copied";
      } catch (_) { b.textContent = "select and copy"; }
      setTimeout(() => { b.textContent = "copy"; }, 1500);
    });
  }
}
