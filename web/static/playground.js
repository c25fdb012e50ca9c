// The playground: generations (streamed or not), edits with a painted mask
// (mask.js), variations of any shown image, and the request as code
// (snippets.js). Uses common.js for the key (sessionStorage, Bearer only).
"use strict";
function modelLabel(m) {
  const about = [m.family, m.native_size].filter(Boolean).join(", ");
  return about ? `${m.id} (${about})` : m.id;
}

async function loadModels() {
  if (!sessionStorage.getItem(KEY_ITEM)) return;
  try {
    const r = await fetch("/v1/models", { headers: authHeaders() });
    if (!r.ok) { setStatus(await apiError(r), true); return; }
    const j = await r.json();
    const prev = $("model").value;
    // Aliases (dall-e-3, ...) carry no family; folders say theirs and the
    // size they generate at natively, so the label tells the models apart.
    $("model").replaceChildren(...j.data.map((m) => new Option(modelLabel(m), m.id)));
    if (j.data.some((m) => m.id === prev)) $("model").value = prev;
    updateSnippets();
  } catch (e) { setStatus(String(e), true); }
}

// requestBody is the generation request from the form; empty fields are left
// out so the server applies the model's defaults. negative_prompt, seed,
// steps, guidance_scale and scheduler are sdgate's extensions (compat).
function requestBody() {
  const b = { model: $("model").value, prompt: $("prompt").value, response_format: "b64_json" };
  const text = { size: "size", negative_prompt: "negative", quality: "quality", scheduler: "scheduler", output_format: "format" };
  for (const [k, id] of Object.entries(text)) if ($(id).value.trim() !== "") b[k] = $(id).value.trim();
  const num = { n: "n", seed: "seed", steps: "steps", guidance_scale: "guidance" };
  for (const [k, id] of Object.entries(num)) if ($(id).value !== "") b[k] = Number($(id).value);
  if ($("stream").checked) {
    b.stream = true;
    if ($("partials").value !== "") b.partial_images = Number($("partials").value);
  }
  return b;
}

// The multipart endpoints take a subset: edits do not stream here, and
// variations take neither quality nor output format.
const VARIATION_FIELDS = ["model", "n", "size", "response_format", "prompt", "negative_prompt", "seed", "steps",
  "guidance_scale", "scheduler", "strength"];

function editBody() {
  const b = requestBody();
  delete b.stream;
  delete b.partial_images;
  if ($("strength").value !== "") b.strength = Number($("strength").value);
  return b;
}

function variationBody() {
  const all = editBody(), b = {};
  for (const k of VARIATION_FIELDS) if (all[k] !== undefined && all[k] !== "") b[k] = all[k];
  return b;
}

const mode = () => $("mode").value;

// updateSnippets shows the request the form would send now.
function updateSnippets() {
  if (mode() === "edits") showSnippets("edits", editBody(), editor.painted ? { image: "image.png", mask: "mask.png" } : { image: "image.png" });
  else showSnippets("generations", requestBody());
}

// b64Blob turns base64 image data into a Blob without fetch (the CSP allows
// no fetch of data: URLs).
function b64Blob(b64, mime) {
  const bin = atob(b64), bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return new Blob([bytes], { type: mime });
}

function button(label, onClick) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = label;
  b.addEventListener("click", onClick);
  return b;
}

// figure shows one image with its seed and the actions on it.
function figure(d, mime, caption) {
  const f = document.createElement("figure");
  const i = new Image();
  i.src = `data:${mime};base64,` + d.b64_json;
  i.alt = caption;
  const c = document.createElement("figcaption");
  c.textContent = caption;
  if (d.seed !== undefined) {
    c.append(" ", button("Variations", () => runVariation(b64Blob(d.b64_json, mime))),
      " ", button("Edit", () => editImage(b64Blob(d.b64_json, mime))));
  }
  f.append(i, c);
  return f;
}

async function editImage(blob) {
  $("mode").value = "edits";
  showMode();
  try { await loadEditImage(blob); setStatus("Paint the part to change, then press Edit."); } catch (e) { setStatus(e.message, true); }
  $("editbox").scrollIntoView();
}

function showMode() {
  $("editbox").hidden = mode() !== "edits";
  $("stream").disabled = $("partials").disabled = mode() === "edits"; // sdgate streams generations only
  $("go").textContent = mode() === "edits" ? "Edit" : "Generate";
  updateSnippets();
}

function formData(body, files) {
  const fd = new FormData();
  for (const [k, blob] of Object.entries(files)) fd.append(k, blob, k + ".png");
  for (const [k, v] of Object.entries(body)) fd.append(k, String(v));
  return fd;
}

// showStreamEvent shows one streamed event (OpenAI's shapes): a partial
// image replaces the faded preview, a completed one takes its place for
// good. It says whether the event completed an image.
function showStreamEvent(type, ev, mime) {
  const preview = $("out").querySelector("figure.partial");
  if (type.endsWith(".partial_image")) {
    const p = figure(ev, mime, `partial ${ev.partial_image_index + 1}`);
    p.className = "partial";
    if (preview) preview.replaceWith(p); else $("out").append(p);
    return false;
  }
  if (!type.endsWith(".completed")) return false;
  const f = figure(ev, mime, "seed " + ev.seed);
  if (preview) preview.replaceWith(f); else $("out").append(f);
  return true;
}

let ctl = null;

// send posts one request and shows what comes back; init is fetch's body
// and headers. Streamed answers show each event as it arrives.
async function send(kind, body, init) {
  if (ctl) return; // a request runs; Cancel stops it first
  ctl = new AbortController();
  $("cancel").disabled = false;
  $("go").disabled = true; // one request at a time: Cancel stops it
  busy(kind === "generations" ? "generating…" : kind === "edits" ? "editing…" : "making variations…");
  try {
    const r = await fetch("/v1/images/" + kind, { method: "POST", signal: ctl.signal, ...init,
      headers: { ...authHeaders(), ...(init.headers || {}) } });
    if (!r.ok) { setStatus(await apiError(r), true); return; }
    const mime = (fmt) => "image/" + (fmt || body.output_format || "png");
    if (body.stream) {
      $("out").replaceChildren();
      let done = 0;
      await readEvents(r, (type, ev) => {
        if (showStreamEvent(type, ev, mime(ev.output_format))) busy(`received ${++done} image(s)…`);
      });
      setStatus(done ? "done" : "the stream ended without an image", !done);
      return;
    }
    const j = await r.json();
    $("out").replaceChildren(...j.data.map((d) => figure(d, mime(j.output_format), "seed " + d.seed)));
    setStatus("done");
  } catch (e) { setStatus(e.name === "AbortError" ? "cancelled" : e.message || String(e), true); }
  finally { $("cancel").disabled = true; $("go").disabled = false; ctl = null; }
}

async function runVariation(blob) {
  const body = variationBody();
  showSnippets("variations", body, { image: "image.png" });
  await send("variations", body, { body: formData(body, { image: blob }) });
}

bindKey($("key"), loadModels);
bindEditor();
bindCopyButtons();
$("mode").addEventListener("change", showMode);
$("f").addEventListener("input", updateSnippets);
$("f").addEventListener("change", updateSnippets);
$("canvas").addEventListener("pointerup", updateSnippets);
$("cancel").addEventListener("click", () => { if (ctl) ctl.abort(); });
$("f").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  updateSnippets();
  if (mode() !== "edits") {
    const body = requestBody();
    await send("generations", body, { headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    return;
  }
  if (!editor.blob) { setStatus("Choose an image to edit first.", true); return; }
  const body = editBody(), files = { image: editor.blob };
  const mask = await maskBlob();
  if (mask) files.mask = mask;
  await send("edits", body, { body: formData(body, files) });
});
showMode();
