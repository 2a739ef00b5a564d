import { randomBytes } from 'node:crypto';
import type { IscCall } from '../../isc/dispatcher.js';
import { reply, type IscDecision } from '../../isc/types.js';
import type { UacClient } from '../../isc/uac.js';
import type { Logger } from '../../log/logger.js';
import { parseNameAddr, parseValueParams } from '../../sip/index.js';
import type { Collection, Store } from '../../store/port.js';
import { DuplicateKeyError } from '../../store/port.js';
import { TypedEmitter } from '../../util/typed-emitter.js';
import type { JobScheduler } from '../../cluster/singleton-jobs.js';
import { pidfBodyProblem } from '../pidf-body.js';
import type { Metrics } from '../../ops/metrics.js';
import { contain } from '../../util/contain.js';

/** A back-end subscription to a member in another domain, shared by every list holding it. */
interface BackendRecord {
  /** The member's URI (as lists name it). */
  _id: string;
  [key: string]: unknown;
  callId: string;
  state: 'pending' | 'active' | 'terminated';
  reason?: string;
  /** The member's last presence document (active members). */
  pidf?: string;
  expiresAt: Date;
  updatedAt: Date;
  /** The dialog once a 2xx set it up: refreshes and the final un-SUBSCRIBE go inside it. */
  dialog?: BackendDialog;
}

/** Our side of a back-end subscription's dialog (RFC 6665 4.1.2.1, RFC 3261 12). */
interface BackendDialog {
  fromTag: string;
  remoteTag: string;
  remoteTarget: string;
  routeSet: string[];
  /** The CSeq number of our last request in it. */
  cseq: number;
}

/** What a list shows for a member in another domain. */
export interface RemoteView {
  state: 'pending' | 'active' | 'terminated';
  reason?: string;
  pidf?: string;
}

const EXPIRES = 600;
/** Refreshed this long before it runs out, inside its dialog (a new one only when that fails). */
const REFRESH_MARGIN_MS = 120_000;

/**
 * Back-end subscriptions of the Resource List Server (RFC 4662 section 4.4.2) to members
 * outside our domain: one SUBSCRIBE through Kamailio per member, whatever the number of
 * lists holding it, from the RLS's own identity; the NOTIFYs come back to the AS (Kamailio
 * hands in-dialog NOTIFYs for sip:rls@ to it) and each change is told to the lists. The
 * state lives in the store, so every AS instance sharing it serves the same view; whichever
 * instance creates a record sends its SUBSCRIBE.
 */
export class BackendSubscriptions extends TypedEmitter<{ changed: [string] }> {
  private readonly records: Collection<BackendRecord>;

  constructor(
    private readonly deps: {
      store: Store;
      uac: UacClient;
      /** Our identity toward other domains, e.g. sip:rls@example.com. */
      identity: string;
      /** Where their NOTIFYs come: a URI of the core whose user part is "rls". */
      contact: string;
      /** Whether any live list still holds a member (otherwise its subscription lapses). */
      stillWanted: (member: string) => Promise<boolean>;
      log: Logger;
      metrics: Metrics;
    },
  ) {
    super();
    this.records = deps.store.collection<BackendRecord>('rls_backend');
    deps.metrics.describe(
      'ims_as_rls_backend_refresh_total',
      "back-end subscriptions' SUBSCRIBEs inside their dialog (refresh or end), by final code",
    );
  }

  /** Refreshes run as a singleton job: one instance of those sharing the store renews for all. */
  start(jobs: JobScheduler): void {
    jobs.add({ name: 'rls-backend-refresh', everyMs: 30_000, run: () => this.sweep() });
  }

  /** The member as known now; starts its back-end subscription when there is none. */
  async view(member: string): Promise<RemoteView> {
    const r = await this.records.findOne({ _id: member });
    if (r && (r.state !== 'terminated' || Date.now() - r.updatedAt.getTime() < 60_000)) {
      return { state: r.state, ...(r.reason ? { reason: r.reason } : {}), ...(r.pidf ? { pidf: r.pidf } : {}) };
    }
    await this.subscribe(member, r ?? undefined);
    return { state: 'pending' };
  }

  /** A NOTIFY of one of our back-end subscriptions (in-dialog, through Kamailio). */
  async handleNotify(call: IscCall): Promise<IscDecision> {
    const { sip } = call;
    const r = await this.records.findOne({ callId: sip.callId });
    if (!r) return reply(481, 'Subscription Does Not Exist');
    const event = parseValueParams(sip.headers.get('Event') ?? '').value.toLowerCase();
    if (event !== 'presence') return reply(489, 'Bad Event');
    const subState = parseValueParams(sip.headers.get('Subscription-State') ?? '');
    const state = subState.value.toLowerCase();
    let pidf: string | undefined;
    if (sip.body.trim()) {
      const problem = pidfBodyProblem(sip);
      if (problem) return problem;
      pidf = sip.body;
    }
    const set: Record<string, unknown> = { updatedAt: new Date() };
    if (state === 'terminated') {
      set.state = 'terminated';
      set.reason = subState.params.get('reason') ?? 'deactivated';
    } else {
      set.state = state === 'active' ? 'active' : 'pending';
      if (pidf !== undefined) set.pidf = pidf;
    }
    await this.records.updateOne(
      { _id: r._id, callId: sip.callId },
      state === 'terminated' ? { $set: set, $unset: { pidf: true } } : { $set: set },
    );
    this.emit('changed', r._id);
    return reply(200, 'OK');
  }

  private async subscribe(member: string, previous?: BackendRecord): Promise<void> {
    const callId = `${randomBytes(12).toString('hex')}@rls`;
    const now = new Date();
    const record: BackendRecord = {
      _id: member,
      callId,
      state: 'pending',
      expiresAt: new Date(now.getTime() + EXPIRES * 1000),
      updatedAt: now,
    };
    try {
      if (previous) {
        // another instance may renew it at the same moment: the one that swaps the Call-ID sends
        const swapped = await this.records.findOneAndUpdate(
          { _id: member, callId: previous.callId },
          { $set: { callId, expiresAt: record.expiresAt, updatedAt: now } },
          { returnDocument: 'after' },
        );
        if (!swapped) return;
      } else {
        await this.records.insertOne(record);
      }
    } catch (err) {
      if (err instanceof DuplicateKeyError) return; // created elsewhere meanwhile
      throw err;
    }
    const fromTag = randomBytes(6).toString('hex');
    contain(
      this.deps,
      'rls-backend-subscribe',
      this.deps.uac
        .send({
          method: 'SUBSCRIBE',
          ruri: member,
          headers: [
            ['From', `<${this.deps.identity}>;tag=${fromTag}`],
            ['To', `<${member}>`],
            ['Call-ID', callId],
            ['CSeq', '1 SUBSCRIBE'],
            ...this.commonHeaders(EXPIRES),
          ],
        })
        .then(async (outcome) => {
          if (outcome.code >= 200 && outcome.code < 300) {
            if (outcome.dialog) {
              const dialog: BackendDialog = { fromTag, cseq: 1, ...outcome.dialog };
              await this.records.updateOne({ _id: member, callId }, { $set: { dialog } });
            }
            return;
          }
          // refused or unreachable: the lists show it terminated (RFC 4662 instance reasons)
          const reason =
            outcome.code === 404 || outcome.code === 480
              ? 'noresource'
              : outcome.code === 403 || outcome.code === 603
                ? 'rejected'
                : 'deactivated';
          await this.records.updateOne(
            { _id: member, callId },
            { $set: { state: 'terminated', reason, updatedAt: new Date() }, $unset: { pidf: true } },
          );
          this.deps.log.info(
            { member, code: outcome.code, timedOut: outcome.timedOut },
            'back-end subscription refused',
          );
          this.emit('changed', member);
        }),
      { member },
    );
  }

  private commonHeaders(expires: number): Array<[string, string]> {
    return [
      ['Contact', `<${this.deps.contact}>`],
      ['Event', 'presence'],
      ['Accept', 'application/pidf+xml'],
      ['Expires', String(expires)],
      ['Max-Forwards', '70'],
    ];
  }

  /**
   * Renews what lists still hold before it lapses, inside its dialog (a new dialog only when
   * there is none or the notifier no longer knows it); ends what none holds any more with an
   * un-SUBSCRIBE in its dialog, and forgets it.
   */
  private async sweep(): Promise<void> {
    const soon = new Date(Date.now() + REFRESH_MARGIN_MS);
    for (const r of await this.records.find({ expiresAt: { $lte: soon } })) {
      const wanted = await this.deps.stillWanted(r._id);
      if (!wanted) {
        if (await this.records.deleteOne({ _id: r._id, callId: r.callId })) await this.inDialog(r, 0);
        continue;
      }
      if (!r.dialog || r.state === 'terminated') {
        await this.subscribe(r._id, r);
        continue;
      }
      const code = await this.inDialog(r, EXPIRES);
      if (code === undefined) continue; // another instance refreshed it
      if (code < 200 || code >= 300) await this.subscribe(r._id, r);
    }
  }

  /**
   * A SUBSCRIBE inside the record's dialog (`expires` 0: the un-SUBSCRIBE); its final code,
   * or undefined when another instance took this refresh first (the CSeq moved meanwhile).
   */
  private async inDialog(r: BackendRecord, expires: number): Promise<number | undefined> {
    const d = r.dialog;
    if (!d) return undefined;
    const cseq = d.cseq + 1;
    if (expires > 0) {
      const taken = await this.records.findOneAndUpdate(
        { _id: r._id, callId: r.callId, 'dialog.cseq': d.cseq },
        { $set: { 'dialog.cseq': cseq, expiresAt: new Date(Date.now() + expires * 1000), updatedAt: new Date() } },
        { returnDocument: 'after' },
      );
      if (!taken) return undefined;
    }
    const nexthop = d.routeSet[0] ? nameAddrUri(d.routeSet[0]) : undefined;
    const outcome = await this.deps.uac.send({
      method: 'SUBSCRIBE',
      ruri: d.remoteTarget,
      headers: [
        ['From', `<${this.deps.identity}>;tag=${d.fromTag}`],
        ['To', `<${r._id}>;tag=${d.remoteTag}`],
        ['Call-ID', r.callId],
        ['CSeq', `${cseq} SUBSCRIBE`],
        ...d.routeSet.map((route): [string, string] => ['Route', route]),
        ...this.commonHeaders(expires),
      ],
      ...(nexthop ? { nexthop } : {}),
    });
    this.deps.metrics.count('ims_as_rls_backend_refresh_total', {
      kind: expires > 0 ? 'refresh' : 'end',
      code: String(outcome.code),
    });
    return outcome.code;
  }
}

/** The URI of a Route value (`<sip:...;lr>`). */
function nameAddrUri(value: string): string {
  return parseNameAddr(value).uri;
}
