/**
 * sipp scenarios for IM flows whose shape varies per test: a sender of one MESSAGE with any
 * headers and body (digest auth with -au/-ap), and a user agent that answers N MESSAGEs.
 */

/**
 * One MESSAGE to sip:[$to]@[$domain] (or `ruri`), challenged once (unless `challenged` is
 * false: the core answers before asking for credentials), expecting `final`.
 */
export function messageScenario(opts: {
  final: number;
  contentType?: string;
  body: string;
  headers?: string[];
  ruri?: string;
  challenged?: boolean;
}): { name: string; xml: string } {
  const ruri = opts.ruri ?? 'sip:[$to]@[$domain]';
  const request = (cseq: number, auth: boolean) => {
    // no empty line may fall among the headers: it would end them
    const extra = [...(auth ? ['[authentication]'] : []), ...(opts.headers ?? [])].map((h) => `\n      ${h}`).join('');
    return `
  <send retrans="500">
    <![CDATA[

      MESSAGE ${ruri} SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:[$user]@[$domain]>;tag=[pid]m[call_number]
      To: <${ruri}>
      Call-ID: [call_id]
      CSeq: ${cseq} MESSAGE${extra}
      Max-Forwards: 70
      Content-Type: ${opts.contentType ?? 'text/plain'}
      Content-Length: [len]

${opts.body}
    ]]>
  </send>`;
  };
  return {
    name: 'im-message',
    xml: `<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="im-message">
  <Global variables="user,domain,to" />
  ${request(1, false)}${
    opts.challenged === false
      ? ''
      : `
  <recv response="407" auth="true" />
  ${request(2, true)}`
  }
  <recv response="${opts.final}" />
</scenario>`,
  };
}

/**
 * A user agent answering one MESSAGE with `code` (the test reads the message trace). Each
 * MESSAGE is a call of its own to sipp: run it with -m N to take N of them.
 */
export function receiverScenario(code = 200): { name: string; xml: string } {
  const one = `
  <recv request="MESSAGE" />
  <send>
    <![CDATA[

      SIP/2.0 ${code} ${code === 200 ? 'OK' : 'Refused'}
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]u[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Server: sipp-uas [$domain]
      Content-Length: 0

    ]]>
  </send>`;
  return {
    name: 'im-receiver',
    xml: `<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="im-receiver">
  <Global variables="domain" />
  ${one}
</scenario>`,
  };
}

/** The MESSAGE requests of a sipp message trace, in order: request line, headers and body. */
export function receivedMessages(
  trace: string,
): Array<{ head: string; body: string; header: (name: string) => string | undefined }> {
  const out: Array<{ head: string; body: string; header: (name: string) => string | undefined }> = [];
  const re = /(MESSAGE sip:[^\r\n]* SIP\/2\.0\r?\n[\s\S]*?)\r?\n\r?\n/g;
  for (let m = re.exec(trace); m; m = re.exec(trace)) {
    const head = m[1]!;
    const len = Number(/\nContent-Length:\s*(\d+)/i.exec(head)?.[1] ?? '0');
    const start = m.index + m[0].length;
    // sipp ends the bodies it sends with a line break: compare the text without it
    const body = trace.slice(start, start + len).replace(/\r?\n$/, '');
    out.push({
      head,
      body,
      header: (name) => new RegExp(`\\n${name}:\\s*([^\\r\\n]*)`, 'i').exec(head)?.[1],
    });
  }
  return out;
}
