// The key lives in sessionStorage and is sent only as the Bearer header.
"use strict";
const $ = (id) => document.getElementById(id);
$("key").value = sessionStorage.getItem("sdgate-key") || "";
$("key").addEventListener("change", () => { sessionStorage.setItem("sdgate-key", $("key").value); loadModels(); });
const auth = () => ({ Authorization: "Bearer " + $("key").value });
function status(msg, err) { $("status").textContent = msg; $("status").className = err ? "err" : ""; }
async function loadModels() {
  if (!$("key").value) return;
  try {
    const r = await fetch("/v1/models", { headers: auth() });
    const j = await r.json();
    if (!r.ok) { status(j.error ? j.error.message : r.statusText, true); return; }
    $("model").replaceChildren(...j.data.map((m) => new Option(m.id, m.id)));
  } catch (e) { status(String(e), true); }
}
let ctl = null;
$("cancel").addEventListener("click", () => { if (ctl) ctl.abort(); });
$("f").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const body = { model: $("model").value, prompt: $("prompt").value, size: $("size").value, response_format: "b64_json" };
  if ($("seed").value !== "") body.seed = Number($("seed").value);
  ctl = new AbortController(); $("cancel").disabled = false; status("generating…");
  try {
    const r = await fetch("/v1/images/generations", { method: "POST", signal: ctl.signal,
      headers: { ...auth(), "Content-Type": "application/json" }, body: JSON.stringify(body) });
    const j = await r.json();
    if (!r.ok) { status(j.error ? j.error.message : r.statusText, true); return; }
    $("out").replaceChildren(...j.data.map((d) => { const i = new Image(); i.src = "data:image/png;base64," + d.b64_json; return i; }));
    status("done");
  } catch (e) { status(e.name === "AbortError" ? "cancelled" : String(e), true); }
  finally { $("cancel").disabled = true; ctl = null; }
});
loadModels();
