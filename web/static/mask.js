// The edit canvas. The picture is shown with the painted region in red; off
// screen beside it is the mask the edits endpoint takes: a PNG of the
// picture's size, opaque except the painted pixels, which are fully
// transparent (alpha 0 marks what the model repaints).
"use strict";
const editor = { blob: null, picture: null, mask: document.createElement("canvas"), painted: false, last: null };

// loadEditImage makes blob the picture to edit, with an empty mask.
async function loadEditImage(blob) {
  const img = new Image();
  img.src = URL.createObjectURL(blob);
  try { await img.decode(); } catch (_) {
    URL.revokeObjectURL(img.src);
    throw new Error("That file is not an image the browser can read.");
  }
  if (editor.picture) URL.revokeObjectURL(editor.picture.src);
  editor.blob = blob;
  editor.picture = img;
  for (const c of [$("canvas"), editor.mask]) { c.width = img.naturalWidth; c.height = img.naturalHeight; }
  clearMask();
  $("canvas").hidden = false;
  $("size").value = `${img.naturalWidth}x${img.naturalHeight}`; // the edit keeps the picture's size
}

function clearMask() {
  if (!editor.picture) return;
  const v = $("canvas").getContext("2d");
  v.drawImage(editor.picture, 0, 0);
  const m = editor.mask.getContext("2d");
  m.globalCompositeOperation = "source-over";
  m.fillStyle = "#000";
  m.fillRect(0, 0, editor.mask.width, editor.mask.height);
  editor.painted = false;
}

// canvasPoint maps a pointer event to picture pixels (the canvas is scaled).
function canvasPoint(ev) {
  const c = $("canvas"), r = c.getBoundingClientRect();
  return { x: (ev.clientX - r.left) * c.width / r.width, y: (ev.clientY - r.top) * c.height / r.height };
}

// stroke paints from the last point to p on the mask (clearing it) and on
// the picture (in red), with round ends so a click paints a dot.
function stroke(p) {
  const from = editor.last || p;
  const width = Number($("brush").value) / 100 * $("canvas").width; // brush: % of the width
  for (const [ctx, op, color] of [[editor.mask.getContext("2d"), "destination-out", "#000"],
    [$("canvas").getContext("2d"), "source-over", "rgba(220,0,0,0.35)"]]) {
    ctx.globalCompositeOperation = op;
    ctx.strokeStyle = color;
    ctx.lineWidth = width;
    ctx.lineCap = "round";
    ctx.beginPath();
    ctx.moveTo(from.x, from.y);
    ctx.lineTo(p.x + 0.01, p.y);
    ctx.stroke();
  }
  editor.last = p;
  editor.painted = true;
}

// maskBlob is the mask as a PNG, or null when nothing was painted (the edit
// then repaints the picture's own transparent pixels, or all of it).
function maskBlob() {
  if (!editor.painted) return Promise.resolve(null);
  return new Promise((resolve) => editor.mask.toBlob(resolve, "image/png"));
}

function bindEditor() {
  const c = $("canvas");
  c.addEventListener("pointerdown", (ev) => {
    if (!editor.picture) return;
    c.setPointerCapture(ev.pointerId);
    editor.last = null;
    stroke(canvasPoint(ev));
  });
  c.addEventListener("pointermove", (ev) => { if (editor.last) stroke(canvasPoint(ev)); });
  for (const end of ["pointerup", "pointercancel"]) c.addEventListener(end, () => { editor.last = null; });
  $("clearmask").addEventListener("click", clearMask);
  $("image").addEventListener("change", async () => {
    const f = $("image").files[0];
    if (!f) return;
    try { await loadEditImage(f); setStatus(`Editing ${f.name}: paint the part to change.`); } catch (e) { setStatus(e.message, true); }
  });
}
