/**
 * SSRF guard for event targets. Link-local, metadata, unspecified, multicast and reserved
 * addresses are always refused; private, shared (CGNAT) and loopback ranges only when an
 * allow-list CIDR (`--trigger-allow`) covers them. IPv6 forms that embed an IPv4 address
 * (mapped, SIIT-translated, compatible, NAT64, 6to4) are judged by that IPv4 address.
 *
 * Names are checked twice: statically (`checkUrl`, at registration) and at connection time
 * (`lookup`, passed to `http.request`), which resolves the name, drops refused addresses and
 * pins the connection to the addresses it checked, so DNS rebinding cannot slip past.
 */
import { lookup as dnsLookup } from 'node:dns';
import type { LookupAddress, LookupOptions } from 'node:dns';
import { BlockList, isIP, isIPv4 } from 'node:net';
import type { LookupFunction } from 'node:net';
import { ContainmentError, ErrorCodes } from '../errors.js';

export interface TargetPolicy {
  /** CIDRs (or single addresses) in private/loopback ranges that targets may use. */
  allow: readonly string[];
}

function blockList(cidrs: readonly string[]): BlockList {
  const list = new BlockList();
  for (const cidr of cidrs) {
    const [address = '', prefix] = cidr.trim().split('/');
    const family = isIP(address);
    const bits = prefix === undefined ? (family === 4 ? 32 : 128) : Number(prefix);
    if (family === 0 || !/^\d+$/.test(String(bits)) || bits > (family === 4 ? 32 : 128)) {
      throw new ContainmentError(ErrorCodes.CONFIG_INVALID, `not a CIDR: "${cidr}"`);
    }
    list.addSubnet(address, bits, family === 4 ? 'ipv4' : 'ipv6');
  }
  return list;
}

const ALWAYS_REFUSED = blockList([
  '0.0.0.0/8',
  '169.254.0.0/16',
  '100.100.100.200/32', // Alibaba Cloud metadata
  '224.0.0.0/4',
  '240.0.0.0/4',
  '::/128',
  'fe80::/10',
  'ff00::/8',
  'fd00:ec2::254/128', // AWS metadata over IPv6
  // SIIT "IPv4-translated" addresses (::ffff:0:a.b.c.d, RFC 7915/2765): only meaningful inside a
  // stateless translator, never a webhook's address; refused outright on every OS.
  '::ffff:0:0:0/96',
]);

const NEEDS_ALLOW = blockList([
  '10.0.0.0/8',
  '172.16.0.0/12',
  '192.168.0.0/16',
  '100.64.0.0/10',
  '127.0.0.0/8',
  '::1/128',
  'fc00::/7',
  'fec0::/10',
]);

const METADATA_NAMES = new Set([
  'metadata',
  'metadata.google.internal',
  'instance-data',
  'instance-data.ec2.internal',
]);

/** The eight 16-bit words of an IPv6 address (already validated by `isIP`). */
function ipv6Words(address: string): number[] {
  let text = address.split('%')[0] ?? '';
  const lastColon = text.lastIndexOf(':');
  const dotted = text.slice(lastColon + 1);
  if (isIPv4(dotted)) {
    const b = dotted.split('.').map(Number) as [number, number, number, number];
    text = `${text.slice(0, lastColon + 1)}${((b[0] << 8) | b[1]).toString(16)}:${((b[2] << 8) | b[3]).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const parse = (s: string): number[] => (s === '' ? [] : s.split(':').map((h) => parseInt(h, 16)));
  const first = parse(head);
  const last = tail === undefined ? [] : parse(tail);
  return [...first, ...new Array<number>(8 - first.length - last.length).fill(0), ...last];
}

function wordsToIpv4(hi: number, lo: number): string {
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}

/** The IPv4 address an IPv6 address stands for, if it embeds one. */
function embeddedIpv4(address: string): string | undefined {
  const w = ipv6Words(address) as [number, number, number, number, number, number, number, number];
  const zeros = (n: number): boolean => w.slice(0, n).every((x) => x === 0);
  if (zeros(5) && w[5] === 0xffff) return wordsToIpv4(w[6], w[7]); // ::ffff:a.b.c.d (mapped)
  // ::ffff:0:a.b.c.d (SIIT): the range is refused outright (ALWAYS_REFUSED); named here too so
  // the refusal says which IPv4 address it stood for.
  if (zeros(4) && w[4] === 0xffff && w[5] === 0) return wordsToIpv4(w[6], w[7]);
  if (zeros(6) && (w[6] !== 0 || w[7] > 1)) return wordsToIpv4(w[6], w[7]); // ::a.b.c.d (compatible)
  if (w[0] === 0x64 && w[1] === 0xff9b && w.slice(2, 6).every((x) => x === 0)) {
    return wordsToIpv4(w[6], w[7]); // 64:ff9b::/96 (NAT64)
  }
  if (w[0] === 0x2002) return wordsToIpv4(w[1], w[2]); // 2002::/16 (6to4)
  return undefined;
}

export class TargetGuard {
  private readonly allow: BlockList;

  constructor(policy: TargetPolicy) {
    this.allow = blockList(policy.allow);
  }

  /** Why `address` (an IP literal) is refused, or undefined when it may be used. */
  refusal(address: string): string | undefined {
    const family = isIP(address);
    if (family === 0) return `"${address}" is not an IP address`;
    const v4 = family === 6 ? embeddedIpv4(address) : address;
    const candidates: [string, 'ipv4' | 'ipv6'][] = [[address, family === 4 ? 'ipv4' : 'ipv6']];
    if (v4 !== undefined && family === 6) candidates.push([v4, 'ipv4']);
    if (candidates.some(([a, f]) => ALWAYS_REFUSED.check(a, f))) {
      return `address ${address} is link-local, metadata, multicast or reserved`;
    }
    const restricted = candidates.some(([a, f]) => NEEDS_ALLOW.check(a, f));
    if (restricted && !candidates.some(([a, f]) => this.allow.check(a, f))) {
      return `address ${address} is private or loopback and not covered by --trigger-allow`;
    }
    return undefined;
  }

  /**
   * Static check of a target URL: http(s) only, no credentials, no metadata host names, and IP
   * literals (the WHATWG parser has already normalised decimal, hex and octal IPv4 spellings)
   * must pass `refusal`. Host names are resolved later, by `lookup` or `resolve`.
   */
  checkUrl(raw: string): URL {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw refused(raw, 'not a valid URL');
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      throw refused(raw, `scheme ${url.protocol} is not http or https`);
    if (url.username !== '' || url.password !== '')
      throw refused(raw, 'credentials in the URL are not accepted');
    const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    const name = host.replace(/\.+$/, '');
    if (isIP(name) === 0) {
      if (METADATA_NAMES.has(name)) throw refused(raw, `${name} is a cloud metadata host`);
      // RFC 6761: localhost names are loopback whatever DNS says.
      if (name === 'localhost' || name.endsWith('.localhost')) {
        const why = this.refusal('127.0.0.1');
        if (why) throw refused(raw, `${name} is loopback: ${why}`);
      }
      return url;
    }
    const why = this.refusal(name);
    if (why) throw refused(raw, why);
    return url;
  }

  /** The permitted addresses of `hostname`; refuses when none is. */
  private filterResolved(hostname: string, addresses: LookupAddress[]): LookupAddress[] {
    const permitted = addresses.filter((a) => this.refusal(a.address) === undefined);
    if (permitted.length === 0) {
      const reasons = addresses.map((a) => this.refusal(a.address)).join('; ');
      throw refused(hostname, `resolves only to refused addresses (${reasons || 'none'})`);
    }
    return permitted;
  }

  /** `checkUrl` plus DNS resolution: the addresses a connection to `raw` would be allowed to use. */
  async resolve(raw: string): Promise<{ url: URL; addresses: string[] }> {
    const url = this.checkUrl(raw);
    const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    if (isIP(host) !== 0) return { url, addresses: [host] };
    const all = await new Promise<LookupAddress[]>((resolve, reject) =>
      dnsLookup(host, { all: true }, (err, addresses) => (err ? reject(err) : resolve(addresses))),
    );
    return { url, addresses: this.filterResolved(host, all).map((a) => a.address) };
  }

  /**
   * A `lookup` for `http.request`: resolves, drops refused addresses, and hands the connection
   * only the checked ones. Node does not call it for IP literals, which `checkUrl` covers.
   */
  readonly lookup: LookupFunction = (hostname: string, options: LookupOptions, callback) => {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, '');
      let permitted: LookupAddress[];
      try {
        permitted = this.filterResolved(hostname, addresses);
      } catch (e) {
        return callback(e as ContainmentError, '');
      }
      if (options.all) return callback(null, permitted);
      const first = permitted[0] as LookupAddress;
      callback(null, first.address, first.family);
    });
  };
}

function refused(target: string, why: string): ContainmentError {
  return new ContainmentError(ErrorCodes.TARGET_URL_REFUSED, `target ${target} refused: ${why}`);
}

/** Convenience for one-off static checks (e.g. when a trigger is registered). */
export function checkTargetUrl(url: string, policy: TargetPolicy): URL {
  return new TargetGuard(policy).checkUrl(url);
}
