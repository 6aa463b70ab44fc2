/**
 * JavaScript evaluated inside each fresh QuickJS context before the policy. It is guest code: a policy can
 * tamper with everything it builds, but that only breaks the policy itself — every value it hands to the
 * worker is re-checked there (type, size, JSON.parse). It captures the built-ins it needs before the policy
 * runs so that ordinary policies cannot break logging or the SDK by accident.
 *
 * Called with host functions `(bridge, log, settle, methods)`; returns `{ init, start }`:
 * - `bridge(method, argsJson)` → Promise of the result's JSON text (the only way out);
 * - `log(stream, text)` with stream 0 = stdout, 1 = stderr;
 * - `settle(token, kind, payload)` reports how an invocation ended: kind `resolved` / `rejected` (payload
 *   is JSON), `threw` (main threw synchronously) or `invalid` (the result is not JSON);
 * - `init()` finds the entry point, `start(token, paramsJson)` calls it.
 */
export const GUEST_HARNESS = String.raw`(function (bridge, log, settle, methods) {
  'use strict';
  const stringify = JSON.stringify;
  const parse = JSON.parse;
  const PromiseCtor = Promise;
  const ErrorCtor = Error;
  const TypeErrorCtor = TypeError;
  const StringCtor = String;
  const strict = function (key, value) {
    const type = typeof value;
    if (type === 'function' || type === 'symbol') throw new TypeErrorCtor('a ' + type + ' is not JSON');
    return value;
  };
  const text = function (value) {
    if (typeof value === 'string') return value;
    try {
      const json = stringify(value);
      if (json !== undefined) return json;
    } catch (e) {}
    try { return StringCtor(value); } catch (e) { return '[unprintable]'; }
  };
  const line = function (args) {
    let out = '';
    for (let i = 0; i < args.length; i++) out += (i === 0 ? '' : ' ') + text(args[i]);
    return out;
  };
  const stdout = function (...args) { log(0, line(args)); };
  const stderr = function (...args) { log(1, line(args)); };
  globalThis.console = { log: stdout, info: stdout, debug: stdout, warn: stderr, error: stderr };

  const call = function (method, ...args) {
    let json;
    try { json = stringify(args, strict); } catch (e) { return PromiseCtor.reject(e); }
    return bridge(StringCtor(method), json).then(parse);
  };
  const sdk = { call: call };
  for (let i = 0; i < methods.length; i++) {
    const method = methods[i];
    const path = method.split('.');
    let target = sdk;
    for (let j = 0; j < path.length - 1; j++) target = target[path[j]] || (target[path[j]] = {});
    target[path[path.length - 1]] = function (...args) { return call(method, ...args); };
  }
  globalThis.__sdk = sdk;

  const describe = function (e) {
    try { return e instanceof ErrorCtor ? e.name + ': ' + e.message : text(e); } catch (x) { return '[unprintable error]'; }
  };
  // What OpenWhisk's Node.js runtime records for a rejection (serialize-error): name, message, stack.
  const errorValue = function (e) {
    if (!e) return {};
    if (e instanceof ErrorCtor) return { name: e.name, message: e.message, stack: e.stack };
    return e;
  };

  let entry;
  const init = function () {
    const mod = globalThis.__policy;
    if (mod && typeof mod.main === 'function') entry = mod.main;
    else if (mod && typeof mod.default === 'function') entry = mod.default;
    else if (mod && mod.default && typeof mod.default.main === 'function') entry = mod.default.main;
    else throw new TypeErrorCtor("Action entrypoint 'main' is not a function.");
  };
  const start = function (token, paramsJson) {
    let value;
    try {
      value = entry(parse(paramsJson));
    } catch (e) {
      settle(token, 'threw', describe(e));
      return;
    }
    PromiseCtor.resolve(value).then(
      function (result) {
        let json;
        try { json = result === undefined ? '{}' : stringify(result, strict); } catch (e) {
          settle(token, 'invalid', describe(e));
          return;
        }
        settle(token, 'resolved', json);
      },
      function (e) {
        let json;
        try { json = stringify({ error: errorValue(e) }, strict); } catch (x) { json = stringify({ error: describe(e) }); }
        settle(token, 'rejected', json);
      },
    );
  };
  return { init: init, start: start };
})`;
