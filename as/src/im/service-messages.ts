import type { UacClient, UacOutcome } from '../isc/uac.js';
import type { LocalDomain } from '../users/local-domain.js';

/**
 * MESSAGEs the service itself sends to users (notices such as "storage nearly full",
 * operator announcements). They leave through Kamailio, which delivers them to every
 * registered contact; the promise settles with the final outcome, timeouts included.
 */
export class ServiceMessenger {
  constructor(private readonly deps: { uac: UacClient; domain: LocalDomain; identity: string }) {}

  async send(to: string, text: string, contentType = 'text/plain;charset=utf-8'): Promise<UacOutcome> {
    const target = this.deps.domain.canonical(to);
    if (!target) throw new RangeError(`${to} is not a user of ${this.deps.domain.domain}`);
    return this.deps.uac.send({
      method: 'MESSAGE',
      ruri: target,
      viaCore: true,
      headers: [
        ['From', `<${this.deps.identity}>`],
        ['To', `<${target}>`],
        ['Max-Forwards', '70'],
        ['Content-Type', contentType],
      ],
      body: text,
    });
  }
}
