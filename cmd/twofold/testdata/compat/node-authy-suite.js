'use strict';

// Runs the npm authy package's own test suite against a Twofold sandbox application, with the
// suite's own runner, nodeunit. Started by TestSandboxNodeAuthySuite
// (cmd/twofold/compat_sandbox_test.go), which passes TWOFOLD_URL, the server's base URL.
//
// The suite is node_modules/authy/tests/tests.js as the package ships it (identical to
// tests/tests.js of evilpacket/node-authy at commit 0b029d7e1d38f41607b4ee41d1352b9a0d6e7b16,
// version 1.4.0; MIT licensed, Copyright (c) 2012 Adam Baldwin, see node_modules/authy/LICENSE).
// It was written against Authy's sandbox and builds its client with
//
//   require('../index')(apikey, 'http://sandbox-api.authy.com')
//
// The one change made here is that host: before the suite is loaded, the package's factory is
// replaced in require's cache by one that passes TWOFOLD_URL instead of the sandbox's URL. The
// API key, the calls and the assertions are the suite's own.
//
// A test that never calls test.done() would stop nodeunit's run for good; so an uncaught
// exception ends the test that is running (as a failure with that exception), and so does a
// test that runs longer than PER_TEST_MS.
//
// Prints one JSON line per test, {"test":"users - status - exists","ok":true,"failures":[]},
// then {"done":true,"tests":N}.

const path = require('path');
const nodeunit = require('nodeunit');

const SANDBOX_URL = 'http://sandbox-api.authy.com';
const PER_TEST_MS = 20000;

const url = process.env.TWOFOLD_URL;
if (!url) {
  console.error('TWOFOLD_URL is not set');
  process.exit(2);
}

const indexPath = require.resolve('authy'); // what the suite's require('../index') finds
const suitePath = path.join(path.dirname(indexPath), 'tests', 'tests.js');
const factory = require(indexPath);
require.cache[indexPath].exports = function (apiKey, apiURL) {
  if (apiURL !== SANDBOX_URL) {
    throw new Error(`the suite asked for ${apiURL}, not ${SANDBOX_URL}: is this the suite this script expects?`);
  }
  return factory(apiKey, url);
};

let running = null; // the test that is running: its done is called on an uncaught exception
process.on('uncaughtException', (err) => {
  if (running) {
    running.done(err);
    return;
  }
  console.error('uncaught exception outside a test:', err);
  process.exit(1);
});

function failureText(a) {
  const e = a.error || {};
  if (a.message) {
    return `${a.method || 'assertion'}: ${a.message}`;
  }
  if (e.name === 'AssertionError') {
    return `${a.method || 'assertion'} failed: actual ${JSON.stringify(e.actual)}, expected ${JSON.stringify(e.expected)}`;
  }
  return String(e.stack || e.message || e).split('\n').slice(0, 3).join(' | ');
}

let tests = 0;
nodeunit.runModule('tests.js', require(suitePath), {
  testReady(test) {
    const done = test.done;
    let finished = false;
    const timer = setTimeout(() => test.done(new Error(`did not call test.done() within ${PER_TEST_MS} ms`)), PER_TEST_MS);
    test.done = function (err) {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      running = null;
      done.call(test, err);
    };
    running = test;
  },
  testDone(name, assertions) {
    tests++;
    const failures = assertions.filter((a) => a.failed()).map(failureText);
    console.log(JSON.stringify({ test: name.join(' - '), ok: failures.length === 0, failures }));
  },
}, () => {
  console.log(JSON.stringify({ done: true, tests }));
  process.exit(0); // the client keeps connections alive; the run is over
});
