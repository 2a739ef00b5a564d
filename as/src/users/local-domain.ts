import { parseUri } from '../sip/index.js';
import { identityKey, type IdentityKey } from './public-identity.js';

/** Who holds a provisioned number or alias (in memory: canonicalisation is synchronous). */
export interface IdentityLookup {
  userFor(key: IdentityKey): string | undefined;
}

/**
 * The SIP domain we serve, with its aliases (127.0.0.1 by default): decides whether a URI
 * names one of our users and gives its canonical public identity, sip:user@domain.
 */
export class LocalDomain {
  private readonly hosts: Set<string>;

  /** Numbers and aliases of users; set once the index is loaded (app.ts). */
  identities: IdentityLookup | undefined;

  constructor(
    readonly domain: string,
    aliases: readonly string[] = [],
    identities?: IdentityLookup,
  ) {
    this.identities = identities;
    this.domain = domain.toLowerCase();
    this.hosts = new Set([this.domain, ...aliases.map((a) => a.toLowerCase())]);
  }

  isLocalHost(host: string): boolean {
    return this.hosts.has(host.toLowerCase());
  }

  /**
   * `sip:user@domain` for a URI naming one of our users: on our domain or an alias host, a
   * pres:/im: URI (RFC 3859/3860), a provisioned alias of the user (another public identity)
   * or their number (tel:, sip:...;user=phone). Undefined otherwise (an unknown number too).
   */
  canonical(uri: string): string | undefined {
    const key = identityKey(uri, (h) => this.isLocalHost(h));
    if (!key) return undefined;
    const owner = this.identities?.userFor(key);
    if (owner) return `sip:${owner}@${this.domain}`;
    if (key.startsWith('tel:')) return undefined;
    return `sip:${key.slice(4)}@${this.domain}`;
  }

  /**
   * True for a URI only the core's location service can resolve: a GRUU of ours (RFC 5627:
   * a `gr` parameter, on the domain or an alias), or any URI on our domain's name with no
   * port (an address of record). Other alias hosts are not counted: 127.0.0.1:5062 names a
   * UA's own address, reached directly.
   */
  needsLocationLookup(uri: string): boolean {
    try {
      const parsed = parseUri(uri.trim().replace(/^<|>$/g, ''));
      if (parsed.scheme === 'tel') return false;
      const host = parsed.host.toLowerCase();
      if (parsed.params.has('gr')) return this.isLocalHost(host);
      return host === this.domain && parsed.port === undefined;
    } catch {
      return false;
    }
  }

  /** The user part of a canonical identity of ours. */
  userOf(uri: string): string | undefined {
    const c = this.canonical(uri);
    return c ? c.slice(4, c.lastIndexOf('@')) : undefined;
  }
}
