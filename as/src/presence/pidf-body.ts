import type { IscCall } from '../isc/dispatcher.js';
import { reply, type ReplyDecision } from '../isc/types.js';
import { PidfError, parsePidf } from './pidf/index.js';
import type { PidfTrees } from './pidf-trees.js';
import { headerValueOnly } from '../sip/index.js';

export const PIDF_CONTENT_TYPE = 'application/pidf+xml';

/**
 * The answer a request's presence document earns (PUBLISH, a back-end NOTIFY): 415 with
 * Accept for another content type, 400 naming the fault for a document we refuse;
 * undefined when it is a PIDF we take. With `trees`, the tree parsed here is kept there for
 * the composition that follows.
 */
export function pidfBodyProblem(sip: IscCall['sip'], trees?: PidfTrees): ReplyDecision | undefined {
  const type = headerValueOnly(sip.headers.get('Content-Type'));
  if (type !== PIDF_CONTENT_TYPE)
    return reply(415, 'Unsupported Media Type', { headers: [['Accept', PIDF_CONTENT_TYPE]] });
  try {
    if (trees) trees.of(sip.body);
    else parsePidf(sip.body);
  } catch (err) {
    if (err instanceof PidfError) return reply(400, err.reason);
    throw err;
  }
  return undefined;
}
