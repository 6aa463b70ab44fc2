/**
 * One style for every command's help, checked on the real program: each command's `--help` ends
 * with an Examples section of two or three `containment …` commands, every `--data-dir` and every
 * port says its default, and descriptions start in lower case (or with an acronym) without a
 * closing period. A command added without examples fails here.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Command } from 'commander';
import { commandPath, DATA_DIR_DEFAULT } from './help.js';
import { buildProgram } from './main.js';

/** Names that keep their capital at the start of a description. */
const PROPER = /^(PostgreSQL|Kubernetes|OpenWhisk|Knative|Podman|Helm|CloudEvents|Pod Security)\b/;
const sentenceCase = (text: string): boolean => /^[A-Z][a-z]/.test(text) && !PROPER.test(text);

function all(cmd: Command): Command[] {
  return [cmd, ...cmd.commands.flatMap(all)];
}

/** What `containment <path> --help` prints, through commander's own output. */
function helpOf(cmd: Command): string {
  let out = '';
  cmd.configureOutput({ writeOut: (s) => (out += s), writeErr: (s) => (out += s) });
  cmd.outputHelp();
  return out;
}

describe('help texts', async () => {
  // Awaited: buildProgram becomes asynchronous when commands load lazily.
  const root = await Promise.resolve(buildProgram());
  const commands = all(root);

  it('covers every command', () => {
    assert.ok(commands.length >= 25, `only ${commands.length} commands found`);
  });

  for (const cmd of commands) {
    const name = `containment ${commandPath(cmd)}`.trim();
    it(`${name} --help ends with two or three examples`, () => {
      const help = helpOf(cmd);
      const at = help.lastIndexOf('\nExamples:\n');
      assert.ok(at >= 0, `${name} --help has no Examples section`);
      const section = help.slice(at).trim().split('\n').slice(1);
      const runs = section.filter((l) => l.trim().startsWith('$ '));
      assert.ok(runs.length >= 2 && runs.length <= 3, `${name}: ${runs.length} examples`);
      for (const run of runs) assert.match(run.trim(), /^\$ (\S+=\S+ )?containment /);
      // Nothing but examples and their comments after the heading.
      for (const line of section.filter((l) => l.trim() !== ''))
        assert.match(line, /^ {2}[#$] /, `${name}: stray line after Examples: ${line}`);
      // Each example names a real command and only options that command has.
      for (const run of runs) {
        // After `$`, any VAR=value assignments and `containment`.
        const words = run.trim().split(/\s+/).slice(1);
        while (/^[A-Z_]+=/.test(words[0] ?? '')) words.shift();
        words.shift();
        let target = root;
        for (const w of words) {
          const sub = target.commands.find((c) => c.name() === w);
          if (sub === undefined) break;
          target = sub;
        }
        const known = new Set(target.options.flatMap((o) => [o.long, o.short]));
        for (const flag of words.filter((w) => /^--?[a-z]/.test(w)))
          assert.ok(
            known.has(flag),
            `${name}: example uses ${flag}, not an option of ${target.name()}: ${run}`,
          );
      }
    });
  }

  it('every --data-dir and every port shows its default', () => {
    let dataDirs = 0;
    let ports = 0;
    for (const cmd of commands) {
      const help = helpOf(cmd).replace(/\s+/g, ' ');
      for (const o of cmd.options) {
        if (o.long === '--data-dir') {
          dataDirs++;
          assert.ok(help.includes(DATA_DIR_DEFAULT), `containment ${commandPath(cmd)}: --data-dir default`);
        }
        if (o.long === '--port') {
          ports++;
          assert.equal(typeof o.defaultValue, 'number', `containment ${commandPath(cmd)}: --port default`);
          assert.ok(
            help.includes(`default: ${o.defaultValue}`),
            `containment ${commandPath(cmd)}: port shown`,
          );
        }
      }
    }
    assert.ok(dataDirs >= 5 && ports >= 4, `${dataDirs} --data-dir, ${ports} --port`);
  });

  it('descriptions share one style: lower-case start (acronyms aside), no closing period', () => {
    for (const cmd of commands.slice(1)) {
      const name = `containment ${commandPath(cmd)}`;
      assert.ok(!sentenceCase(cmd.description()), `${name}: description starts upper-case`);
      assert.doesNotMatch(cmd.description(), /\.$/, `${name}: description ends with a period`);
      for (const o of cmd.options) {
        assert.ok(!sentenceCase(o.description), `${name} ${o.flags}: upper-case start`);
        assert.doesNotMatch(o.description, /\.$/, `${name} ${o.flags}: ends with a period`);
      }
    }
  });
});
