// Shared by the Node SDK contract scripts: the error check and the runner.
'use strict';
const assert = require('node:assert/strict');
const { OpenAI } = require('openai');

// expectError awaits a call that must fail with OpenAI's envelope: status,
// param and code as given; type invalid_request_error for 400 and 404.
async function expectError(promise, status, param, code) {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof OpenAI.APIError, `not an APIError: ${err}`);
    assert.equal(err.status, status);
    if (status === 400 || status === 404) assert.equal(err.type, 'invalid_request_error');
    assert.equal(err.param, param);
    assert.equal(err.code, code);
    return err;
  }
  throw new Error(`expected a ${status} error`);
}

// run runs every named check, prints ok/FAIL lines and exits 1 on a failure.
async function run(checks) {
  let failed = 0;
  for (const [name, check] of Object.entries(checks)) {
    try {
      await check();
      console.log(`ok   ${name}`);
    } catch (err) {
      failed++;
      console.log(`FAIL ${name}: ${err && err.stack ? err.stack : err}`);
    }
  }
  console.log(`${Object.keys(checks).length - failed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

module.exports = { expectError, run };
