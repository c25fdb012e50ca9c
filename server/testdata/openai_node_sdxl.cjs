// The official OpenAI Node SDK against an SDXL folder: dall-e-3 and
// gpt-image-1 point at sdxl-tiny. Each answer must be a PNG of exactly the
// size asked; the Go side checks the size each one was generated at.
'use strict';
const assert = require('node:assert/strict');
const { run } = require('./node_harness.cjs');
const { OpenAI } = require('openai');

const client = new OpenAI({ apiKey: 'sk-unused', baseURL: process.env.SDGATE_BASE_URL });

// pngSize reads width and height from a PNG's IHDR chunk.
function pngSize(b64) {
  const buf = Buffer.from(b64, 'base64');
  assert.equal(buf.toString('latin1', 1, 4), 'PNG', 'not a PNG');
  return [buf.readUInt32BE(16), buf.readUInt32BE(20)];
}

async function sized(model, size, extra) {
  const resp = await client.images.generate({ model, prompt: 'a lighthouse at dusk', size, ...extra });
  assert.equal(resp.data.length, 1);
  const [w, h] = size.split('x').map(Number);
  assert.deepEqual(pngSize(resp.data[0].b64_json), [w, h]);
  return resp;
}

run({
  'dall-e-3 1024x1024': async () => {
    const resp = await sized('dall-e-3', '1024x1024', { response_format: 'b64_json' });
    assert.ok(resp.data[0].revised_prompt);
  },
  'dall-e-3 1792x1024': () => sized('dall-e-3', '1792x1024', { response_format: 'b64_json', quality: 'hd' }),
  'gpt-image-1 1536x1024': async () => {
    const resp = await sized('gpt-image-1', '1536x1024', { quality: 'low' });
    assert.equal(resp.size, '1536x1024');
    assert.ok(resp.usage.output_tokens > 0);
  },
  'models carry the family': async () => {
    const m = await client.models.retrieve('dall-e-3');
    assert.equal(m.family, 'sdxl');
    assert.equal(m.native_size, '128x128');
  },
});
