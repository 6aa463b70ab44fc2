// Preloaded into every test file's process by scripts/run-tests.mjs, instead of Node's
// --test-force-exit: that flag calls process.exit() as soon as a file's tests are done, before the
// child has written all of its results to the runner, so whole files lost part of their tests
// from the count (help.test.ts reported 14 to 43 of its 43 tests from one run to the next).
// Here a file whose tests are done still exits even when a test left a socket or a child process
// behind, but only once its results had time to reach the runner.
import { after } from 'node:test';

// Only in the processes that run test files, not in the runner that starts them.
if (process.env.NODE_TEST_CONTEXT !== undefined) {
  after(() => {
    // Unref'd: a clean file exits on its own at once; a leaking one exits 2 s later.
    setTimeout(() => process.exit(), 2000).unref();
  });
}
