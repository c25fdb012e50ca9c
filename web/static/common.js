// Shared by the browser pages. The API key lives only in sessionStorage (gone
// when the tab closes) and leaves the page only as the Bearer header: never
// in a URL, where it would end up in history and access logs.
"use strict";
const $ = (id) => document.getElementById(id);
const KEY_ITEM = "sdgate-key";

// bindKey fills the key input from sessionStorage and stores edits; onChange
// runs after each edit (and once at start when a key is already stored).
function bindKey(input, onChange) {
  input.value = sessionStorage.getItem(KEY_ITEM) || "";
  input.addEventListener("change", () => {
    sessionStorage.setItem(KEY_ITEM, input.value.trim());
    if (onChange) onChange();
  });
  if (input.value && onChange) onChange();
}

// authHeaders is the request headers carrying the stored key, if any.
function authHeaders() {
  const k = sessionStorage.getItem(KEY_ITEM);
  return k ? { Authorization: "Bearer " + k } : {};
}

// apiError is the server's message from OpenAI's error envelope, or the
// status line when the body is not that envelope.
async function apiError(r) {
  try {
    const j = await r.json();
    if (j && j.error && j.error.message) return j.error.message;
  } catch (_) { /* not JSON */ }
  return r.status + " " + r.statusText;
}

// setStatus shows msg in the element with id "status"; err marks it as an error.
function setStatus(msg, err) {
  const s = $("status");
  s.textContent = msg;
  s.className = err ? "err" : "";
}

// busy shows msg with a spinner while a request runs.
function busy(msg) {
  setStatus(msg);
  $("status").className = "busy";
}
