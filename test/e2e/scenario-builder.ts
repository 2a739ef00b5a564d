/**
 * Builds sipp scenarios for presence flows whose shape varies per test (how many NOTIFYs
 * to expect, which PUBLISH steps to run). Everything authenticates with -au/-ap and uses
 * the globals user, domain (and target for SUBSCRIBE) set with -set.
 */

const ok200 = `
  <send>
    <![CDATA[

      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>`;

let labels = 0;

/** Captures what a 200 to the NOTIFY needs (every Via line, From, To, Call-ID, CSeq). */
const captureNotify = `
    <action>
      <ereg regexp="Via:[^\\r\\n]*(\\r\\nVia:[^\\r\\n]*)*" search_in="msg" check_it="true" assign_to="nvia" />
      <ereg regexp=".*" search_in="hdr" header="From:" check_it="true" assign_to="nfrom" />
      <ereg regexp=".*" search_in="hdr" header="To:" check_it="true" assign_to="nto" />
      <ereg regexp=".*" search_in="hdr" header="Call-ID:" check_it="true" assign_to="ncid" />
      <ereg regexp=".*" search_in="hdr" header="CSeq:" check_it="true" assign_to="ncseq" />
    </action>`;

const okToCaptured = `
  <send>
    <![CDATA[

      SIP/2.0 200 OK
      [$nvia]
      From:[$nfrom]
      To:[$nto]
      Call-ID:[$ncid]
      CSeq:[$ncseq]
      Content-Length: 0

    ]]>
  </send>`;

/**
 * Takes a final response to our request and a NOTIFY in either order (RFC 6665 allows
 * both), and answers the NOTIFY only once both are in: sipp aborts a call that receives
 * a message while it sits on a <send>, so the 200 is built from captured headers.
 */
function responseAndNotify(code: number, rrs: boolean): string {
  const first = `l${++labels}`;
  const done = `l${++labels}`;
  return `
  <recv response="${code}"${rrs ? ' rrs="true"' : ''} optional="true" next="${first}" />
  <recv request="NOTIFY">${captureNotify}
  </recv>
  <recv response="${code}"${rrs ? ' rrs="true"' : ''} next="${done}" />
  <label id="${first}" />
  <recv request="NOTIFY">${captureNotify}
  </recv>
  <label id="${done}" />${okToCaptured}`;
}

function subscribe(
  cseq: number,
  event: string,
  expires: number,
  opts: {
    auth: boolean;
    inDialog: boolean;
    accept?: string;
    body?: { type: string; text: string };
    headers?: string[];
    contact?: string;
    targetDomain?: string;
  },
): string {
  const targetDomain = opts.targetDomain ?? '[$domain]';
  const uri = opts.inDialog ? '[next_url]' : `sip:[$target]@${targetDomain}`;
  return `
  <send retrans="500">
    <![CDATA[

      SUBSCRIBE ${uri} SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:[$user]@[$domain]>;tag=[pid]s[call_number]
      To: <sip:[$target]@${targetDomain}>${opts.inDialog ? '[peer_tag_param]' : ''}
      Call-ID: [call_id]
      CSeq: ${cseq} SUBSCRIBE${opts.inDialog ? '\n      [routes]' : ''}
      Contact: ${opts.contact ?? '<sip:[$user]@[local_ip]:[local_port]>'}${opts.auth ? '\n      [authentication]' : ''}
      Event: ${event}${opts.accept ? `\n      Accept: ${opts.accept}` : ''}${(opts.headers ?? []).map((h) => `\n      ${h}`).join('')}
      Expires: ${expires}
      Max-Forwards: 70${opts.body ? `\n      Content-Type: ${opts.body.type}` : ''}
      Content-Length: [len]
${opts.body ? `\n${opts.body.text}` : '\n'}
    ]]>
  </send>`;
}

/**
 * SUBSCRIBE (challenged, then authenticated), the 200 and the first NOTIFY in either order,
 * `more` further NOTIFYs (each logged with NOTIFIED so a test can wait for them), then an
 * un-SUBSCRIBE and its final NOTIFY, unless `unsubscribe` is false.
 * `expectFinal` other than 200 ends the scenario at that final response (403, 489 ...).
 */
export function subscriberScenario(o: {
  event: string;
  accept?: string;
  expires?: number;
  more?: number;
  unsubscribe?: boolean;
  expectFinal?: number;
  notifyTimeoutMs?: number;
  /** In-dialog refresh SUBSCRIBEs (same Expires) after the NOTIFYs, each answered 200 with a NOTIFY. */
  refreshes?: number;
  /** The Contact header value of the initial SUBSCRIBE (default: sipp's own address). */
  contact?: string;
  body?: { type: string; text: string };
  /** Extra header lines of every SUBSCRIBE (Supported: eventlist ...). */
  headers?: string[];
  /** The domain of the resource (default: the watcher's own, [$domain]). */
  targetDomain?: string;
  /**
   * After the first NOTIFY (and any `more`), take NOTIFYs, each logged NOTIFIED, until one
   * says Subscription-State: terminated (the resource ended it; no un-SUBSCRIBE then).
   */
  untilTerminated?: boolean;
}): string {
  const expires = o.expires ?? 600;
  const headers = o.headers ?? [];
  const first = {
    inDialog: false,
    accept: o.accept,
    body: o.body,
    headers,
    contact: o.contact,
    targetDomain: o.targetDomain,
  };
  const parts: string[] = [
    subscribe(1, o.event, expires, { ...first, auth: false }),
    `
  <recv response="407" auth="true" />`,
    subscribe(2, o.event, expires, { ...first, auth: true }),
  ];
  if (o.expectFinal && o.expectFinal !== 200) {
    parts.push(`
  <recv response="${o.expectFinal}" />`);
  } else {
    parts.push(
      responseAndNotify(200, true),
      `
  <nop><action><log message="SUBSCRIBED" /></action></nop>`,
    );
    for (let i = 0; i < (o.more ?? 0); i++) {
      parts.push(`
  <recv request="NOTIFY" timeout="${o.notifyTimeoutMs ?? 15000}" />${ok200}
  <nop><action><log message="NOTIFIED ${i + 1}" /></action></nop>`);
    }
    if (o.untilTerminated) {
      // unrolled (sipp jumps forward only here): up to 8 NOTIFYs, the one saying terminated ends it
      const done = `l${++labels}`;
      for (let i = 0; i < 8; i++)
        parts.push(`
  <recv request="NOTIFY" timeout="${o.notifyTimeoutMs ?? 15000}">
    <action>
      <ereg regexp="terminated" search_in="hdr" header="Subscription-State:" check_it="false" assign_to="ended" />
    </action>
  </recv>${ok200}
  <nop next="${done}" test="ended" />`);
      parts.push(`
  <nop><action><log message="NOT TERMINATED" /></action></nop>
  <label id="${done}" />`);
    }
    const refreshes = o.refreshes ?? 0;
    for (let i = 0; i < refreshes; i++) {
      parts.push(
        `
  <pause milliseconds="200" />`,
        subscribe(3 + i, o.event, expires, { auth: false, inDialog: true, headers, targetDomain: o.targetDomain }),
        responseAndNotify(200, false),
        `
  <nop><action><log message="REFRESHED ${i + 1}" /></action></nop>`,
      );
    }
    if (o.unsubscribe !== false && !o.untilTerminated) {
      parts.push(
        `
  <pause milliseconds="200" />`,
        subscribe(3 + refreshes, o.event, 0, { auth: false, inDialog: true, headers, targetDomain: o.targetDomain }),
        responseAndNotify(200, false),
      );
    }
  }
  return `<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="subscriber ${o.event}">
  <Global variables="user,domain,target" />${parts.join('')}
</scenario>
`;
}

export interface PublishStep {
  /** initial: body, no SIP-If-Match; refresh: SIP-If-Match, no body; modify: both; remove: Expires 0. */
  kind: 'initial' | 'refresh' | 'modify' | 'remove' | 'stale';
  basic?: 'open' | 'closed';
  note?: string;
  expires?: number;
  expect: number;
  contentType?: string;
  /** A raw body instead of the generated PIDF (bad input tests). */
  rawBody?: string;
  event?: string;
}

function pidf(basic: string, note?: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:[$user]@[$domain]">
  <tuple id="t[pid]">
    <status><basic>${basic}</basic></status>${note ? `\n    <note>${note}</note>` : ''}
  </tuple>
</presence>`;
}

/**
 * A publisher: the first PUBLISH is challenged, the next ones carry credentials through
 * sipp's [authentication] (one nonce, counted). The entity tag of each 2xx is captured and
 * used as SIP-If-Match by the next step; "stale" sends a made-up one (412 expected).
 */
export function publisherScenario(steps: PublishStep[]): string {
  const parts: string[] = [];
  steps.forEach((st, i) => {
    const cseq = i + 1;
    const body = st.rawBody ?? (st.kind === 'initial' || st.kind === 'modify' ? pidf(st.basic ?? 'open', st.note) : '');
    const ifMatch =
      st.kind === 'initial' ? '' : `\n      SIP-If-Match: ${st.kind === 'stale' ? 'no-such-etag' : '[$etag]'}`;
    const expires = st.kind === 'remove' ? 0 : (st.expires ?? 600);
    const send = (auth: boolean, c: number) => `
  <send retrans="500">
    <![CDATA[

      PUBLISH sip:[$user]@[$domain] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:[$user]@[$domain]>;tag=[pid]p[call_number]
      To: <sip:[$user]@[$domain]>
      Call-ID: [call_id]
      CSeq: ${c} PUBLISH${auth ? '\n      [authentication]' : ''}
      Event: ${st.event ?? 'presence'}
      Expires: ${expires}${ifMatch}
      Max-Forwards: 70${body ? `\n      Content-Type: ${st.contentType ?? 'application/pidf+xml'}` : ''}
      Content-Length: [len]
${body ? `\n${body}` : '\n'}
    ]]>
  </send>`;
    if (i === 0) {
      parts.push(
        send(false, 100),
        `
  <recv response="407" auth="true" />`,
      );
    }
    parts.push(send(true, cseq + 100));
    if (st.expect >= 200 && st.expect < 300) {
      parts.push(`
  <recv response="${st.expect}">
    <action>
      <ereg regexp="[^ \\t\\r\\n]+" search_in="hdr" header="SIP-ETag:" assign_to="etag" />
      <log message="ETAG [$etag]" />
    </action>
  </recv>`);
    } else {
      parts.push(`
  <recv response="${st.expect}" />`);
    }
  });
  return `<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="publisher">
  <Global variables="user,domain" />${parts.join('')}
</scenario>
`;
}
