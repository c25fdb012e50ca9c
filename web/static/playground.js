// Uses common.js for the key (sessionStorage, Bearer header only).
"use strict";
async function loadModels() {
  if (!sessionStorage.getItem(KEY_ITEM)) return;
  try {
    const r = await fetch("/v1/models", { headers: authHeaders() });
    if (!r.ok) { setStatus(await apiError(r), true); return; }
    const j = await r.json();
    $("model").replaceChildren(...j.data.map((m) => new Option(m.id, m.id)));
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
  return b;
}

// curlFor is the same request for a shell; the key stays a variable so it is
// never copied out of the page.
function curlFor(body) {
  const json = JSON.stringify(body).replaceAll("'", "'\\''");
  return `curl ${location.origin}/v1/images/generations \\\n  -H "Authorization: Bearer $SDGATE_KEY" \\\n` +
    `  -H "Content-Type: application/json" \\\n  -d '${json}'`;
}

function figure(d, mime) {
  const f = document.createElement("figure");
  const i = new Image();
  i.src = `data:${mime};base64,` + d.b64_json;
  i.alt = "generated image, seed " + d.seed;
  const c = document.createElement("figcaption");
  c.textContent = "seed " + d.seed;
  f.append(i, c);
  return f;
}

bindKey($("key"), loadModels);
let ctl = null;
$("cancel").addEventListener("click", () => { if (ctl) ctl.abort(); });
$("f").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const body = requestBody();
  $("curl").textContent = curlFor(body);
  ctl = new AbortController(); $("cancel").disabled = false; setStatus("generating…");
  try {
    const r = await fetch("/v1/images/generations", { method: "POST", signal: ctl.signal,
      headers: { ...authHeaders(), "Content-Type": "application/json" }, body: JSON.stringify(body) });
    if (!r.ok) { setStatus(await apiError(r), true); return; }
    const j = await r.json();
    const mime = "image/" + (j.output_format || body.output_format || "png");
    $("out").replaceChildren(...j.data.map((d) => figure(d, mime)));
    setStatus("done");
  } catch (e) { setStatus(e.name === "AbortError" ? "cancelled" : String(e), true); }
  finally { $("cancel").disabled = true; ctl = null; }
});
