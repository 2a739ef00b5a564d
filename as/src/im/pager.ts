import { randomUUID } from 'node:crypto';
import type { Charging } from '../charging/charging.js';
import type { RoleOfNode } from '../charging/record.js';
import { encodeContext, type IscCall, type IscService } from '../isc/dispatcher.js';
import { reply, type IscDecision } from '../isc/types.js';
import type { Logger } from '../log/logger.js';
import { parseNameAddr, utf8ByteLength } from '../sip/index.js';
import type { LocalDomain } from '../users/local-domain.js';
import type { UserDirectory } from '../users/user-directory.js';

/**
 * What the IM service keeps about a MESSAGE it let continue, carried by Kamailio in the
 * transaction and handed back with the final outcome: no AS instance holds it in memory.
 */
interface PagerContext {
  callId: string;
  from: string;
  to: string;
  roles: RoleOfNode[];
  /** Request time, ms since the epoch. */
  at: number;
  contentType: string;
  contentLength: number;
  chargingVector: string;
}

/**
 * IM Server, pager mode (RFC 3428 MESSAGE): the participating function on the originating
 * and terminating sides. This first cut checks the recipient and charges the delivery;
 * policy, deferred delivery, IMDN and group messaging build on it.
 */
export class PagerService implements IscService {
  readonly name = 'im' as const;

  constructor(private readonly deps: {
    users: UserDirectory;
    domain: LocalDomain;
    charging: Charging;
    nodeAddress: string;
    log: Logger;
  }) {}

  async handle(call: IscCall): Promise<IscDecision> {
    const { req, sip } = call;
    if (req.method !== 'MESSAGE') return reply(501, 'Not Implemented');

    const roles: RoleOfNode[] = [];
    if (req.orig) roles.push('originating');
    if (req.term) roles.push('terminating');

    const from = req.asserted ?? parseNameAddr(sip.headers.get('From') ?? '').uri;
    const to = this.deps.domain.canonical(req.ruri) ?? req.ruri;
    const body = sip.body;
    const pcv = sip.headers.get('P-Charging-Vector');
    const ctx: PagerContext = {
      callId: sip.headers.get('Call-ID') ?? '',
      from,
      to,
      roles,
      at: call.receivedAt.getTime(),
      contentType: (sip.headers.get('Content-Type') ?? 'text/plain').split(';')[0]!.trim().toLowerCase(),
      contentLength: utf8ByteLength(body),
      chargingVector: pcv ?? `icid-value=${randomUUID()};icid-generated-at=${this.deps.nodeAddress}`,
    };

    if (req.term) {
      if (!(await this.deps.users.exists(to))) {
        await this.charge(ctx, 404, 'rejected', call.receivedAt);
        return reply(404, 'Not Found');
      }
      if (!req.registered) {
        await this.charge(ctx, 480, 'failed', call.receivedAt);
        return reply(480, 'Temporarily Unavailable');
      }
    }
    call.log.debug({ from, to, roles }, 'MESSAGE continues to delivery');
    return {
      action: 'continue',
      hdrs: pcv ? '' : `P-Charging-Vector: ${ctx.chargingVector}\r\n`,
      ctx: encodeContext(this.name, JSON.stringify(ctx)),
    };
  }

  async onOutcome(payload: string, code: number, at: Date): Promise<void> {
    let ctx: PagerContext;
    try {
      ctx = JSON.parse(payload) as PagerContext;
    } catch {
      this.deps.log.error({ payload }, 'unreadable MESSAGE outcome context');
      return;
    }
    await this.charge(ctx, code, code >= 200 && code < 300 ? 'delivered' : 'failed', at);
  }

  /** One charging record per role this AS played for the message. */
  private async charge(ctx: PagerContext, code: number, outcome: string, at: Date): Promise<void> {
    await Promise.all(ctx.roles.map((role) => this.deps.charging.record({
      service: 'im',
      role,
      sipMethod: 'MESSAGE',
      sessionId: ctx.callId,
      callingParty: ctx.from,
      calledParty: ctx.to,
      requestTime: new Date(ctx.at),
      responseTime: at,
      statusCode: code,
      outcome,
      chargingVector: ctx.chargingVector,
      messageBody: { contentType: ctx.contentType, contentLength: ctx.contentLength },
    })));
  }
}
