/**
 * Input threat detection for web actions: every string (and object key) in a request's parameters
 * and body is checked against a small rule set for SQL injection, cross-site scripting, command
 * injection, path traversal and SSRF-shaped URLs. An action opts in with the annotation
 * `containment.dev/input-threats: report` (record the match, run the action) or `block` (record it,
 * answer 400 INPUT_THREAT); without it nothing is checked.
 *
 * Why rules of our own: npm has no maintained libinjection port, and the XSS libraries there
 * (`xss`, DOMPurify) sanitise HTML rather than say whether input is an attack. The rules look for the
 * *structure* of an attack (a quote closing a string and then a boolean or a comment, a tag with an
 * event handler, a shell separator followed by a command, repeated `../`, a URL naming an internal or
 * metadata address), not for words, so prose that mentions SQL or names with apostrophes passes.
 * Values are percent-decoded (twice, for double encoding) before matching. Every quantifier is
 * bounded, so no input makes a rule backtrack for long. Headers are not checked. URLs are classified
 * by ssrf.ts without DNS: a host name that resolves to an internal address is not caught here (the
 * outbound guard in ssrf.ts is what stops the connection).
 */
import { isIP } from 'node:net';
import { TargetGuard } from '../events/ssrf.js';

export const INPUT_THREATS_ANNOTATION = 'containment.dev/input-threats';
export type InputThreatMode = 'off' | 'report' | 'block';
export type ThreatKind = 'sql-injection' | 'xss' | 'command-injection' | 'path-traversal' | 'ssrf';

export interface ThreatMatch {
  kind: ThreatKind;
  /** The rule's id, e.g. `sqli-tautology`. */
  rule: string;
  /** Where: `body`, `query.q`, `body.items.0.name`, … */
  field: string;
  /** At most 80 characters of the matched value, for the security-event log. */
  excerpt: string;
}

export function inputThreatMode(annotation: unknown): InputThreatMode {
  return annotation === 'report' || annotation === 'block' ? annotation : 'off';
}

interface Rule {
  id: string;
  kind: ThreatKind;
  test: RegExp | { test(text: string): boolean };
}

/**
 * Whether `needle` occurs where `before` (checked on at most `window` characters before it) also
 * holds: linear in the input, where one regex with a bounded gap would be quadratic on inputs such
 * as `<a<a<a…`.
 */
function preceded(needle: RegExp, window: number, before: (text: string) => boolean) {
  return {
    test(text: string): boolean {
      for (const m of text.matchAll(needle))
        if (before(text.slice(Math.max(0, m.index - window), m.index))) return true;
      return false;
    },
  };
}

/** Inside an opened tag: a `<` and a tag-name character, and no `>` after it. */
function insideTag(prefix: string): boolean {
  const lt = prefix.lastIndexOf('<');
  return lt >= 0 && prefix.indexOf('>', lt) < 0 && /[a-z!/?]/.test(prefix[lt + 1] ?? '');
}

const CMD =
  '(?:cat|ls|id|whoami|uname|wget|curl|nc|ncat|netcat|bash|sh|zsh|dash|python[0-9.]{0,4}|perl|ruby|php|rm|chmod|chown|echo|ping|nslookup|dig|powershell|cmd(?:\\.exe)?|sleep|kill|mkfifo|base64|tftp|telnet|env|printenv|ifconfig|hostname|ps|touch|busybox|sudo|su)';

/** Matched against the lower-cased, percent-decoded value. */
const RULES: readonly Rule[] = [
  // SQL injection: a quote closing a literal, then a boolean comparison or a comment.
  {
    id: 'sqli-tautology',
    kind: 'sql-injection',
    test: /['"`]\s{0,10}\){0,5}\s{0,10}(?:or|and|xor|\|\||&&)\s{1,10}\(?\s{0,10}['"]?[\w.-]{0,30}['"]?\s{0,10}(?:=|<>|!=|<|>|\blike\b|\bis\b|\bin\s{0,5}\()/,
  },
  {
    id: 'sqli-numeric-tautology',
    kind: 'sql-injection',
    test: /\b(?:or|and)\s{1,10}\(?\d{1,10}\)?\s{0,10}(?:=|<>|!=)\s{0,10}\(?\d{1,10}\b/,
  },
  { id: 'sqli-comment', kind: 'sql-injection', test: /['"]\s{0,10}\){0,5}\s{0,10}(?:--|#|\/\*)(?:\s|$)/ },
  {
    id: 'sqli-union',
    kind: 'sql-injection',
    test: /\bunion\b(?:\s{1,10}(?:all|distinct))?[\s(/*]{1,20}select\b/,
  },
  {
    id: 'sqli-stacked',
    kind: 'sql-injection',
    test: /;\s{0,10}(?:(?:drop|truncate|alter|create)\s{1,10}(?:table|database|schema|user|view|index)\b|delete\s{1,10}from\b|insert\s{1,10}into\b|update\s{1,10}\w{1,64}\s{1,10}set\b|exec(?:ute)?\s{1,10}\w|shutdown\b|declare\s{1,10}@)/,
  },
  {
    id: 'sqli-function',
    kind: 'sql-injection',
    test: /\b(?:sleep|benchmark|pg_sleep|load_file|extractvalue|updatexml)\s{0,10}\(|\bwaitfor\s{1,10}delay\b|\binto\s{1,10}(?:out|dump)file\b|\binformation_schema\b|\bxp_cmdshell\b|@@version\b/,
  },
  // Cross-site scripting: script tags, event handlers in tags, script URLs, dangerous embedding tags.
  { id: 'xss-script-tag', kind: 'xss', test: /<\s{0,10}\/?\s{0,10}script\b/ },
  {
    id: 'xss-event-handler',
    kind: 'xss',
    test: preceded(/[\s/"']on[a-z]{3,30}\s{0,10}=/g, 300, insideTag),
  },
  {
    id: 'xss-script-url',
    kind: 'xss',
    test: /\b(?:java|vb|live)script\s{0,3}:(?!\s)|\bdata\s{0,3}:\s{0,3}text\/html\b/,
  },
  {
    id: 'xss-embedding-tag',
    kind: 'xss',
    test: /<\s{0,10}(?:iframe|object|embed|applet|base|frameset|meta\s[^>]{0,100}http-equiv)\b/,
  },
  {
    id: 'xss-css-expression',
    kind: 'xss',
    test: preceded(/expression\s{0,10}\(/g, 200, (prefix) => /\bstyle\s{0,10}=[^>]*$/.test(prefix)),
  },
  // Command injection: a shell separator, then a command that looks run (arguments, end, pipe).
  {
    id: 'cmd-separator',
    kind: 'command-injection',
    test: new RegExp(
      `(?:^|[;|&\\n]|\\$\\(|[^\\s\`]\`)\\s{0,10}${CMD}(?:$|\\s{1,10}(?:[-/$.~'"\\d>|;&]|(?:https?|ftp):)|[;|&)\`>])`,
    ),
  },
  { id: 'cmd-substitution', kind: 'command-injection', test: /\$\(\s{0,10}[a-z]|\$\{ifs\}|\$ifs\b/ },
  {
    id: 'cmd-reverse-shell',
    kind: 'command-injection',
    test: /\/dev\/(?:tcp|udp)\/|\b(?:nc|ncat|netcat)\s{1,10}(?:-[a-z]{0,5}[ec]\b)|\bbash\s{1,10}-i\b/,
  },
  // Path traversal: several levels up, a value that starts one level up, or a well-known target.
  { id: 'path-traversal-deep', kind: 'path-traversal', test: /(?:\.\.[/\\]){3,}/ },
  { id: 'path-traversal-leading', kind: 'path-traversal', test: /^\s{0,10}\.\.[/\\]/ },
  {
    id: 'path-traversal-target',
    kind: 'path-traversal',
    test: /(?:\.\.[/\\]|^|[\s=:"'])(?:\/?etc\/(?:passwd|shadow|group|hosts)\b|\/?proc\/self\/|[a-z]:[/\\]windows[/\\]|win\.ini\b|boot\.ini\b)/,
  },
  // A NUL (raw or encoded) cuts a path short in C-based file APIs: `report.pdf%00.jpg`.
  {
    id: 'path-traversal-null-byte',
    kind: 'path-traversal',
    test: new RegExp(`${String.fromCharCode(0)}|%00`),
  },
];

/** Percent-encodings that browsers and servers have decoded as `/`, `\` or `.` (overlong UTF-8). */
const OVERLONG = /%c0%a[ef]|%c0%2f|%e0%80%af|%c1%9c|%c1%1c|%25c0%25af/i;
const URL_IN_TEXT = /\b(?:https?|ftp|gopher|dict|file|ldap|tftp|jar|netdoc):\/\/[^\s"'<>`)]{1,2048}/gi;
/** Schemes whose only use from a web request is reaching something it should not. */
const SSRF_SCHEMES = new Set(['gopher:', 'dict:', 'file:', 'ldap:', 'tftp:', 'jar:', 'netdoc:']);
/** No address is allowed: private, loopback, link-local and metadata ones are all "internal" here. */
const STRICT = new TargetGuard({ allow: [] });

function decoded(value: string): string[] {
  const out = [value];
  let current = value;
  for (let i = 0; i < 2 && /%[0-9a-f]{2}/i.test(current); i++) {
    try {
      current = decodeURIComponent(current.replace(/\+/g, ' '));
    } catch {
      break;
    }
    out.push(current);
  }
  return out;
}

/** Why a URL found in the input is SSRF-shaped, or undefined. */
function ssrfReason(raw: string): string | undefined {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return undefined;
  }
  if (SSRF_SCHEMES.has(url.protocol)) return `scheme ${url.protocol}`;
  const asHttp = url.protocol === 'ftp:' ? `http://${raw.slice('ftp://'.length)}` : raw;
  try {
    STRICT.checkUrl(asHttp);
  } catch (e) {
    return (e as Error).message;
  }
  // The WHATWG parser already normalised decimal, hex and octal IPv4 spellings to dotted form.
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (isIP(host) === 0 && /(?:^|\.)(?:internal|local|localdomain)$/.test(host))
    return `internal name ${host}`;
  return undefined;
}

/** The first match of each rule in one value. */
function scanValue(value: string, field: string, out: ThreatMatch[]): void {
  const excerpt = value.length > 80 ? `${value.slice(0, 77)}...` : value;
  const seen = new Set<string>();
  const add = (kind: ThreatKind, rule: string): void => {
    if (seen.has(rule)) return;
    seen.add(rule);
    out.push({ kind, rule, field, excerpt });
  };
  if (OVERLONG.test(value)) add('path-traversal', 'path-traversal-overlong');
  for (const form of decoded(value)) {
    // Browsers drop tabs and line breaks inside a URL scheme (`java\tscript:`); keep `\n` for the shell rules.
    const text = form.toLowerCase().replace(/[\t\r]/g, '');
    for (const rule of RULES) if (rule.test.test(text)) add(rule.kind, rule.id);
    for (const m of form.matchAll(URL_IN_TEXT)) {
      const why = ssrfReason(m[0]);
      if (why !== undefined) add('ssrf', 'ssrf-internal-url');
    }
  }
}

/** Limits on the walk, so a huge or deep body costs a bounded amount. */
const MAX_DEPTH = 32;
const MAX_VALUES = 10_000;

/**
 * Every match in `input` (a parsed JSON value or raw text); `field` names its root. Keys are
 * checked as well as values.
 */
export function scanInput(input: unknown, field: string): ThreatMatch[] {
  const out: ThreatMatch[] = [];
  let budget = MAX_VALUES;
  const walk = (value: unknown, path: string, depth: number): void => {
    if (budget-- <= 0 || depth > MAX_DEPTH) return;
    if (typeof value === 'string') scanValue(value, path, out);
    else if (Array.isArray(value)) value.forEach((v, i) => walk(v, `${path}.${i}`, depth + 1));
    else if (typeof value === 'object' && value !== null)
      for (const [k, v] of Object.entries(value)) {
        scanValue(k, `${path}.${k} (key)`, out);
        walk(v, `${path}.${k}`, depth + 1);
      }
  };
  walk(input, field, 0);
  return out;
}
