import { chargingVectorOf, privateIdentityOf } from '../isc/types.js';
import type { Charging } from '../charging/charging.js';
import type { Notifier } from '../events/notifier.js';
import type { IscCall, IscService } from '../isc/dispatcher.js';
import { reply, type HeaderField, type IscDecision } from '../isc/types.js';
import type { Logger } from '../log/logger.js';
import type { RegistrationChange, Registrations } from '../registrations/registrations.js';
import type { LocalDomain } from '../users/local-domain.js';
import type { Presentities } from './presentities.js';
import type { DocumentRef } from '../xdm/document-store.js';
import type { PresenceAuthorizer } from './authorization.js';
import { serializePidf } from './pidf/index.js';
import { PIDF_CONTENT_TYPE, type ExpiryBounds, type PresenceSubData } from './presence-package.js';
import { pidfBodyProblem } from './pidf-body.js';
import type { PidfTrees } from './pidf-trees.js';
import type { Publications } from './publications.js';
import type { BackendSubscriptions } from './rls/backend.js';
import type { Metrics } from '../ops/metrics.js';
import { contain } from '../util/contain.js';
import { headerValueOnly } from '../sip/index.js';
import { NETWORK_SOURCE } from './server-sources.js';

export interface PresenceLimits extends ExpiryBounds {
  maxBodyBytes: number;
}

/**
 * The Presence Server (OMA Presence SIMPLE / TS 23.141) behind the core: PUBLISH from each
 * of a presentity's sources (RFC 3903), SUBSCRIBE through the notifier, the network's
 * registration state as a source of its own, and authorization that follows the
 * presentity's pres-rules as they change.
 */
export class PresenceService implements IscService {
  readonly name = 'presence' as const;

  constructor(
    private readonly deps: {
      presentities: Presentities;
      domain: LocalDomain;
      publications: Publications;
      notifier: Notifier;
      authorizer: PresenceAuthorizer;
      registrations: Registrations;
      charging: Charging;
      limits: PresenceLimits;
      /** Where the PUBLISH body's tree is kept for the composition that follows (parsed once). */
      pidfTrees?: PidfTrees;
      /** The list server's back-end subscriptions: their NOTIFYs come here. */
      backend?: BackendSubscriptions;
      log: Logger;
      metrics: Metrics;
    },
  ) {}

  async handle(call: IscCall): Promise<IscDecision> {
    if (call.req.method === 'SUBSCRIBE') return this.deps.notifier.handleSubscribe(call);
    if (call.req.method === 'PUBLISH') return this.publish(call);
    if (call.req.method === 'NOTIFY' && this.deps.backend) return this.deps.backend.handleNotify(call);
    return reply(405, 'Method Not Allowed', { headers: [['Allow', 'PUBLISH, SUBSCRIBE']] });
  }

  private async publish(call: IscCall): Promise<IscDecision> {
    const { sip, req } = call;
    const { limits } = this.deps;
    const event = headerValueOnly(sip.headers.get('Event'));
    if (event !== 'presence') return reply(489, 'Bad Event', { headers: [['Allow-Events', 'presence']] });
    const entity = this.deps.domain.canonical(req.ruri);
    if (!entity || !(await this.deps.presentities.exists(entity))) return reply(404, 'Not Found');
    if (req.asserted !== entity)
      return reply(403, 'Forbidden', { warning: 'only the presentity publishes its presence' });

    const expiresHeader = sip.headers.get('Expires');
    let expires = limits.defaultExpires;
    if (expiresHeader !== undefined) {
      if (!/^\s*\d{1,10}\s*$/.test(expiresHeader)) return reply(400, 'Bad Expires');
      expires = Math.min(Number(expiresHeader), limits.maxExpires);
    }
    if (expires > 0 && expires < limits.minExpires)
      return reply(423, 'Interval Too Brief', { headers: [['Min-Expires', String(limits.minExpires)]] });

    const ifMatch = sip.headers.get('SIP-If-Match')?.trim() || undefined;
    const hasBody = sip.body.trim().length > 0;
    if (!ifMatch && !hasBody) return reply(400, 'Missing Presence Document');
    if (!ifMatch && expires === 0) return reply(400, 'Nothing To Remove');
    let body: string | undefined;
    if (hasBody) {
      if (Buffer.byteLength(sip.body, 'utf8') > limits.maxBodyBytes) return reply(413, 'Request Entity Too Large');
      const problem = pidfBodyProblem(sip, this.deps.pidfTrees);
      if (problem) return problem;
      body = sip.body;
    }
    const outcome = await this.deps.publications.publish({
      entity,
      event,
      ifMatch,
      body,
      contentType: PIDF_CONTENT_TYPE,
      expires,
    });
    if (!outcome.ok) return reply(412, 'Conditional Request Failed');
    const kind = !ifMatch ? 'published' : expires === 0 ? 'removed' : body ? 'modified' : 'refreshed';
    const chargingVector = chargingVectorOf(sip.headers.get('P-Charging-Vector'), req);
    const privateUserId = privateIdentityOf(req);
    contain(
      this.deps,
      'publish-charging',
      this.deps.charging.record({
        service: 'presence',
        role: 'terminating',
        sipMethod: 'PUBLISH',
        sessionId: sip.callId,
        callingParty: req.asserted,
        calledParty: entity,
        event,
        expires,
        requestTime: call.receivedAt,
        responseTime: new Date(),
        statusCode: 200,
        outcome: kind,
        ...(chargingVector ? { chargingVector } : {}),
        ...(privateUserId ? { privateUserId } : {}),
        ...(body
          ? { messageBody: { contentType: PIDF_CONTENT_TYPE, contentLength: Buffer.byteLength(body, 'utf8') } }
          : {}),
      }),
      { entity },
    );
    // a removal leaves no state, so no entity tag to hand out (RFC 3903 section 6)
    const etag: HeaderField[] = kind === 'removed' ? [] : [['SIP-ETag', outcome.etag]];
    return reply(200, 'OK', { headers: [...etag, ['Expires', String(outcome.expires)]] });
  }

  /**
   * The Presence Network Agent's part: registration state as the presentity's "network"
   * tuple, open while any contact is registered.
   */
  async networkSource(change: RegistrationChange): Promise<void> {
    const open = change.remaining > 0;
    const body = serializePidf({
      entity: change.aor,
      tuples: [{ id: 'network', basic: open ? 'open' : 'closed', notes: [], elements: [] }],
      persons: [],
      devices: [],
      notes: [],
      extensions: [],
    });
    await this.deps.publications.setSource(change.aor, 'presence', NETWORK_SOURCE, body, PIDF_CONTENT_TYPE);
  }

  /** A pres-rules document changed: re-decide every live subscription to that presentity. */
  async rulesChanged(ref: DocumentRef): Promise<void> {
    if (ref.auid !== 'pres-rules' || ref.tree !== 'users') return;
    const resource = ref.xui;
    // the dialogs this instance holds: every instance re-decides its own
    const subs = await this.deps.notifier.owned({ event: 'presence', resource, state: { $ne: 'terminated' } });
    for (const s of subs) {
      const grant = await this.deps.authorizer.decide(resource, s.watcherAnonymous ? undefined : s.watcher);
      if (grant.handling === 'block') {
        await this.deps.notifier.end(s._id, 'rejected');
        continue;
      }
      const data: PresenceSubData = { ...(s.data as PresenceSubData), handling: grant.handling };
      if (grant.provide) data.provide = grant.provide;
      else delete data.provide;
      await this.deps.notifier.authorize(s._id, grant.handling === 'confirm' ? 'pending' : 'active', data);
    }
  }
}
