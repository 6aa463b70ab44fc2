// Preloaded into every test file's process by scripts/run-tests.mjs. With --test-force-exit (a file
// whose tests and hooks are done exits even if a test left a socket or a child process behind),
// Node calls process.exit() while the file's last results may still sit in stdout's pipe buffer,
// and those results never reach the runner: help.test.ts reported 14 to 43 of its 43 tests from
// one run to the next. Here exit waits until stdout has written everything queued before it.
if (process.env.NODE_TEST_CONTEXT !== undefined) {
  const exit = process.exit.bind(process);
  process.exit = (code) => {
    // A write's callback runs once it and everything queued before it are written.
    process.stdout.write('', () => exit(code));
  };
}
