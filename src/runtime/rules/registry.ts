/**
 * The rule registry: built-ins plus user rules, keyed by stable id, minus disabled ones. A user
 * rule may not reuse a built-in id (ids are how policies and suppressions refer to rules).
 */
import { ContainmentError, ErrorCodes } from '../../errors.js';
import type { SensorEventKind } from '../contracts.js';
import { BUILTIN_RULES } from './builtin.js';
import type { RuleContext, RuleHit, RuntimeRule } from './rule.js';
import { parseRuleFile } from './user-rules.js';

export class RuleRegistry {
  private readonly rules = new Map<string, RuntimeRule>();
  private readonly disabled = new Set<string>();
  /** The enabled rules per event kind (asked for every event), rebuilt after add/disable. */
  private byKind: Map<SensorEventKind, RuntimeRule[]> | undefined;

  constructor(builtins: readonly RuntimeRule[] = BUILTIN_RULES) {
    for (const r of builtins) this.rules.set(r.id, r);
  }

  add(rule: RuntimeRule): void {
    const existing = this.rules.get(rule.id);
    if (existing)
      throw new ContainmentError(
        ErrorCodes.CONFIG_INVALID,
        `rule id ${rule.id} (${rule.origin}) is already defined by ${existing.origin}`,
      );
    this.rules.set(rule.id, rule);
    this.byKind = undefined;
  }

  disable(id: string): void {
    if (!this.rules.has(id))
      throw new ContainmentError(ErrorCodes.CONFIG_INVALID, `cannot disable unknown rule ${id}`);
    this.disabled.add(id);
    this.byKind = undefined;
  }

  get(id: string): RuntimeRule | undefined {
    return this.rules.get(id);
  }

  /** Every rule, with whether it is enabled. */
  list(): { rule: RuntimeRule; enabled: boolean }[] {
    return [...this.rules.values()].map((rule) => ({ rule, enabled: !this.disabled.has(rule.id) }));
  }

  /** The enabled rules' hits for one event, superseded ones removed. */
  evaluate(ctx: RuleContext): { rule: RuntimeRule; hit: RuleHit }[] {
    const hits: { rule: RuntimeRule; hit: RuleHit }[] = [];
    for (const rule of this.enabledFor(ctx.event.kind)) {
      const hit = rule.match(ctx);
      if (hit) hits.push({ rule, hit });
    }
    if (hits.length < 2) return hits;
    const superseded = new Set(hits.flatMap((h) => h.rule.supersedes ?? []));
    return hits.filter((h) => !superseded.has(h.rule.id));
  }

  private enabledFor(kind: SensorEventKind): readonly RuntimeRule[] {
    if (!this.byKind) {
      this.byKind = new Map();
      for (const rule of this.rules.values()) {
        if (this.disabled.has(rule.id)) continue;
        for (const k of rule.events) {
          const list = this.byKind.get(k);
          if (list) list.push(rule);
          else this.byKind.set(k, [rule]);
        }
      }
    }
    return this.byKind.get(kind) ?? [];
  }
}

/** The registry for a rule file (YAML/JSON) given by the user, or the built-ins alone. */
export function registryFromFile(path: string | undefined, read: (p: string) => string): RuleRegistry {
  const registry = new RuleRegistry();
  if (path === undefined) return registry;
  let text: string;
  try {
    text = read(path);
  } catch (e) {
    throw new ContainmentError(
      ErrorCodes.CONFIG_INVALID,
      `cannot read rule file ${path}: ${(e as Error).message}`,
    );
  }
  const file = parseRuleFile(text, path);
  for (const rule of file.rules) registry.add(rule);
  for (const id of file.disable) registry.disable(id);
  return registry;
}
