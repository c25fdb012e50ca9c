// Server-sent events from a fetch response: EventSource cannot send the key
// as a Bearer header (nor POST a body), so the stream is read and split here.
"use strict";

// parseEvent turns one event block (the lines before a blank line) into
// {type, data}, or null when it carries no data (a comment, a keep-alive).
function parseEvent(block) {
  let type = "message";
  const data = [];
  for (const line of block.split(/\r\n|\r|\n/)) {
    if (line === "" || line.startsWith(":")) continue;
    const c = line.indexOf(":");
    const field = c < 0 ? line : line.slice(0, c);
    let v = c < 0 ? "" : line.slice(c + 1);
    if (v.startsWith(" ")) v = v.slice(1);
    if (field === "event") type = v;
    else if (field === "data") data.push(v);
  }
  return data.length ? { type, data: data.join("\n") } : null;
}

// readEvents calls onEvent(type, json) for each event of the response body as
// it arrives; an "error" event (OpenAI's envelope) ends it with that error.
async function readEvents(resp, onEvent) {
  const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  const flush = (block) => {
    const ev = parseEvent(block);
    if (!ev) return;
    const j = JSON.parse(ev.data);
    if (ev.type === "error" || j.type === "error") throw new Error((j.error && j.error.message) || "stream error");
    onEvent(j.type || ev.type, j);
  };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += value;
    let m;
    while ((m = /\r?\n\r?\n/.exec(buf))) {
      flush(buf.slice(0, m.index));
      buf = buf.slice(m.index + m[0].length);
    }
  }
  flush(buf);
}
