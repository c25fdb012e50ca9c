// Edits and variations through the official OpenAI Node SDK (openai 6.x).
// Run by edits_contract_test.go: SDGATE_BASE_URL is the server's /v1 URL,
// SDGATE_EDIT_DIR holds the input pictures and receives out/*, which the Go
// test checks pixel by pixel; SDGATE_LOCAL_MODEL and SDGATE_INPAINT_MODEL
// are an ordinary and an inpainting local model.
'use strict';
const assert = require('node:assert/strict');
const { expectError, run } = require('./node_harness.cjs');
const fs = require('node:fs');
const path = require('node:path');
const { OpenAI, toFile } = require('openai');

const client = new OpenAI({ baseURL: process.env.SDGATE_BASE_URL, apiKey: 'sk-unused', maxRetries: 0 });
const dir = process.env.SDGATE_EDIT_DIR;
const out = path.join(dir, 'out');
fs.mkdirSync(out, { recursive: true });

// upload reads an input picture as the SDK's toFile makes it; type is what
// the client declares (sdgate goes by the bytes).
function upload(name, type) {
  return toFile(fs.readFileSync(path.join(dir, name)), name, { type });
}

function save(name, item) {
  assert.equal(typeof item.b64_json, 'string', `no b64_json for ${name}`);
  fs.writeFileSync(path.join(out, name), Buffer.from(item.b64_json, 'base64'));
}

const checks = {
  async 'mask edit on the ordinary UNet'() {
    const model = process.env.SDGATE_LOCAL_MODEL;
    const res = await client.images.edit({ model, prompt: 'a red hat', image: await upload('image.png', 'image/png'),
      mask: await upload('mask.png', 'image/png'), seed: 11 });
    assert.equal(res.data.length, 1);
    assert.equal(res.data[0].seed, 11);
    assert.ok(res.usage.input_tokens_details.image_tokens > 0);
    save(`edit-${model}.png`, res.data[0]);
  },
  async 'mask edit on the inpainting UNet'() {
    const model = process.env.SDGATE_INPAINT_MODEL;
    const res = await client.images.edit({ model, prompt: 'a red hat', image: await upload('image.png', 'application/octet-stream'),
      mask: await upload('mask.png', 'application/octet-stream') });
    save(`edit-${model}.png`, res.data[0]);
  },
  async 'gpt-image-1 with an image array and the image\'s own transparency'() {
    const res = await client.images.edit({ model: 'gpt-image-1', prompt: 'a hat', image: [await upload('holed.png', 'image/png')],
      quality: 'low', output_format: 'png', background: 'opaque', input_fidelity: 'low' });
    assert.equal(res.size, '1024x1024'); // "auto": upstream's 1024-class size, never the native 64x64
    assert.equal(res.quality, 'low');
    save('edit-array.png', res.data[0]);
  },
  async 'gpt-image-1 streamed edit'() {
    const stream = await client.images.edit({ model: 'gpt-image-1', prompt: 'a hat', image: await upload('holed.png', 'image/png'),
      stream: true, partial_images: 1 });
    const types = [];
    for await (const ev of stream) {
      types.push(ev.type);
      assert.ok(Buffer.from(ev.b64_json, 'base64').length > 0);
      assert.equal(ev.size, '1024x1024'); // "auto": upstream's size
    }
    assert.deepEqual(types, ['image_edit.partial_image', 'image_edit.completed']);
  },
  async 'jpeg output from a jpeg input'() {
    const res = await client.images.edit({ model: 'gpt-image-1', prompt: 'a hat', image: await upload('photo.jpg', 'image/jpeg'),
      output_format: 'jpeg', output_compression: 80, strength: 0.5 });
    assert.equal(res.output_format, 'jpeg');
    save('edit-jpeg.jpeg', res.data[0]);
  },
  async 'webp input'() {
    const res = await client.images.edit({ model: process.env.SDGATE_LOCAL_MODEL, prompt: 'a hat', image: await upload('photo.webp', 'image/webp') });
    save('edit-webp.png', res.data[0]);
  },
  async 'variations'() {
    const res = await client.images.createVariation({ image: await upload('image.png', 'image/png'), n: 2, size: '256x256',
      response_format: 'b64_json' });
    assert.equal(res.data.length, 2);
    res.data.forEach((item, i) => save(`variation-${i}.png`, item));
  },
  async 'errors'() {
    await expectError(client.images.edit({ prompt: 'p', image: await upload('image.png', 'image/png'), mask: await upload('small.png', 'image/png') }),
      400, 'mask', 'invalid_image');
    await expectError(client.images.edit({ model: 'gpt-image-1', prompt: 'p', image: [await upload('image.png', 'image/png'), await upload('holed.png', 'image/png')] }),
      400, 'image', 'invalid_value');
    await expectError(client.images.edit({ prompt: 'p', image: await upload('image.png', 'image/png'), mask: await upload('photo.jpg', 'image/jpeg') }),
      400, 'mask', 'invalid_image_format');
    await expectError(client.images.createVariation({ model: 'gpt-image-1', image: await upload('image.png', 'image/png') }),
      400, 'model', 'invalid_value');
    await expectError(client.images.edit({ model: 'dall-e-3', prompt: 'p', image: await upload('image.png', 'image/png') }),
      400, 'model', 'invalid_value');
  },
};

run(checks);
