// The current OpenAI image model names through the official Node SDK
// (openai 6.x). Run by contract_names_test.go: SDGATE_BASE_URL is the
// server's /v1 URL, SDGATE_API_KEY a key created with no limits of its own,
// SDGATE_EDIT_DIR holds image.png (32x32, transparent in a corner) and
// mask.png.
'use strict';
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { expectError, run } = require('./node_harness.cjs');
const { OpenAI, toFile } = require('openai');

const client = new OpenAI({ baseURL: process.env.SDGATE_BASE_URL, apiKey: process.env.SDGATE_API_KEY, maxRetries: 0 });
const dir = process.env.SDGATE_EDIT_DIR;
const dataURL = (name) => 'data:image/png;base64,' + fs.readFileSync(path.join(dir, name)).toString('base64');

function pngSize(buf) {
  assert.equal(buf.subarray(1, 4).toString('latin1'), 'PNG', 'not a PNG');
  return [buf.readUInt32BE(16), buf.readUInt32BE(20)];
}

// checkImage: one b64 PNG of the size, with the GPT families' echoes and usage.
function checkImage(res, w, h) {
  assert.deepEqual(pngSize(Buffer.from(res.data[0].b64_json, 'base64')), [w, h]);
  assert.equal(res.size, `${w}x${h}`);
  assert.equal(res.output_format, 'png');
  assert.equal(res.background, 'opaque');
  const u = res.usage;
  assert.equal(u.total_tokens, u.input_tokens + u.output_tokens);
  assert.equal(u.input_tokens, u.input_tokens_details.text_tokens + u.input_tokens_details.image_tokens);
  assert.deepEqual(u.output_tokens_details, { text_tokens: 0, image_tokens: u.output_tokens });
}

// checkHeaders: a key created with no limits gets the server's defaults.
function checkHeaders(response) {
  assert.equal(response.headers.get('x-ratelimit-limit-requests'), '300');
  assert.equal(response.headers.get('x-ratelimit-limit-images'), '60');
  assert.ok(Number(response.headers.get('x-ratelimit-remaining-requests')) < 300);
  assert.match(response.headers.get('x-ratelimit-reset-requests'), /^\d+(\.\d+)?(ms|s)$/);
}

const checks = {};
for (const [model, size, w, h] of [
  ['gpt-image-1-mini', undefined, 1024, 1024], ['gpt-image-1.5', '1536x1024', 1536, 1024],
  ['chatgpt-image-latest', 'auto', 1024, 1024], ['gpt-image-2', '2048x1152', 2048, 1152],
  ['gpt-image-2-2026-04-21', '1024x1536', 1024, 1536],
]) {
  checks[`${model} generates ${w}x${h}`] = async () => {
    const { data, response } = await client.images.generate({ model, prompt: 'a lighthouse', size, quality: 'low' }).withResponse();
    checkImage(data, w, h);
    assert.equal(data.quality, 'low');
    checkHeaders(response);
  };
}
Object.assign(checks, {
  async 'edit without a model is gpt-image-1.5'() {
    const image = await toFile(fs.readFileSync(path.join(dir, 'image.png')), 'image.png', { type: 'image/png' });
    const res = await client.images.edit({ prompt: 'a hat', image });
    checkImage(res, 1024, 1024);
    assert.ok(res.usage.input_tokens_details.image_tokens > 0);
  },
  async 'JSON edit body with data URLs'() {
    const { data, response } = await client.post('/images/edits', { body: {
      model: 'gpt-image-1.5', prompt: 'a hat', quality: 'medium', size: '1024x1024',
      images: [{ image_url: dataURL('image.png') }], mask: { image_url: dataURL('mask.png') },
    } }).withResponse();
    checkImage(data, 1024, 1024);
    checkHeaders(response);
  },
  async 'JSON edit refusals'() {
    await expectError(client.post('/images/edits', { body: { prompt: 'p', images: [{ file_id: 'file-abc' }] } }),
      400, 'images[0].file_id', 'unsupported_parameter');
    await expectError(client.post('/images/edits', { body: { prompt: 'p', images: [{ image_url: 'https://example.com/a.png' }] } }),
      400, 'images[0].image_url', 'unsupported_parameter');
    await expectError(client.post('/images/edits', { body: { model: 'dall-e-2', prompt: 'p', images: [{ image_url: dataURL('image.png') }] } }),
      400, 'model', 'invalid_value');
  },
  async 'gpt-image-2 size rules and unknown names'() {
    await expectError(client.images.generate({ model: 'gpt-image-2', prompt: 'p', size: '1000x1000' }), 400, 'size', 'invalid_value');
    await expectError(client.images.generate({ model: 'gpt-image-9', prompt: 'p' }), 404, 'model', 'model_not_found');
  },
  async 'models list has every current name'() {
    const ids = [];
    for await (const m of client.models.list()) ids.push(m.id);
    for (const want of ['gpt-image-1', 'gpt-image-1-mini', 'gpt-image-1.5', 'gpt-image-2', 'gpt-image-2-2026-04-21',
      'chatgpt-image-latest', 'dall-e-2', 'dall-e-3']) assert.ok(ids.includes(want), `${want} not in ${ids}`);
  },
});

run(checks);
