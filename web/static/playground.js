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
bindKey($("key"), loadModels);
let ctl = null;
$("cancel").addEventListener("click", () => { if (ctl) ctl.abort(); });
$("f").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const body = { model: $("model").value, prompt: $("prompt").value, size: $("size").value, response_format: "b64_json" };
  if ($("seed").value !== "") body.seed = Number($("seed").value);
  ctl = new AbortController(); $("cancel").disabled = false; setStatus("generating…");
  try {
    const r = await fetch("/v1/images/generations", { method: "POST", signal: ctl.signal,
      headers: { ...authHeaders(), "Content-Type": "application/json" }, body: JSON.stringify(body) });
    if (!r.ok) { setStatus(await apiError(r), true); return; }
    const j = await r.json();
    $("out").replaceChildren(...j.data.map((d) => { const i = new Image(); i.src = "data:image/png;base64," + d.b64_json; return i; }));
    setStatus("done");
  } catch (e) { setStatus(e.name === "AbortError" ? "cancelled" : String(e), true); }
  finally { $("cancel").disabled = true; ctl = null; }
});
