import { createHash } from 'node:crypto';
import type { Collection, Store } from '../store/port.js';
import { DuplicateKeyError } from '../store/port.js';
import { LoadingCache } from '../util/loading-cache.js';
import { normaliseE164, type IdentityKey } from './public-identity.js';

/**
 * How long a user record is kept in memory at most. Changes made through any AS instance are
 * told to every instance at once (as/src/reactions.ts); this bounds what one made with the
 * AS stopped, by `ims-provision` on the store, could hide: the minute Kamailio also keeps HA1s.
 */
const USER_KEPT_MS = 60_000;

/** RFC 2617 HA1 = MD5(username ":" realm ":" password). Only this is ever stored. */
export function digestHa1(user: string, realm: string, password: string): string {
  return createHash('md5').update(`${user}:${realm}:${password}`).digest('hex');
}

export interface UserRecord {
  _id: string; // the user part: usrloc and digest run with one domain (use_domain=0)
  [key: string]: unknown;
  user: string;
  domain: string;
  ha1: string;
  /** The operator barred this user from sending instant messages. */
  imBarred?: boolean;
  createdAt: Date;
  updatedAt: Date;
}

/**
 * One public identity besides the user's own name: their number (`tel:+15551234`) or an
 * alias (`sip:alice.smith`). `_id` is the identity key (public-identity.ts), so the store's
 * unique `_id` is what keeps a number or an alias to one user.
 */
export interface IdentityRecord {
  _id: IdentityKey;
  [key: string]: unknown;
  user: string;
  kind: 'tel' | 'alias';
  createdAt: Date;
}

/** What a user answers to besides sip:user@domain. */
export interface UserIdentities {
  tel?: string;
  aliases: string[];
}

export class UserError extends Error {
  constructor(
    message: string,
    readonly code: 'invalid' | 'exists' | 'missing',
  ) {
    super(message);
    this.name = 'UserError';
  }
}

/** A user name we accept: the unreserved characters of RFC 3261's user part, no escapes. */
const USER_RE = /^[A-Za-z0-9][A-Za-z0-9._~+-]{0,63}$/;

/** Called after a user is added, changed or removed (to drop credential caches). */
export type UserChangeHook = (user: string) => Promise<void>;

/**
 * The provisioned users of our domain. It serves digest HA1s to Kamailio (SIP auth) and,
 * later, to XCAP's HTTP digest; passwords never reach the store.
 */
export class UserDirectory {
  private readonly users: Collection<UserRecord>;
  private readonly identities: Collection<IdentityRecord>;
  /** Asked for every request (its sender, its recipient); records are shared read-only. */
  private readonly cache = new LoadingCache<UserRecord | null>({ maxEntries: 100_000, maxAgeMs: USER_KEPT_MS });

  constructor(
    store: Store,
    readonly domain: string,
    private readonly onChange?: UserChangeHook,
  ) {
    this.users = store.collection<UserRecord>('users');
    this.identities = store.collection<IdentityRecord>('identities');
  }

  /** Accepts `alice`, `alice@domain` or `sip:alice@domain`; returns the user part. */
  userPart(identity: string): string {
    const m = /^(?:sips?:)?([^@;]+)(?:@([^;>]+))?$/i.exec(identity.trim());
    if (!m || !USER_RE.test(m[1]!)) {
      throw new UserError(
        `'${identity}' is not a valid user (letters, digits and . _ ~ + - only, up to 64)`,
        'invalid',
      );
    }
    if (m[2] && m[2].toLowerCase() !== this.domain) {
      throw new UserError(`'${identity}' is not in our domain ${this.domain}`, 'invalid');
    }
    return m[1]!;
  }

  async add(identity: string, password: string, tel?: string): Promise<UserRecord> {
    const user = this.userPart(identity);
    checkPassword(password);
    const number = tel === undefined ? undefined : checkNumber(tel);
    const alias = await this.identities.findOne({ _id: `sip:${user}` });
    if (alias)
      throw new UserError(
        `sip:${user}@${this.domain} is already an alias of sip:${alias.user}@${this.domain}`,
        'exists',
      );
    if (number) {
      const holder = await this.identities.findOne({ _id: `tel:${number}` });
      if (holder)
        throw new UserError(`number ${number} already belongs to sip:${holder.user}@${this.domain}`, 'exists');
    }
    const now = new Date();
    const rec: UserRecord = {
      _id: user,
      user,
      domain: this.domain,
      ha1: digestHa1(user, this.domain, password),
      createdAt: now,
      updatedAt: now,
    };
    try {
      await this.users.insertOne(rec);
    } catch (err) {
      if (err instanceof DuplicateKeyError)
        throw new UserError(`user sip:${user}@${this.domain} already exists`, 'exists');
      throw err;
    } finally {
      this.forget(user);
    }
    if (number) await this.setTel(user, number);
    else await this.onChange?.(user);
    return rec;
  }

  /** Gives the user this E.164 number (replacing any other), or none (`undefined`). */
  async setTel(identity: string, tel: string | undefined): Promise<void> {
    const user = this.userPart(identity);
    const number = tel === undefined ? undefined : checkNumber(tel);
    if (!(await this.users.findOne({ _id: user })))
      throw new UserError(`no user sip:${user}@${this.domain}`, 'missing');
    if (number) {
      const key: IdentityKey = `tel:${number}`;
      const holder = await this.identities.findOne({ _id: key });
      if (holder && holder.user !== user)
        throw new UserError(`number ${number} already belongs to sip:${holder.user}@${this.domain}`, 'exists');
      if (!holder) {
        try {
          await this.identities.insertOne({ _id: key, user, kind: 'tel', createdAt: new Date() });
        } catch (err) {
          // another provisioning took it between the read and the write
          if (err instanceof DuplicateKeyError)
            throw new UserError(`number ${number} already belongs to another user`, 'exists');
          throw err;
        }
      }
      await this.identities.deleteMany({ user, kind: 'tel', _id: { $ne: key } });
    } else {
      const removed = await this.identities.deleteMany({ user, kind: 'tel' });
      if (removed === 0) throw new UserError(`sip:${user}@${this.domain} has no number`, 'missing');
    }
    await this.onChange?.(user);
  }

  /** Another public identity of the user, sip:ALIAS@domain, reaching the same registration. */
  async addAlias(identity: string, aliasIdentity: string): Promise<string> {
    const user = this.userPart(identity);
    const alias = this.userPart(aliasIdentity);
    if (!(await this.users.findOne({ _id: user })))
      throw new UserError(`no user sip:${user}@${this.domain}`, 'missing');
    if (alias === user || (await this.users.findOne({ _id: alias })))
      throw new UserError(`sip:${alias}@${this.domain} is a user of its own`, 'exists');
    try {
      await this.identities.insertOne({ _id: `sip:${alias}`, user, kind: 'alias', createdAt: new Date() });
    } catch (err) {
      if (!(err instanceof DuplicateKeyError)) throw err;
      const holder = await this.identities.findOne({ _id: `sip:${alias}` });
      throw new UserError(
        `sip:${alias}@${this.domain} is already an alias of sip:${holder?.user ?? '?'}@${this.domain}`,
        'exists',
      );
    }
    await this.onChange?.(user);
    return `sip:${alias}@${this.domain}`;
  }

  async removeAlias(identity: string, aliasIdentity: string): Promise<void> {
    const user = this.userPart(identity);
    const alias = this.userPart(aliasIdentity);
    const removed = await this.identities.deleteOne({ _id: `sip:${alias}`, user, kind: 'alias' });
    if (removed === 0)
      throw new UserError(`sip:${alias}@${this.domain} is not an alias of sip:${user}@${this.domain}`, 'missing');
    await this.onChange?.(user);
  }

  /** The user holding a number or alias, from the store (the source Kamailio's cache is filled from). */
  async holderOf(key: IdentityKey): Promise<string | undefined> {
    return (await this.identities.findOne({ _id: key }))?.user;
  }

  async identitiesOf(identity: string): Promise<UserIdentities> {
    const user = this.userPart(identity);
    const recs = await this.identities.find({ user }, { sort: { _id: 1 } });
    const tel = recs.find((r) => r.kind === 'tel');
    return {
      ...(tel ? { tel: tel._id.slice(4) } : {}),
      aliases: recs.filter((r) => r.kind === 'alias').map((r) => `sip:${r._id.slice(4)}@${this.domain}`),
    };
  }

  /** Every number and alias, for the in-memory index (identity-index.ts). */
  async allIdentities(): Promise<IdentityRecord[]> {
    return this.identities.find({});
  }

  async setPassword(identity: string, password: string): Promise<void> {
    const user = this.userPart(identity);
    checkPassword(password);
    const r = await this.users.updateOne(
      { _id: user },
      { $set: { ha1: digestHa1(user, this.domain, password), updatedAt: new Date() } },
    );
    this.forget(user);
    if (r.matched === 0) throw new UserError(`no user sip:${user}@${this.domain}`, 'missing');
    await this.onChange?.(user);
  }

  /** Operator barring of the user's outgoing instant messages (the IM originating policy). */
  async setImBarred(identity: string, barred: boolean): Promise<void> {
    const user = this.userPart(identity);
    const r = await this.users.updateOne({ _id: user }, { $set: { imBarred: barred, updatedAt: new Date() } });
    this.forget(user);
    if (r.matched === 0) throw new UserError(`no user sip:${user}@${this.domain}`, 'missing');
    // (every instance's copy of the record goes)
    await this.onChange?.(user);
  }

  async remove(identity: string): Promise<void> {
    const user = this.userPart(identity);
    const removed = await this.users.deleteOne({ _id: user });
    this.forget(user);
    await this.identities.deleteMany({ user });
    if (removed === 0) throw new UserError(`no user sip:${user}@${this.domain}`, 'missing');
    await this.onChange?.(user);
  }

  async get(identity: string): Promise<UserRecord | null> {
    let user: string;
    try {
      user = this.userPart(identity);
    } catch {
      return null;
    }
    return this.cache.get(user, () => this.users.findOne({ _id: user }));
  }

  /** A user's record changed (here or on another instance). */
  forget(user: string): void {
    this.cache.forget(user);
  }

  clear(): void {
    this.cache.clear();
  }

  async exists(identity: string): Promise<boolean> {
    return (await this.get(identity)) !== null;
  }

  async list(): Promise<UserRecord[]> {
    return this.users.find({}, { sort: { _id: 1 } });
  }
}

function checkNumber(tel: string): string {
  const n = normaliseE164(String(tel).replace(/^tel:/i, ''));
  if (!n) throw new UserError(`'${tel}' is not a global E.164 number (+, country code, up to 15 digits)`, 'invalid');
  return n;
}

function checkPassword(password: string): void {
  if (typeof password !== 'string' || password.length < 4 || password.length > 128) {
    throw new UserError('password must be 4 to 128 characters', 'invalid');
  }
}
