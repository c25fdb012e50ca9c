// LoRAs through the official OpenAI Node SDK (openai 6.x), on the real
// pipeline: generations, and multipart edits and variations (the SDK sends
// an array of objects as loras[][name] / loras[][scale] fields). Run by loras_contract_test.go: SDGATE_BASE_URL is the server's
// /v1 URL, SDGATE_LOCAL_MODEL a model whose loras/ holds "style" and whose
// sdgate.json makes "styled" a LoRA alias of it (style at 0.75).
'use strict';
const assert = require('node:assert/strict');
const { expectError, run } = require('./node_harness.cjs');
const { OpenAI, toFile } = require('openai');

const client = new OpenAI({ baseURL: process.env.SDGATE_BASE_URL, apiKey: 'sk-unused', maxRetries: 0 });
const model = process.env.SDGATE_LOCAL_MODEL;

// generate returns the first image's base64 and the X-Cache header.
async function generate(body) {
  const { data, response } = await client.images
    .generate({ prompt: 'a lighthouse at dusk', seed: 3, steps: 2, size: '64x64', response_format: 'b64_json', ...body })
    .withResponse();
  assert.equal(data.data.length, 1);
  return { b64: data.data[0].b64_json, cache: response.headers.get('x-cache') };
}

// upload is the base model's generated picture as an SDK file.
function upload() {
  return toFile(Buffer.from(seen.base.b64, 'base64'), 'in.png', { type: 'image/png' });
}

async function edit(body) {
  const { data, response } = await client.images
    .edit({ model, image: await upload(), prompt: 'a lighthouse at dusk', seed: 3, steps: 2, response_format: 'b64_json', ...body })
    .withResponse();
  assert.equal(data.data.length, 1);
  return { b64: data.data[0].b64_json, cache: response.headers.get('x-cache') };
}

async function vary(body) {
  const { data, response } = await client.images
    .createVariation({ model, image: await upload(), seed: 3, steps: 2, response_format: 'b64_json', ...body })
    .withResponse();
  assert.equal(data.data.length, 1);
  return { b64: data.data[0].b64_json, cache: response.headers.get('x-cache') };
}

const seen = {};

run({
  async 'the base model'() {
    seen.base = await generate({ model });
    assert.equal(seen.base.cache, 'MISS');
  },
  async 'loras changes the image and the cache key'() {
    seen.lora = await generate({ model, loras: [{ name: 'style', scale: 0.75 }] });
    assert.equal(seen.lora.cache, 'MISS', 'a LoRA request must not hit the base image');
    assert.notEqual(seen.lora.b64, seen.base.b64, 'the LoRA changed nothing');
  },
  async 'the same LoRA request hits the cache'() {
    const again = await generate({ model, loras: [{ name: 'style', scale: 0.75 }] });
    assert.equal(again.cache, 'HIT');
    assert.equal(again.b64, seen.lora.b64);
  },
  async 'another scale is another image'() {
    const other = await generate({ model, loras: [{ name: 'style', scale: -0.75 }] });
    assert.equal(other.cache, 'MISS');
    assert.notEqual(other.b64, seen.lora.b64);
  },
  async 'the LoRA alias is listed and answers with the LoRA image'() {
    const ids = [];
    for await (const m of client.models.list()) ids.push(m.id);
    assert.ok(ids.includes('styled'), `models: ${ids}`);
    const alias = await generate({ model: 'styled' });
    assert.equal(alias.b64, seen.lora.b64, 'the alias differs from the request LoRA at the same scale');
  },
  async 'an unknown LoRA is a 400 on loras'() {
    await expectError(client.images.generate({ model, prompt: 'p', loras: [{ name: 'missing' }] }), 400, 'loras', 'invalid_value');
  },
  async 'a malformed loras field is a 400 on loras'() {
    await expectError(client.images.generate({ model, prompt: 'p', loras: 'style' }), 400, 'loras', 'invalid_type');
  },
  async 'an edit with loras (the SDK\'s array form) changes the image and the cache key'() {
    seen.edit = await edit({});
    seen.editLora = await edit({ loras: [{ name: 'style', scale: 0.75 }] });
    assert.equal(seen.editLora.cache, 'MISS', 'an edit with a LoRA must not hit the plain edit');
    assert.notEqual(seen.editLora.b64, seen.edit.b64, 'the LoRA changed nothing in the edit');
  },
  async 'the same loras as a JSON string field is the same edit and cache key'() {
    const again = await edit({ loras: JSON.stringify([{ name: 'style', scale: 0.75 }]) });
    assert.equal(again.cache, 'HIT');
    assert.equal(again.b64, seen.editLora.b64);
  },
  async 'the LoRA alias edits like the request LoRA'() {
    const alias = await edit({ model: 'styled' });
    assert.equal(alias.b64, seen.editLora.b64);
  },
  async 'a variation with loras changes the image'() {
    const plain = await vary({});
    const styled = await vary({ loras: [{ name: 'style', scale: 0.75 }] });
    assert.equal(styled.cache, 'MISS');
    assert.notEqual(styled.b64, plain.b64, 'the LoRA changed nothing in the variation');
  },
  async 'an unknown LoRA on an edit is a 400 on loras'() {
    await expectError(client.images.edit({ model, image: await upload(), prompt: 'p', loras: [{ name: 'missing' }] }), 400, 'loras', 'invalid_value');
  },
  async 'a malformed loras field on a variation is a 400 on loras'() {
    await expectError(client.images.createVariation({ model, image: await upload(), loras: 'style' }), 400, 'loras', 'invalid_type');
  },
});
