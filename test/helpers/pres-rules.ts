/** pres-rules documents the end-to-end tests give presentities (RFC 5025). */

export const PRES_RULES_TYPE = 'application/auth-policy+xml';

/** The XCAP path of a user's pres-rules document. */
export function presRulesPath(aor: string): string {
  return `/xcap-root/pres-rules/users/${aor}/index`;
}

/** One rule letting `watchers` (addresses of record) subscribe and see everything, note included. */
export function allowWatchers(...watchers: string[]): string {
  return `<?xml version="1.0" encoding="UTF-8"?>
<cp:ruleset xmlns:cp="urn:ietf:params:xml:ns:common-policy" xmlns:pr="urn:ietf:params:xml:ns:pres-rules">
  <cp:rule id="allowed">
    <cp:conditions><cp:identity>${watchers.map((w) => `<cp:one id="${w}"/>`).join('')}</cp:identity></cp:conditions>
    <cp:actions><pr:sub-handling>allow</pr:sub-handling></cp:actions>
    <cp:transformations>
      <pr:provide-services><pr:all-services/></pr:provide-services>
      <pr:provide-persons><pr:all-persons/></pr:provide-persons>
      <pr:provide-devices><pr:all-devices/></pr:provide-devices>
      <pr:provide-note>true</pr:provide-note>
    </cp:transformations>
  </cp:rule>
</cp:ruleset>`;
}
