/**
 * Evidence never carries secrets: argv is cut (count and length) and values that look like
 * credentials are replaced by `***` — `--password x`, `--token=x`, `KEY=x` with a secret-ish key,
 * URL userinfo passwords, `Authorization: Bearer x`, and well-known token shapes.
 */
export const MAX_ARGS = 16;
export const MAX_ARG_LENGTH = 256;
export const MASK = '***';

const SECRET_KEY =
  /(pass(word|wd)?|pwd|secret|token|api[-_]?key|access[-_]?key|private[-_]?key|auth|credential|session|cookie)/i;
// Token shapes: AWS access keys, GitHub, Slack, JWTs, PEM headers are never needed as evidence.
const TOKEN_SHAPES = [
  /\b(AKIA|ASIA)[0-9A-Z]{16}\b/g,
  /\bgh[pousr]_[A-Za-z0-9]{20,}\b/g,
  /\bxox[abprs]-[A-Za-z0-9-]{10,}\b/g,
  /\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\b/g,
  /\bglpat-[A-Za-z0-9_-]{16,}\b/g,
];

/**
 * What every pattern above needs somewhere in the text (case-insensitive, so a superset): most
 * strings (program names, paths, plain arguments) have none and skip the eight replacements.
 */
const MAYBE_SECRET = /[=:]|bearer|basic|AKIA|ASIA|gh[pousr]_|xox[abprs]-|eyJ|glpat-/i;

/** One string with the credential-looking parts masked. */
export function maskText(text: string): string {
  if (!MAYBE_SECRET.test(text)) return text;
  let out = text
    // scheme://user:password@host
    .replace(/(\b[a-z][a-z0-9+.-]*:\/\/[^\s:/@]+:)[^\s@/]+@/gi, `$1${MASK}@`)
    // Authorization: Bearer x / Basic x
    .replace(/\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+/gi, `$1 ${MASK}`)
    // key=value / --key=value / key: value, when the key says secret
    .replace(/([A-Za-z0-9_.-]*)([=:])([^\s&;,]+)/g, (m, key: string, sep: string) =>
      SECRET_KEY.test(key) ? `${key}${sep}${MASK}` : m,
    );
  for (const shape of TOKEN_SHAPES) out = out.replace(shape, MASK);
  return out;
}

/** argv cut and masked; a flag that names a secret masks the argument after it too. */
export function maskArgv(argv: readonly string[]): string[] {
  const out: string[] = [];
  let maskNext = false;
  for (const arg of argv.slice(0, MAX_ARGS)) {
    if (maskNext) {
      out.push(MASK);
      maskNext = false;
      continue;
    }
    maskNext = /^-{1,2}[A-Za-z0-9_-]+$/.test(arg) && SECRET_KEY.test(arg);
    const masked = maskText(arg);
    out.push(masked.length > MAX_ARG_LENGTH ? `${masked.slice(0, MAX_ARG_LENGTH)}…` : masked);
  }
  if (argv.length > MAX_ARGS) out.push(`…(+${argv.length - MAX_ARGS} args)`);
  return out;
}
