// Contract test of sdgate through the official OpenAI Node SDK (openai 6.x).
// Run by node_contract_test.go: SDGATE_BASE_URL is the server's /v1 URL,
// SDGATE_LOCAL_MODEL a local model id, NODE_PATH holds the unpacked SDK.
'use strict';
const assert = require('node:assert/strict');
const { expectError, run } = require('./node_harness.cjs');
const { OpenAI } = require('openai');

const client = new OpenAI({ baseURL: process.env.SDGATE_BASE_URL, apiKey: 'sk-unused', maxRetries: 0 });
const local = process.env.SDGATE_LOCAL_MODEL;

// pngSize reads width and height from a PNG's IHDR chunk.
function pngSize(buf) {
  assert.equal(buf.subarray(1, 4).toString('latin1'), 'PNG', 'not a PNG');
  return [buf.readUInt32BE(16), buf.readUInt32BE(20)];
}

// jpegSize walks the JPEG markers to the first start-of-frame.
function jpegSize(buf) {
  assert.equal(buf.readUInt16BE(0), 0xffd8, 'not a JPEG');
  let i = 2;
  while (i < buf.length) {
    const marker = buf.readUInt16BE(i);
    const len = buf.readUInt16BE(i + 2);
    if (marker >= 0xffc0 && marker <= 0xffc3) return [buf.readUInt16BE(i + 7), buf.readUInt16BE(i + 5)];
    i += 2 + len;
  }
  throw new Error('no SOF marker');
}

const checks = {
  async 'dall-e-2 b64_json n=2, two different images'() {
    const res = await client.images.generate({ model: 'dall-e-2', prompt: 'a fox', size: '256x256', n: 2, response_format: 'b64_json' });
    assert.equal(typeof res.created, 'number');
    assert.equal(res.data.length, 2);
    const [a, b] = res.data.map((d) => Buffer.from(d.b64_json, 'base64'));
    assert.deepEqual(pngSize(a), [256, 256]);
    assert.deepEqual(pngSize(b), [256, 256]);
    assert.ok(!a.equals(b), 'n=2 gave identical images');
    assert.equal(res.data[1].seed, res.data[0].seed + 1);
  },
  async 'dall-e-3 url with revised_prompt'() {
    const res = await client.images.generate({ model: 'dall-e-3', prompt: 'a fox', size: '1792x1024', quality: 'hd', style: 'vivid' });
    const item = res.data[0];
    assert.equal(typeof item.revised_prompt, 'string');
    assert.match(item.url, /\/v1\/files\/images\/[0-9a-f]{32}\.png$/);
    const img = Buffer.from(await (await fetch(item.url)).arrayBuffer());
    assert.deepEqual(pngSize(img), [1792, 1024]);
  },
  async 'default model is dall-e-2 with url'() {
    const res = await client.images.generate({ prompt: 'a fox', size: '512x512' });
    assert.ok(res.data[0].url);
    assert.equal(res.usage, undefined);
  },
  async 'gpt-image-1 jpeg with usage'() {
    const res = await client.images.generate({ model: 'gpt-image-1', prompt: 'a fox', size: '1024x1536', quality: 'medium',
      output_format: 'jpeg', output_compression: 70, background: 'opaque', moderation: 'low' });
    assert.deepEqual(jpegSize(Buffer.from(res.data[0].b64_json, 'base64')), [1024, 1536]);
    const u = res.usage;
    assert.equal(u.output_tokens, 1584);
    assert.ok(u.input_tokens > 0);
    assert.equal(u.total_tokens, u.input_tokens + u.output_tokens);
    assert.equal(u.input_tokens_details.text_tokens, u.input_tokens);
    assert.equal(u.input_tokens_details.image_tokens, 0);
    assert.equal(res.output_format, 'jpeg');
    assert.equal(res.size, '1024x1536');
  },
  async 'gpt-image-1 stream'() {
    const stream = await client.images.generate({ model: 'gpt-image-1', prompt: 'a fox', stream: true, partial_images: 2, size: '1024x1024' });
    const types = [];
    for await (const ev of stream) {
      types.push(ev.type);
      assert.deepEqual(pngSize(Buffer.from(ev.b64_json, 'base64')), [1024, 1024]);
      assert.equal(ev.size, '1024x1024');
      if (ev.type === 'image_generation.partial_image') assert.equal(ev.partial_image_index, types.length - 1);
      if (ev.type === 'image_generation.completed') assert.ok(ev.usage.total_tokens > 0);
    }
    assert.deepEqual(types, ['image_generation.partial_image', 'image_generation.partial_image', 'image_generation.completed']);
  },
  async 'extensions on a local model'() {
    const res = await client.images.generate({ model: local, prompt: 'a fox', seed: 1234, steps: 3, negative_prompt: 'blur' });
    assert.equal(res.data[0].seed, 1234);
  },
  async 'validation errors'() {
    await expectError(client.images.generate({ model: 'dall-e-3', prompt: 'a fox', n: 2 }), 400, 'n', 'invalid_value');
    await expectError(client.images.generate({ model: 'dall-e-2', prompt: 'a fox', size: '1024x1536' }), 400, 'size', 'invalid_value');
    await expectError(client.images.generate({ model: 'gpt-image-1', prompt: 'a fox', background: 'transparent' }), 400, 'background', 'invalid_value');
    await expectError(client.images.generate({ model: 'dall-e-2', prompt: '' }), 400, 'prompt', 'missing_required_parameter');
    await expectError(client.images.generate({ model: 'dall-e-2', prompt: 'x', seed: -1 }), 400, 'seed', 'integer_below_min_value');
    await expectError(client.images.generate({ model: 'no-such-model', prompt: 'x' }), 404, 'model', 'model_not_found');
  },
  async 'models list and retrieve'() {
    const ids = [];
    for await (const m of client.models.list()) {
      assert.equal(m.object, 'model');
      ids.push(m.id);
    }
    for (const want of [local, 'dall-e-2', 'dall-e-3', 'gpt-image-1']) assert.ok(ids.includes(want), `${want} not in ${ids}`);
    const m = await client.models.retrieve('gpt-image-1');
    assert.equal(m.id, 'gpt-image-1');
    await expectError(client.models.retrieve('nope'), 404, 'model', 'model_not_found');
  },
};

run(checks);
