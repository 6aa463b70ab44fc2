/** Options and parsers shared by several commands; light, so that declaring a command stays cheap. */
import { InvalidArgumentError, Option } from 'commander';

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** `500ms`, `30s`, `5m`, `1h` (a bare number is seconds) to milliseconds. */
export function parseDuration(value: string, options: { allowZero?: boolean } = {}): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(value.trim());
  const ms = m ? Math.round(Number(m[1]) * (UNITS[m[2] ?? 's'] ?? NaN)) : NaN;
  if (!Number.isFinite(ms) || ms > 86_400_000 || (ms === 0 ? !options.allowZero : ms < 100)) {
    throw new InvalidArgumentError(
      `expected a duration from 100ms to 24h such as 500ms, 30s or 5m${options.allowZero ? ', or 0' : ''}`,
    );
  }
  return ms;
}

/** `--label key=value`, repeatable: only containers carrying every label are watched. */
export function labelOption(): Option {
  return new Option('--label <key=value>', 'watch only containers with this label (repeatable)')
    .argParser((v: string, previous: Record<string, string> = {}) => {
      const at = v.indexOf('=');
      if (at < 1) throw new InvalidArgumentError('expected key=value');
      return { ...previous, [v.slice(0, at)]: v.slice(at + 1) };
    })
    .default({}, 'every container');
}

/** `--runtime-detection on|off`: the runtime sensor beside the scans (engine and Kubernetes mode). */
export function runtimeDetectionOption(): Option {
  return new Option(
    '--runtime-detection <mode>',
    'watch what containers do (eBPF, else /proc; needs root) and report detections',
  )
    .choices(['on', 'off'])
    .default('on');
}

/**
 * `--baseline-learning <duration>`: with runtime detection, behaviour baselines per image (learn
 * this long, then report what is new; kept by the scanner). Unset: no baselines.
 */
export function baselineLearningOption(): Option {
  return new Option(
    '--baseline-learning <duration>',
    "with runtime detection: learn each image's executables, listeners and destinations this long, then report what is new (kept by the scanner; default: no baselines)",
  )
    .env('CONTAINMENT_BASELINE_LEARNING')
    .argParser((v: string) => parseDuration(v));
}
