// Two sdgate gateways in front of two workers, driven through the official
// OpenAI Node SDK (openai 6.x). Run by cluster_node_test.go: SDGATE_GATEWAYS
// holds the gateways' /v1 URLs (comma-separated), SDGATE_API_KEY the key,
// SDGATE_MODEL the model; the request ids the Go test checks in PostgreSQL
// are written as JSON to SDGATE_OUT.
'use strict';
const assert = require('node:assert/strict');
const fs = require('node:fs');
const { run } = require('../../../server/testdata/node_harness.cjs');
const { OpenAI, toFile } = require('openai');

const [gw1, gw2] = process.env.SDGATE_GATEWAYS.split(',').map(
  (baseURL) => new OpenAI({ baseURL, apiKey: process.env.SDGATE_API_KEY, maxRetries: 0 }));
const model = process.env.SDGATE_MODEL;
const ids = {};

// record keeps a request id for the Go test (run exits the process, so
// the file is rewritten as each id arrives).
function record(name, response) {
  ids[name] = response.headers.get('x-request-id');
  fs.writeFileSync(process.env.SDGATE_OUT, JSON.stringify(ids));
}
const PNG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

function png(b64) {
  const bytes = Buffer.from(b64, 'base64');
  assert.ok(bytes.subarray(0, 8).equals(PNG), 'not a PNG');
  return bytes;
}

let fox; // gateway 1's picture, edited through gateway 2

const checks = {
  async 'generations through either gateway'() {
    const { data: a, response } = await gw1.images.generate({ model, prompt: 'a red fox', size: '64x64', n: 2, seed: 5,
      steps: 3, response_format: 'b64_json' }).withResponse();
    assert.equal(a.data.length, 2);
    assert.deepEqual(a.data.map((d) => d.seed), [5, 6]);
    fox = png(a.data[0].b64_json);
    png(a.data[1].b64_json);
    assert.equal(response.headers.get('x-cache'), 'MISS');
    const b = await gw2.images.generate({ model, prompt: 'a blue bird', size: '64x64', seed: 8, steps: 3, response_format: 'b64_json' });
    assert.equal(b.data.length, 1);
    assert.ok(!png(b.data[0].b64_json).equals(fox));
  },
  async 'an edit through the other gateway'() {
    assert.ok(fox, 'no picture from the first check');
    const { data: res, response } = await gw2.images.edit({ model, prompt: 'a fox in a hat', seed: 3, steps: 3,
      image: await toFile(fox, 'fox.png', { type: 'image/png' }), response_format: 'b64_json' }).withResponse();
    assert.equal(res.data.length, 1);
    assert.ok(!png(res.data[0].b64_json).equals(fox), 'the edit returned its input');
    record('edit', response);
  },
  async 'a URL minted by gateway 1 is served by gateway 2'() {
    const res = await gw1.images.generate({ model, prompt: 'a green door', size: '64x64', seed: 21, steps: 3, response_format: 'url' });
    const url = new URL(res.data[0].url);
    assert.equal(url.host, new URL(gw1.baseURL).host, 'the URL names its own gateway');
    const first = await fetch(url);
    assert.equal(first.status, 200);
    const minted = Buffer.from(await first.arrayBuffer());
    url.host = new URL(gw2.baseURL).host;
    const other = await fetch(url);
    assert.equal(other.status, 200);
    assert.equal(other.headers.get('content-type'), 'image/png');
    const served = Buffer.from(await other.arrayBuffer());
    assert.ok(served.subarray(0, 8).equals(PNG));
    assert.ok(served.equals(minted), 'gateway 2 served other bytes');
  },
  async 'a cache hit across gateways'() {
    const params = { model, prompt: 'an owl at night', size: '64x64', seed: 9, steps: 3, response_format: 'b64_json' };
    const miss = await gw1.images.generate(params).withResponse();
    assert.equal(miss.response.headers.get('x-cache'), 'MISS');
    const hit = await gw2.images.generate(params).withResponse();
    assert.equal(hit.response.headers.get('x-cache'), 'HIT');
    assert.equal(hit.data.data[0].b64_json, miss.data.data[0].b64_json);
    record('miss', miss.response);
    record('hit', hit.response);
  },
};

run(checks);
