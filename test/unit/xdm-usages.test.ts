import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  NamespaceScope,
  childElements,
  findChildren,
  parseXml,
  textContent,
  xmlNamespaces,
} from '../../as/src/xml/xml-tree.js';
import type { ApplicationUsage, ValidationProblem } from '../../as/src/xdm/usages/usage.js';
import { proposeAltValues } from '../../as/src/xdm/usages/schema-checker.js';
import { normalizeUri } from '../../as/src/xml/uri-check.js';
import { parseXsDateTime } from '../../as/src/xml/xsd-datatypes.js';
import { allUsages, usageByAuid } from '../../as/src/xdm/usages/index.js';
import { resourceListsUsage, parseXcapPath, xcapListUriProblem } from '../../as/src/xdm/usages/resource-lists.js';
import {
  rlsServicesUsage,
  mergeRlsServices,
  serviceUris,
  serviceUriClaimProblem,
} from '../../as/src/xdm/usages/rls-services.js';
import { presRulesUsage } from '../../as/src/xdm/usages/pres-rules.js';
import { evaluatePresRules, type PresRulesRequest } from '../../as/src/presence/pres-rules-evaluator.js';
import { pidfManipulationUsage } from '../../as/src/xdm/usages/pidf-manipulation.js';
import { groupsUsage, groupMemberUris, groupUris } from '../../as/src/xdm/usages/groups.js';
import {
  imPolicyUsage,
  readImPolicy,
  acceptsFileType,
  imPolicyVerdict,
  defaultImPolicyDocument,
  keepsHistoryWith,
} from '../../as/src/xdm/usages/im-policy.js';
import { xcapCapsUsage, xcapCapsDocument } from '../../as/src/xdm/usages/xcap-caps.js';
import { xcapDirectoryUsage, xcapDirectoryDocument } from '../../as/src/xdm/usages/xcap-directory.js';
import { RFC4826_RESOURCE_LISTS, RFC4826_RLS_SERVICES, RFC5025_PRES_RULES } from '../helpers/rfc-examples.js';

const CTX = { xui: 'sip:joe@example.com', domain: 'example.com' };

function check(usage: ApplicationUsage, xml: string): ValidationProblem[] {
  return usage.validate(parseXml(xml), CTX);
}

function assertValid(usage: ApplicationUsage, xml: string): void {
  assert.deepEqual(check(usage, xml), []);
}

/** The first problem must be a schema problem whose message contains every fragment. */
function assertSchema(usage: ApplicationUsage, xml: string, ...fragments: string[]): void {
  const problems = check(usage, xml);
  const first = problems[0];
  assert.ok(first && first.kind === 'schema', `expected a schema problem, got ${JSON.stringify(problems)}`);
  for (const f of fragments) assert.ok(first.message.includes(f), `"${first.message}" should contain "${f}"`);
}

function assertConstraint(usage: ApplicationUsage, xml: string, ...fragments: string[]): void {
  const problems = check(usage, xml);
  assert.equal(problems.length, 1, JSON.stringify(problems));
  const first = problems[0];
  assert.ok(first && first.kind === 'constraint', `expected a constraint problem, got ${JSON.stringify(problems)}`);
  for (const f of fragments) assert.ok(first.phrase.includes(f), `"${first.phrase}" should contain "${f}"`);
}

function uniquenessProblems(usage: ApplicationUsage, xml: string) {
  const problems = check(usage, xml);
  assert.ok(problems.length > 0 && problems.every((p) => p.kind === 'uniqueness'), JSON.stringify(problems));
  return problems as Array<Extract<ValidationProblem, { kind: 'uniqueness' }>>;
}

// ---------------------------------------------------------------------------
// resource-lists
// ---------------------------------------------------------------------------

const RL_HEAD = `<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists">`;
const rl = (body: string): string => `${RL_HEAD}${body}</resource-lists>`;

describe('resource-lists', () => {
  it('accepts the RFC 4826 example', () => {
    assertValid(resourceListsUsage, RFC4826_RESOURCE_LISTS);
  });

  it('accepts an empty document, extensions of other namespaces and foreign attributes', () => {
    assertValid(resourceListsUsage, RL_HEAD + '</resource-lists>');
    assertValid(
      resourceListsUsage,
      rl(`<list name="a" xmlns:x="urn:x" x:color="red"><entry uri="tel:+1-201-555-0123" x:flag="1"><display-name xml:lang="en">Tel</display-name><x:note/></entry>
          <entry uri="pres:bob@example.com"/><entry uri="mailto:bob@example.com"/><x:ext>anything</x:ext></list>`),
    );
  });

  it('refuses another root element', () => {
    assertSchema(
      resourceListsUsage,
      '<rls-services xmlns="urn:ietf:params:xml:ns:rls-services"/>',
      'root element',
      'resource-lists',
    );
    assertSchema(resourceListsUsage, '<resource-lists/>', 'root element');
  });

  it('names the element that lacks a required attribute', () => {
    assertSchema(
      resourceListsUsage,
      rl('<list><entry/></list>'),
      '<entry>',
      'resource-lists/list/entry',
      'missing required attribute "uri"',
    );
    assertSchema(resourceListsUsage, rl('<list><entry-ref/></list>'), '<entry-ref>', '"ref"');
    assertSchema(resourceListsUsage, rl('<list><external/></list>'), '<external>', '"anchor"');
  });

  it('refuses unknown elements, misplaced ones, unknown attributes and text', () => {
    assertSchema(
      resourceListsUsage,
      rl('<list><buddy uri="sip:a@b.c"/></list>'),
      '<list>',
      'element <buddy> is not allowed',
    );
    assertSchema(
      resourceListsUsage,
      rl('<list><entry uri="sip:a@b.c"/><display-name>x</display-name></list>'),
      '<display-name> is not allowed',
    );
    assertSchema(
      resourceListsUsage,
      rl('<list xmlns:x="urn:x"><x:ext/><entry uri="sip:a@b.c"/></list>'),
      '<entry> is not allowed',
    );
    assertSchema(resourceListsUsage, rl('<list colour="red"/>'), 'attribute "colour" is not allowed');
    assertSchema(resourceListsUsage, rl('<list>hello</list>'), 'character data is not allowed');
    assertSchema(
      resourceListsUsage,
      rl('<entry uri="sip:a@b.c"/>'),
      '<resource-lists>',
      '<entry> is not allowed',
      'expected <list>',
    );
    assertSchema(
      resourceListsUsage,
      rl('<list><entry uri="sip:a@b.c"><display-name>a<b/></display-name></entry></list>'),
      '<display-name>',
      'simple content',
    );
  });

  it('list names are unique among siblings (uniqueness failure with alternatives)', () => {
    const [p, ...rest] = uniquenessProblems(
      resourceListsUsage,
      rl('<list name="friends"/><list name="friends"/><list name="friends1"/>'),
    );
    assert.equal(rest.length, 0);
    assert.deepEqual(p, {
      kind: 'uniqueness',
      field: 'resource-lists/list/@name',
      value: 'friends',
      altValues: ['friends2', 'friends3', 'friends4'],
    });
    // nested: same name in different parents is fine
    assertValid(resourceListsUsage, rl('<list name="a"><list name="x"/></list><list name="b"><list name="x"/></list>'));
    const [n] = uniquenessProblems(resourceListsUsage, rl('<list name="a"><list name="x"/><list name="x"/></list>'));
    assert.equal(n?.field, 'resource-lists/list[@name="a"]/list/@name');
  });

  it('entry URIs are unique within a list, not across lists', () => {
    const [p] = uniquenessProblems(
      resourceListsUsage,
      rl('<list name="friends"><entry uri="sip:a@example.com"/><entry uri="sip:a@example.com"/></list>'),
    );
    assert.deepEqual(p, {
      kind: 'uniqueness',
      field: 'resource-lists/list[@name="friends"]/entry/@uri',
      value: 'sip:a@example.com',
    });
    assertValid(
      resourceListsUsage,
      rl(
        '<list name="x"><entry uri="sip:a@example.com"/></list><list name="y"><entry uri="sip:a@example.com"/></list>',
      ),
    );
  });

  it('URI constraints: entry uri, entry-ref ref, external anchor', () => {
    assertConstraint(resourceListsUsage, rl('<list><entry uri="bob"/></list>'), 'entry uri "bob"', 'not a URI');
    assertConstraint(resourceListsUsage, rl('<list><entry uri="sip:alice@"/></list>'), 'not a valid sip: URI');
    assertConstraint(
      resourceListsUsage,
      rl('<list><entry-ref ref="http://x.example.com/resource-lists/users/sip:a@b/index"/></list>'),
      'entry-ref ref',
      'relative',
    );
    assertConstraint(
      resourceListsUsage,
      rl('<list><entry-ref ref="/resource-lists/users/sip:a@b/index"/></list>'),
      'relative to the XCAP root',
    );
    assertConstraint(
      resourceListsUsage,
      rl('<list><entry-ref ref="resource-lists/index"/></list>'),
      'not a valid XCAP URI path',
    );
    assertConstraint(
      resourceListsUsage,
      rl('<list><external anchor="resource-lists/users/sip:a@b/index/~~/resource-lists/list"/></list>'),
      'external anchor',
      'absolute',
    );
    assertConstraint(
      resourceListsUsage,
      rl(
        '<list><external anchor="ftp://x.example.com/resource-lists/users/sip:a@b/index/~~/resource-lists/list"/></list>',
      ),
      'http or https',
    );
    assertConstraint(
      resourceListsUsage,
      rl(
        '<list><external anchor="https://x.example.com/resource-lists/users/sip:a@b/index/~~/resource-lists/list%5b@name=%22a%22%5d/entry%5b1%5d"/></list>',
      ),
      'does not select a list element',
    );
  });

  it('XCAP URI helpers', () => {
    assert.deepEqual(
      parseXcapPath('resource-lists/users/sip:bob@example.com/index/~~/resource-lists/list%5b@name=%22a%22%5d'),
      {
        auid: 'resource-lists',
        tree: 'users',
        xui: 'sip:bob@example.com',
        document: 'index',
        nodeSelector: 'resource-lists/list[@name="a"]',
      },
    );
    assert.deepEqual(parseXcapPath('rls-services/global/index'), {
      auid: 'rls-services',
      tree: 'global',
      document: 'index',
    });
    assert.equal(parseXcapPath('resource-lists/users/sip:bob@example.com'), undefined);
    assert.equal(
      xcapListUriProblem(
        'https://xcap.example.com/root/resource-lists/users/sip:a@b/index/~~/resource-lists/list%5b@name=%22a%2Fb%22%5d',
      ),
      undefined,
    );
  });
});

// ---------------------------------------------------------------------------
// rls-services
// ---------------------------------------------------------------------------

const RLS_HEAD =
  '<rls-services xmlns="urn:ietf:params:xml:ns:rls-services" xmlns:rl="urn:ietf:params:xml:ns:resource-lists">';
const rls = (body: string): string => `${RLS_HEAD}${body}</rls-services>`;
const LIST_URI =
  'http://xcap.example.com/resource-lists/users/sip:joe@example.com/index/~~/resource-lists/list%5b@name=%22l1%22%5d';

describe('rls-services', () => {
  it("accepts the RFC 4826 example, its service URIs in the owner's namespace", () => {
    assertValid(rlsServicesUsage, RFC4826_RLS_SERVICES.replace(/sip:(mybuddies|marketing)@/g, 'sip:joe-$1@'));
  });

  it("refuses service URIs outside the owner's namespace sip:<user>-<name>@<domain>", () => {
    const service = (uri: string) => rls(`<service uri="${uri}"><resource-list>${LIST_URI}</resource-list></service>`);
    for (const uri of [
      'sip:joe@example.com',
      'sip:bob@example.com',
      'sip:mybuddies@example.com',
      'sip:joe-@example.com',
      'sip:joex-a@example.com',
      'sip:bob-a@example.com',
      'sip:joe-a@other.example.net',
      'sips:joe-a@example.com',
      'tel:+12015550123',
    ]) {
      assertConstraint(rlsServicesUsage, service(uri), `service uri "${uri}"`, 'namespace');
    }
    assertValid(rlsServicesUsage, service('sip:joe-a@EXAMPLE.com'));
    assert.equal(serviceUriClaimProblem('sip:bob-list@example.com', 'sip:bob@example.com', 'example.com'), undefined);
  });

  it('declares its AUID, MIME type and the global index', () => {
    assert.equal(rlsServicesUsage.auid, 'rls-services');
    assert.equal(rlsServicesUsage.mimeType, 'application/rls-services+xml');
    assert.deepEqual(rlsServicesUsage.globalDocuments, ['index']);
  });

  it('service needs a uri and exactly one of resource-list / list', () => {
    assertSchema(
      rlsServicesUsage,
      rls(`<service><resource-list>${LIST_URI}</resource-list></service>`),
      '<service>',
      'missing required attribute "uri"',
    );
    assertSchema(
      rlsServicesUsage,
      rls('<service uri="sip:joe-a@example.com"><packages/></service>'),
      '<service',
      'expected <resource-list> or <list>',
    );
    assertSchema(
      rlsServicesUsage,
      rls('<service uri="sip:joe-a@example.com"/>'),
      'missing required element <resource-list> or <list>',
    );
    assertSchema(
      rlsServicesUsage,
      rls(`<service uri="sip:joe-a@example.com"><resource-list>${LIST_URI}</resource-list><list/></service>`),
      'element <list> is not allowed',
    );
  });

  it('package names are tokens; the inline list follows resource-lists rules', () => {
    assertSchema(
      rlsServicesUsage,
      rls(
        `<service uri="sip:joe-a@example.com"><resource-list>${LIST_URI}</resource-list><packages><package>pres ence</package></packages></service>`,
      ),
      '<package>',
      'event package',
    );
    assertSchema(
      rlsServicesUsage,
      rls('<service uri="sip:joe-a@example.com"><list><entry uri="sip:b@example.com"/></list></service>'),
      'element <entry> is not allowed',
    );
    const [p] = uniquenessProblems(
      rlsServicesUsage,
      rls(
        '<service uri="sip:joe-a@example.com"><list><rl:entry uri="sip:b@example.com"/><rl:entry uri="sip:b@example.com"/></list></service>',
      ),
    );
    assert.equal(p?.field, 'rls-services/service[@uri="sip:joe-a@example.com"]/list/rl:entry/@uri');
  });

  it('resource-list must be an http(s) XCAP URI of a list', () => {
    assertConstraint(
      rlsServicesUsage,
      rls('<service uri="sip:joe-a@example.com"><resource-list>sip:list@example.com</resource-list></service>'),
      'resource-list',
      'http',
    );
    assertConstraint(
      rlsServicesUsage,
      rls(
        '<service uri="sip:joe-a@example.com"><resource-list>http://xcap.example.com/resource-lists/users/sip:joe@example.com/index</resource-list></service>',
      ),
      'does not select a list element',
    );
    assertConstraint(
      rlsServicesUsage,
      rls(`<service uri="mybuddies"><resource-list>${LIST_URI}</resource-list></service>`),
      'service uri "mybuddies"',
    );
  });

  it('service URIs are unique within the document, compared as SIP URIs, with proposed alternatives', () => {
    const [p, ...rest] = uniquenessProblems(
      rlsServicesUsage,
      rls(
        `<service uri="sip:joe-mybuddies@example.com"><resource-list>${LIST_URI}</resource-list></service>` +
          `<service uri="sip:joe-mybuddies@EXAMPLE.com"><resource-list>${LIST_URI}</resource-list></service>` +
          `<service uri="sip:joe-mybuddies1@example.com"><resource-list>${LIST_URI}</resource-list></service>`,
      ),
    );
    assert.equal(rest.length, 0);
    assert.equal(p?.field, 'rls-services/service/@uri');
    assert.equal(p?.value, 'sip:joe-mybuddies@EXAMPLE.com');
    assert.deepEqual(p?.altValues, [
      'sip:joe-mybuddies2@EXAMPLE.com',
      'sip:joe-mybuddies3@EXAMPLE.com',
      'sip:joe-mybuddies4@EXAMPLE.com',
    ]);
  });

  it('exposes the service URIs as global unique keys', () => {
    const doc = parseXml(
      RFC4826_RLS_SERVICES.replace('sip:marketing@example.com', 'sip:marketing@Example.COM;transport=tcp'),
    );
    assert.deepEqual(rlsServicesUsage.uniqueKeys?.(doc), [
      { field: 'uri', value: 'sip:mybuddies@example.com' },
      { field: 'uri', value: 'sip:marketing@example.com' },
    ]);
    assert.deepEqual(rlsServicesUsage.uniqueKeySelectors, { uri: 'rls-services/service/@uri' });
    assert.deepEqual(serviceUris(doc), ['sip:mybuddies@example.com', 'sip:marketing@Example.COM;transport=tcp']);
  });

  it('merges the services of all users into the global index, keeping namespaces', () => {
    const other = parseXml(
      `<r:rls-services xmlns:r="urn:ietf:params:xml:ns:rls-services" xmlns:l="urn:ietf:params:xml:ns:resource-lists"><r:service uri="sip:team@example.com"><r:list><l:entry uri="sip:x@example.com"/></r:list></r:service></r:rls-services>`,
    );
    const merged = mergeRlsServices([parseXml(RFC4826_RLS_SERVICES), other]);
    // a global document: no owner, so no owner's namespace
    assert.deepEqual(rlsServicesUsage.validate(merged, { domain: CTX.domain }), []);
    assert.deepEqual(serviceUris(merged), [
      'sip:mybuddies@example.com',
      'sip:marketing@example.com',
      'sip:team@example.com',
    ]);
  });
});

// ---------------------------------------------------------------------------
// pres-rules
// ---------------------------------------------------------------------------

const PR_HEAD =
  '<cp:ruleset xmlns:cp="urn:ietf:params:xml:ns:common-policy" xmlns:pr="urn:ietf:params:xml:ns:pres-rules" xmlns:ocp="urn:oma:xml:xdm:common-policy">';
const ruleset = (body: string): string => `${PR_HEAD}${body}</cp:ruleset>`;
const rule = (id: string, conditions: string, subHandling?: string, transformations = ''): string =>
  `<cp:rule id="${id}">${conditions === '' ? '' : `<cp:conditions>${conditions}</cp:conditions>`}` +
  (subHandling ? `<cp:actions><pr:sub-handling>${subHandling}</pr:sub-handling></cp:actions>` : '') +
  (transformations ? `<cp:transformations>${transformations}</cp:transformations>` : '') +
  '</cp:rule>';
const one = (id: string): string => `<cp:identity><cp:one id="${id}"/></cp:identity>`;

describe('pres-rules: validation', () => {
  it('accepts the RFC 5025 example', () => {
    assertValid(presRulesUsage, RFC5025_PRES_RULES);
  });

  it('accepts every condition, action and transformation', () => {
    assertValid(
      presRulesUsage,
      ruleset(
        rule(
          'r1',
          '<cp:identity><cp:one id="sip:a@example.com"/><cp:many domain="example.org"><cp:except id="sip:b@example.org"/><cp:except domain="x.example.org"/></cp:many><cp:many/></cp:identity>' +
            '<cp:sphere value="work home"/><cp:validity><cp:from>2024-01-01T00:00:00Z</cp:from><cp:until>2024-12-31T23:59:59+01:00</cp:until><cp:from>2025-01-01T00:00:00.5Z</cp:from><cp:until>2026-01-01T00:00:00</cp:until></cp:validity>' +
            '<ocp:external-list><ocp:entry anc="http://xcap.example.com/resource-lists/users/sip:joe@example.com/index/~~/resource-lists/list%5b@name=%22friends%22%5d"/></ocp:external-list>' +
            '<ocp:anonymous-request/><ocp:other-identity/>',
          'polite-block',
          '<pr:provide-services><pr:all-services/></pr:provide-services><pr:provide-persons><pr:occurrence-id>p1</pr:occurrence-id><pr:class>work</pr:class></pr:provide-persons>' +
            '<pr:provide-devices><pr:deviceID>urn:uuid:0001</pr:deviceID><pr:class>pc</pr:class></pr:provide-devices>' +
            '<pr:provide-activities>1</pr:provide-activities><pr:provide-class>false</pr:provide-class><pr:provide-deviceID>true</pr:provide-deviceID><pr:provide-mood>true</pr:provide-mood>' +
            '<pr:provide-place-is>true</pr:provide-place-is><pr:provide-place-type>true</pr:provide-place-type><pr:provide-privacy>true</pr:provide-privacy><pr:provide-relationship>true</pr:provide-relationship>' +
            '<pr:provide-status-icon>true</pr:provide-status-icon><pr:provide-sphere>true</pr:provide-sphere><pr:provide-time-offset>true</pr:provide-time-offset><pr:provide-note>true</pr:provide-note>' +
            '<pr:provide-user-input>full</pr:provide-user-input><pr:provide-all-attributes/>',
        ) +
          rule('r2', '') +
          '<cp:rule id="r3"><cp:conditions/><cp:actions/><cp:transformations/></cp:rule>',
      ),
    );
    assertValid(presRulesUsage, ruleset(''));
  });

  it('rule ids: required, XML IDs, unique (uniqueness failure with alternatives)', () => {
    assertSchema(presRulesUsage, ruleset('<cp:rule/>'), '<cp:rule>', 'missing required attribute "id"');
    assertSchema(presRulesUsage, ruleset('<cp:rule id="1a"/>'), '<cp:rule>', 'not a valid XML ID');
    const [p] = uniquenessProblems(presRulesUsage, ruleset(rule('wl', '') + rule('wl', '') + rule('wl1', '')));
    assert.deepEqual(p, {
      kind: 'uniqueness',
      field: 'cp:ruleset/cp:rule/@id',
      value: 'wl',
      altValues: ['wl2', 'wl3', 'wl4'],
    });
  });

  it('structure of rules and conditions', () => {
    assertSchema(
      presRulesUsage,
      ruleset('<cp:rule id="a"><cp:actions/><cp:conditions/></cp:rule>'),
      '<cp:rule>',
      '<cp:conditions> is not allowed',
    );
    assertSchema(
      presRulesUsage,
      ruleset(rule('a', '<cp:identity/>')),
      '<cp:identity>',
      'missing required element <one> or <many>',
    );
    assertSchema(presRulesUsage, ruleset(rule('a', '<cp:identity><cp:one/></cp:identity>')), '<cp:one>', '"id"');
    assertSchema(presRulesUsage, ruleset(rule('a', '<cp:sphere/>')), '<cp:sphere>', '"value"');
    assertSchema(
      presRulesUsage,
      ruleset(rule('a', '<cp:validity><cp:from>2024-01-01T00:00:00Z</cp:from></cp:validity>')),
      '<cp:validity>',
      'missing required element <until>',
    );
    assertSchema(
      presRulesUsage,
      ruleset(
        rule('a', '<cp:validity><cp:from>yesterday</cp:from><cp:until>2024-01-01T00:00:00Z</cp:until></cp:validity>'),
      ),
      '<cp:from>',
      'xs:dateTime',
    );
    assertSchema(
      presRulesUsage,
      ruleset(rule('a', '<cp:identity><cp:many><cp:except id="sip:a@b.c">x</cp:except></cp:many></cp:identity>')),
      '<cp:except>',
      'must be empty',
    );
    assertSchema(
      presRulesUsage,
      ruleset(rule('a', '<ocp:anonymous-request>yes</ocp:anonymous-request>')),
      '<ocp:anonymous-request>',
      'must be empty',
    );
    assertSchema(
      presRulesUsage,
      ruleset(rule('a', '<ocp:external-list><ocp:entry/></ocp:external-list>')),
      '<ocp:entry>',
      '"anc"',
    );
    assertSchema(presRulesUsage, ruleset(rule('a', '<ocp:whatever/>')), '<ocp:whatever>', 'unknown condition');
    assertSchema(
      presRulesUsage,
      ruleset('<cp:rule id="a"><cp:actions><cp:identity/></cp:actions></cp:rule>'),
      '<cp:actions>',
      '<cp:identity> is not allowed',
    );
  });

  it('enumerations and booleans of actions and transformations', () => {
    assertSchema(
      presRulesUsage,
      ruleset(rule('a', '', 'deny')),
      '<pr:sub-handling>',
      'value "deny"',
      'block, confirm, polite-block, allow',
    );
    assertSchema(
      presRulesUsage,
      ruleset(rule('a', '', undefined, '<pr:provide-user-input>some</pr:provide-user-input>')),
      '<pr:provide-user-input>',
      'false, bare, thresholds, full',
    );
    assertSchema(
      presRulesUsage,
      ruleset(rule('a', '', undefined, '<pr:provide-mood>yes</pr:provide-mood>')),
      '<pr:provide-mood>',
      'not a boolean',
    );
    assertSchema(
      presRulesUsage,
      ruleset(rule('a', '', undefined, '<pr:provide-unknown-attribute name="foo">true</pr:provide-unknown-attribute>')),
      '<pr:provide-unknown-attribute>',
      '"ns"',
    );
    assertSchema(
      presRulesUsage,
      ruleset(
        rule(
          'a',
          '',
          undefined,
          '<pr:provide-services><pr:all-services/><pr:service-uri>sip:a@b.c</pr:service-uri></pr:provide-services>',
        ),
      ),
      '<pr:provide-services>',
      '<pr:service-uri> is not allowed',
    );
    assertSchema(
      presRulesUsage,
      ruleset(rule('a', '', undefined, '<pr:provide-devices><pr:all-persons/></pr:provide-devices>')),
      '<pr:provide-devices>',
      '<pr:all-persons> is not allowed',
    );
    assertSchema(
      presRulesUsage,
      ruleset(rule('a', '', undefined, '<pr:provide-all-attributes>true</pr:provide-all-attributes>')),
      '<pr:provide-all-attributes>',
      'must be empty',
    );
    assertSchema(
      presRulesUsage,
      ruleset(rule('a', '', undefined, '<pr:provide-activites>true</pr:provide-activites>')),
      '<pr:provide-activites>',
      'not a transformation',
    );
    assertSchema(
      presRulesUsage,
      ruleset(rule('a', '', undefined, '<pr:sub-handling>allow</pr:sub-handling>')),
      '<pr:sub-handling>',
      'not a transformation',
    );
    assertSchema(
      presRulesUsage,
      ruleset('<cp:rule id="a"><cp:actions><pr:provide-mood>true</pr:provide-mood></cp:actions></cp:rule>'),
      '<pr:provide-mood>',
      'not an action',
    );
    // elements of other namespaces are extensions, processed laxly
    assertValid(presRulesUsage, ruleset('<cp:rule id="a" ><cp:actions><x:y xmlns:x="urn:x"/></cp:actions></cp:rule>'));
  });

  it('URI constraints on identities and external lists', () => {
    assertConstraint(presRulesUsage, ruleset(rule('a', one('alice'))), 'identity one id "alice"');
    assertConstraint(
      presRulesUsage,
      ruleset(rule('a', '<ocp:external-list><ocp:entry anc="sip:friends@example.com"/></ocp:external-list>')),
      'external-list entry anc',
    );
  });

  it('has no default document', () => {
    assert.equal(presRulesUsage.defaultDocument?.('sip:joe@example.com'), undefined);
    assert.equal(presRulesUsage.mimeType, 'application/auth-policy+xml');
  });
});

describe('pres-rules: evaluatePresRules', () => {
  const now = new Date('2025-06-15T12:00:00Z');
  const req = (watcher: string, extra: Partial<PresRulesRequest> = {}): PresRulesRequest => ({
    watcher,
    anonymous: false,
    now,
    ...extra,
  });
  const evalDoc = (body: string, r: PresRulesRequest) => evaluatePresRules(parseXml(ruleset(body)), r);

  it('the RFC 5025 example: allow for its identity, nothing for anyone else', () => {
    const d = evaluatePresRules(RFC5025_PRES_RULES, req('sip:user@example.com'));
    assert.ok(d);
    assert.equal(d.subHandling, 'allow');
    assert.deepEqual(d.matchedRuleIds, ['a']);
    assert.deepEqual(d.transformations.services.serviceUriSchemes, ['sip', 'mailto']);
    assert.equal(d.transformations.persons.all, true);
    assert.equal(d.transformations.activities, true);
    assert.equal(d.transformations.userInput, 'bare');
    assert.deepEqual(d.transformations.unknownAttributes, [{ ns: 'urn:vendor-specific:foo-namespace', name: 'foo' }]);
    assert.equal(d.transformations.mood, false);
    assert.equal(evaluatePresRules(RFC5025_PRES_RULES, req('sip:other@example.com')), undefined);
  });

  it('sub-handling: the highest value among applying rules wins (block < confirm < polite-block < allow)', () => {
    const order = ['block', 'confirm', 'polite-block', 'allow'];
    for (let i = 0; i < order.length; i++) {
      for (let j = 0; j < order.length; j++) {
        const d = evalDoc(
          rule('x', one('sip:alice@example.com'), order[i]) +
            rule('y', '<cp:identity><cp:many/></cp:identity>', order[j]),
          req('sip:alice@example.com'),
        );
        assert.equal(d?.subHandling, order[Math.max(i, j)], `${order[i]} + ${order[j]}`);
        assert.deepEqual(d?.matchedRuleIds, ['x', 'y']);
      }
    }
    // only one applies
    assert.equal(
      evalDoc(
        rule('x', one('sip:alice@example.com'), 'allow') + rule('y', one('sip:bob@example.com'), 'block'),
        req('sip:bob@example.com'),
      )?.subHandling,
      'block',
    );
    // applying rules without sub-handling: block
    assert.equal(evalDoc(rule('x', one('sip:alice@example.com')), req('sip:alice@example.com'))?.subHandling, 'block');
    // no rule applies: undefined, the caller decides
    assert.equal(evalDoc(rule('x', one('sip:alice@example.com'), 'allow'), req('sip:bob@example.com')), undefined);
    assert.equal(evalDoc('', req('sip:bob@example.com')), undefined);
  });

  it('identity one: compared as addresses of record', () => {
    const body = rule('x', one('sip:alice@example.com'), 'allow');
    assert.equal(evalDoc(body, req('sip:alice@EXAMPLE.com;transport=tcp'))?.subHandling, 'allow');
    assert.equal(evalDoc(body, req('<sip:alice@example.com>'))?.subHandling, 'allow');
    assert.equal(evalDoc(body, req('sip:Alice@example.com')), undefined);
    assert.equal(
      evalDoc(rule('t', one('tel:+1-201-555-0123'), 'allow'), req('tel:+12015550123'))?.subHandling,
      'allow',
    );
  });

  it('identity many: any authenticated identity, or a domain, minus except id / except domain', () => {
    const body = rule(
      'x',
      '<cp:identity><cp:many domain="example.com"><cp:except id="sip:carol@example.com"/><cp:except domain="sub.example.com"/></cp:many></cp:identity>',
      'confirm',
    );
    assert.equal(evalDoc(body, req('sip:dave@Example.COM'))?.subHandling, 'confirm');
    assert.equal(evalDoc(body, req('sip:carol@example.com')), undefined);
    assert.equal(evalDoc(body, req('sip:dave@example.org')), undefined);
    assert.equal(evalDoc(body, req('sip:erin@sub.example.com')), undefined);
    assert.equal(evalDoc(body, req('tel:+12015550123')), undefined);
    const anyone = rule(
      'y',
      '<cp:identity><cp:many><cp:except domain="spam.example"/></cp:many></cp:identity>',
      'allow',
    );
    assert.equal(evalDoc(anyone, req('sip:x@example.org'))?.subHandling, 'allow');
    assert.equal(evalDoc(anyone, req('sip:x@spam.example')), undefined);
    // several children of identity: any of them
    const either = rule(
      'z',
      '<cp:identity><cp:one id="sip:a@example.com"/><cp:many domain="example.net"/></cp:identity>',
      'allow',
    );
    assert.equal(evalDoc(either, req('sip:a@example.com'))?.subHandling, 'allow');
    assert.equal(evalDoc(either, req('sip:q@example.net'))?.subHandling, 'allow');
    assert.equal(evalDoc(either, req('sip:q@example.com')), undefined);
  });

  it('validity: the rule applies inside one of its [from, until) windows only', () => {
    const body = rule(
      'v',
      one('sip:alice@example.com') +
        '<cp:validity><cp:from>2025-01-01T00:00:00Z</cp:from><cp:until>2025-02-01T00:00:00Z</cp:until><cp:from>2025-06-15T11:00:00+00:00</cp:from><cp:until>2025-06-15T14:00:00+02:00</cp:until></cp:validity>',
      'allow',
    );
    const alice = 'sip:alice@example.com';
    assert.equal(evalDoc(body, req(alice, { now: new Date('2025-01-15T00:00:00Z') }))?.subHandling, 'allow');
    assert.equal(evalDoc(body, req(alice, { now: new Date('2025-06-15T11:59:59Z') }))?.subHandling, 'allow');
    assert.equal(evalDoc(body, req(alice, { now: new Date('2025-06-15T12:00:00Z') })), undefined, 'until is exclusive');
    assert.equal(evalDoc(body, req(alice, { now: new Date('2025-03-01T00:00:00Z') })), undefined);
    assert.equal(evalDoc(body, req(alice, { now: new Date('2024-12-31T23:59:59Z') })), undefined);
  });

  it('anonymous requests: identity never matches, anonymous-request does, unconditional rules too', () => {
    const body =
      rule('known', '<cp:identity><cp:many/></cp:identity>', 'allow') +
      rule('anon', '<ocp:anonymous-request/>', 'polite-block') +
      rule('all', '', 'block');
    const a = evalDoc(body, req('sip:anonymous@anonymous.invalid', { anonymous: true }));
    assert.equal(a?.subHandling, 'polite-block');
    assert.deepEqual(a?.matchedRuleIds, ['anon', 'all']);
    const k = evalDoc(body, req('sip:bob@example.com'));
    assert.equal(k?.subHandling, 'allow');
    assert.deepEqual(k?.matchedRuleIds, ['known', 'all']);
  });

  it('other-identity: authenticated watchers that no other rule identifies', () => {
    const body =
      rule('friends', one('sip:alice@example.com'), 'allow') +
      rule('blocked', one('sip:mallory@example.com'), 'block') +
      rule('rest', '<ocp:other-identity/>', 'confirm');
    assert.deepEqual(evalDoc(body, req('sip:bob@example.com'))?.matchedRuleIds, ['rest']);
    assert.equal(evalDoc(body, req('sip:bob@example.com'))?.subHandling, 'confirm');
    assert.deepEqual(evalDoc(body, req('sip:alice@example.com'))?.matchedRuleIds, ['friends']);
    assert.equal(evalDoc(body, req('sip:mallory@example.com'))?.subHandling, 'block');
    assert.equal(evalDoc(body, req('sip:x@example.com', { anonymous: true })), undefined);
  });

  it('external-list through the caller, sphere, unknown conditions', () => {
    const anc =
      'http://xcap.example.com/resource-lists/users/sip:joe@example.com/index/~~/resource-lists/list%5b@name=%22friends%22%5d';
    const body = rule('x', `<ocp:external-list><ocp:entry anc="${anc}"/></ocp:external-list>`, 'allow');
    const lists = (a: string) => (a === anc ? ['sip:alice@example.com', 'sip:bob@example.com'] : undefined);
    assert.equal(evalDoc(body, req('sip:bob@example.com', { externalListMembers: lists }))?.subHandling, 'allow');
    assert.equal(evalDoc(body, req('sip:carol@example.com', { externalListMembers: lists })), undefined);
    assert.equal(evalDoc(body, req('sip:bob@example.com')), undefined, 'unresolvable list');
    // external-list counts as an identity for other-identity
    const withRest = body + rule('rest', '<ocp:other-identity/>', 'block');
    assert.deepEqual(evalDoc(withRest, req('sip:bob@example.com', { externalListMembers: lists }))?.matchedRuleIds, [
      'x',
    ]);

    const sphere = rule('s', '<cp:sphere value="work meeting"/>', 'allow');
    assert.equal(evalDoc(sphere, req('sip:a@b.c', { sphere: 'Work' }))?.subHandling, 'allow');
    assert.equal(evalDoc(sphere, req('sip:a@b.c', { sphere: 'home' })), undefined);
    assert.equal(evalDoc(sphere, req('sip:a@b.c')), undefined);

    assert.equal(
      evalDoc(rule('u', '<x:moon-phase xmlns:x="urn:x" value="full"/>', 'allow'), req('sip:a@b.c')),
      undefined,
    );
  });

  it('transformations: union of the permissions of all applying rules', () => {
    const body =
      rule(
        'one',
        one('sip:alice@example.com'),
        'allow',
        '<pr:provide-services><pr:service-uri-scheme>SIP</pr:service-uri-scheme><pr:service-uri>im:alice@example.com</pr:service-uri></pr:provide-services>' +
          '<pr:provide-persons><pr:class>work</pr:class></pr:provide-persons>' +
          '<pr:provide-user-input>thresholds</pr:provide-user-input><pr:provide-activities>false</pr:provide-activities>' +
          '<pr:provide-unknown-attribute ns="urn:x" name="foo">true</pr:provide-unknown-attribute>',
      ) +
      rule(
        'two',
        '<cp:identity><cp:many domain="example.com"/></cp:identity>',
        'confirm',
        '<pr:provide-services><pr:occurrence-id>t1</pr:occurrence-id><pr:service-uri-scheme>sip</pr:service-uri-scheme></pr:provide-services>' +
          '<pr:provide-devices><pr:all-devices/></pr:provide-devices>' +
          '<pr:provide-user-input>bare</pr:provide-user-input><pr:provide-activities>true</pr:provide-activities><pr:provide-note>1</pr:provide-note>' +
          '<pr:provide-unknown-attribute ns="urn:x" name="bar">false</pr:provide-unknown-attribute><pr:provide-all-attributes/>',
      ) +
      rule('three', one('sip:zed@example.org'), 'allow', '<pr:provide-mood>true</pr:provide-mood>');
    const d = evalDoc(body, req('sip:alice@example.com'));
    assert.ok(d);
    assert.equal(d.subHandling, 'allow');
    assert.deepEqual(d.matchedRuleIds, ['one', 'two']);
    const t = d.transformations;
    assert.deepEqual(t.services, {
      all: false,
      serviceUris: ['im:alice@example.com'],
      serviceUriSchemes: ['sip'],
      occurrenceIds: ['t1'],
      classes: [],
    });
    assert.deepEqual(t.persons, { all: false, occurrenceIds: [], classes: ['work'] });
    assert.deepEqual(t.devices, { all: true, deviceIds: [], occurrenceIds: [], classes: [] });
    assert.equal(t.userInput, 'thresholds');
    assert.equal(t.activities, true);
    assert.equal(t.note, true);
    assert.equal(t.mood, false, 'rule three did not apply');
    assert.equal(t.allAttributes, true);
    assert.deepEqual(t.unknownAttributes, [{ ns: 'urn:x', name: 'foo' }]);
  });
});

// ---------------------------------------------------------------------------
// pidf-manipulation
// ---------------------------------------------------------------------------

// A document in the manner of the RFC 4827 example: a tuple plus a person with RPID activities.
const RFC4827_PIDF = `<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf"
    xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model"
    xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid"
    entity="sip:someone@example.com">
  <tuple id="a8098a.672364762364">
    <status><basic>open</basic></status>
    <dm:deviceID>urn:uuid:d27459b7-8213-4395-aa77-ed859a3e5b3a</dm:deviceID>
    <contact priority="0.8">sip:someone@pc.example.com</contact>
    <note xml:lang="en">Hi there</note>
    <timestamp>2025-06-15T12:00:00Z</timestamp>
  </tuple>
  <note>Away for the summer</note>
  <dm:person id="p1">
    <rpid:activities><rpid:vacation/></rpid:activities>
    <dm:note>Vacation!</dm:note>
    <dm:timestamp>2025-06-15T12:00:00.000+02:00</dm:timestamp>
  </dm:person>
  <dm:device id="pc">
    <dm:deviceID>urn:uuid:d27459b7-8213-4395-aa77-ed859a3e5b3a</dm:deviceID>
  </dm:device>
</presence>`;

const PIDF_HEAD =
  '<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" entity="sip:someone@example.com">';
const pidf = (body: string): string => `${PIDF_HEAD}${body}</presence>`;

describe('pidf-manipulation', () => {
  it('accepts the RFC 4827-style example, and an empty presence', () => {
    assertValid(pidfManipulationUsage, RFC4827_PIDF);
    assertValid(pidfManipulationUsage, pidf(''));
    assert.equal(pidfManipulationUsage.mimeType, 'application/pidf+xml');
    assert.ok(pidfManipulationUsage.documentNames?.test('index'));
    assert.ok(!pidfManipulationUsage.documentNames?.test('other'));
  });

  it('schema rules', () => {
    assertSchema(pidfManipulationUsage, '<presence xmlns="urn:ietf:params:xml:ns:pidf"/>', '<presence>', '"entity"');
    assertSchema(pidfManipulationUsage, pidf('<tuple id="t1"/>'), '<tuple>', 'missing required element <status>');
    assertSchema(pidfManipulationUsage, pidf('<tuple><status/></tuple>'), '<tuple>', '"id"');
    assertSchema(
      pidfManipulationUsage,
      pidf('<tuple id="t1"><status><basic>busy</basic></status></tuple>'),
      '<basic>',
      'open, closed',
    );
    assertSchema(
      pidfManipulationUsage,
      pidf('<note>n</note><tuple id="t1"><status/></tuple>'),
      '<tuple> is not allowed',
    );
    assertSchema(
      pidfManipulationUsage,
      pidf('<tuple id="t1"><status/><contact priority="2">sip:a@b.c</contact></tuple>'),
      '<contact>',
      'q-value',
    );
    assertSchema(
      pidfManipulationUsage,
      pidf('<tuple id="t1"><status/><timestamp>now</timestamp></tuple>'),
      '<timestamp>',
      'xs:dateTime',
    );
    assertSchema(
      pidfManipulationUsage,
      pidf('<dm:device id="d"/>'),
      '<dm:device>',
      'missing required element <deviceID>',
    );
    assertSchema(pidfManipulationUsage, pidf('<dm:person/>'), '<dm:person>', '"id"');
    assertSchema(
      pidfManipulationUsage,
      pidf('<dm:deviceID>urn:x</dm:deviceID>'),
      '<dm:deviceID>',
      'only dm:person and dm:device',
    );
  });

  it('ids of tuples, persons and devices are unique together', () => {
    const [p] = uniquenessProblems(pidfManipulationUsage, pidf('<tuple id="x"><status/></tuple><dm:person id="x"/>'));
    assert.deepEqual(p, { kind: 'uniqueness', field: 'presence/*/@id', value: 'x', altValues: ['x1', 'x2', 'x3'] });
  });

  it('entity and contact must be URIs', () => {
    assertConstraint(
      pidfManipulationUsage,
      '<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="someone"/>',
      'presence entity "someone"',
    );
    assertConstraint(
      pidfManipulationUsage,
      pidf('<tuple id="t"><status/><contact>pc 1</contact></tuple>'),
      'tuple contact',
    );
  });
});

// ---------------------------------------------------------------------------
// OMA groups
// ---------------------------------------------------------------------------

const GROUP_DOC = `<?xml version="1.0" encoding="UTF-8"?>
<group xmlns="urn:oma:xml:poc:list-service"
       xmlns:rl="urn:ietf:params:xml:ns:resource-lists"
       xmlns:cr="urn:ietf:params:xml:ns:common-policy"
       xmlns:ocr="urn:oma:xml:xdm:common-policy">
  <list-service uri="sip:friends-chat@example.com">
    <display-name xml:lang="en">Friends</display-name>
    <list>
      <entry uri="sip:alice@example.com"><display-name>Alice</display-name></entry>
      <rl:entry uri="sip:bob@example.com"><rl:display-name>Bob</rl:display-name></rl:entry>
      <entry-ref ref="resource-lists/users/sip:joe@example.com/index/~~/resource-lists/list%5b@name=%22a%22%5d/entry%5b1%5d"/>
    </list>
    <invite-members>true</invite-members>
    <max-participant-count>10</max-participant-count>
    <cr:ruleset>
      <cr:rule id="allow-members">
        <cr:conditions><ocr:other-identity/></cr:conditions>
        <cr:actions><x:allow-conference-state xmlns:x="urn:oma:xml:poc:poc-policy">true</x:allow-conference-state></cr:actions>
      </cr:rule>
    </cr:ruleset>
  </list-service>
  <list-service uri="sip:work-chat@example.com"/>
</group>`;

const G_HEAD = '<group xmlns="urn:oma:xml:poc:list-service" xmlns:rl="urn:ietf:params:xml:ns:resource-lists">';
const group = (body: string): string => `${G_HEAD}${body}</group>`;

describe('groups (OMA)', () => {
  it('accepts a group document', () => {
    assertValid(groupsUsage, GROUP_DOC);
    assert.equal(groupsUsage.auid, 'org.openmobilealliance.groups');
    assert.equal(groupsUsage.mimeType, 'application/vnd.oma.poc.groups+xml');
  });

  it('schema rules', () => {
    assertSchema(groupsUsage, group('<list-service/>'), '<list-service>', '"uri"');
    assertSchema(
      groupsUsage,
      group('<list-service uri="sip:g@example.com"><max-participant-count>0</max-participant-count></list-service>'),
      '<max-participant-count>',
      'positive integer',
    );
    assertSchema(
      groupsUsage,
      group('<list-service uri="sip:g@example.com"><invite-members>maybe</invite-members></list-service>'),
      '<invite-members>',
      'boolean',
    );
    assertSchema(
      groupsUsage,
      group('<list-service uri="sip:g@example.com"><list><rl:list/></list></list-service>'),
      '<rl:list> is not allowed',
    );
    assertSchema(
      groupsUsage,
      group('<list-service uri="sip:g@example.com"><invite-members>true</invite-members><list/></list-service>'),
      '<list> is not allowed',
    );
    assertSchema(
      groupsUsage,
      group('<list-service uri="sip:g@example.com"><list><entry/></list></list-service>'),
      '<entry>',
      '"uri"',
    );
  });

  it('group URIs are unique, with alternatives; members unique per list', () => {
    const [p] = uniquenessProblems(
      groupsUsage,
      group('<list-service uri="sip:team@example.com"/><list-service uri="sip:team@example.com"/>'),
    );
    assert.deepEqual(p, {
      kind: 'uniqueness',
      field: 'group/list-service/@uri',
      value: 'sip:team@example.com',
      altValues: ['sip:team1@example.com', 'sip:team2@example.com', 'sip:team3@example.com'],
    });
    const [m] = uniquenessProblems(
      groupsUsage,
      group(
        '<list-service uri="sip:g@example.com"><list><entry uri="sip:a@example.com"/><rl:entry uri="sip:a@example.com"/></list></list-service>',
      ),
    );
    assert.equal(m?.field, 'group/list-service[@uri="sip:g@example.com"]/list/entry/@uri');
    assert.equal(m?.value, 'sip:a@example.com');
  });

  it('constraints: group URI is a SIP URI; a group cannot contain a group of the document', () => {
    assertConstraint(groupsUsage, group('<list-service uri="tel:+12015550123"/>'), 'group uri', 'sip: or sips:');
    assertConstraint(
      groupsUsage,
      group(
        '<list-service uri="sip:a@example.com"><list><entry uri="sip:b@example.com"/></list></list-service><list-service uri="sip:b@example.com"/>',
      ),
      'group member "sip:b@example.com" is a group',
    );
  });

  it('exposes group URIs (unique keys) and member URIs for the cross-document checks', () => {
    const doc = parseXml(GROUP_DOC);
    assert.deepEqual(groupUris(doc), ['sip:friends-chat@example.com', 'sip:work-chat@example.com']);
    assert.deepEqual(groupsUsage.uniqueKeys?.(doc), [
      { field: 'uri', value: 'sip:friends-chat@example.com' },
      { field: 'uri', value: 'sip:work-chat@example.com' },
    ]);
    assert.deepEqual(groupsUsage.uniqueKeySelectors, { uri: 'group/list-service/@uri' });
    assert.deepEqual(groupMemberUris(doc), ['sip:alice@example.com', 'sip:bob@example.com']);
  });
});

// ---------------------------------------------------------------------------
// im-policy
// ---------------------------------------------------------------------------

const IMP_HEAD = '<im-policy xmlns="urn:ims-as:xml:im-policy"';
const IM_POLICY_DOC = `<?xml version="1.0" encoding="UTF-8"?>
${IMP_HEAD} mode="allow-only" blocked-action="discard">
  <blocked>
    <entry uri="sip:spammer@example.com"/>
    <domain>spam.example</domain>
  </blocked>
  <allowed>
    <entry uri="sip:alice@example.com"/>
    <entry uri="tel:+1-201-555-0123"/>
    <domain>friends.example</domain>
  </allowed>
  <deferred-delivery enabled="true" network-storage="true"/>
  <history enabled="1" max-messages="500"/>
</im-policy>`;

describe('im-policy', () => {
  it('accepts a full document and the default document', () => {
    assertValid(imPolicyUsage, IM_POLICY_DOC);
    assertValid(imPolicyUsage, `${IMP_HEAD}/>`);
    const dflt = imPolicyUsage.defaultDocument?.('sip:joe@example.com');
    assert.ok(dflt);
    assertValid(imPolicyUsage, dflt);
    assert.equal(dflt, defaultImPolicyDocument());
    assert.equal(imPolicyUsage.auid, 'org.ims-as.im-policy');
    assert.equal(imPolicyUsage.mimeType, 'application/vnd.ims-as.im-policy+xml');
  });

  it('schema rules', () => {
    assertSchema(imPolicyUsage, `${IMP_HEAD} mode="strict"/>`, '<im-policy>', '"mode"', 'block-list, allow-only');
    assertSchema(imPolicyUsage, `${IMP_HEAD} blocked-action="bounce"/>`, '"blocked-action"', 'reject, discard');
    assertSchema(imPolicyUsage, `${IMP_HEAD}><history max-messages="0"/></im-policy>`, '<history>', '"max-messages"');
    assertSchema(
      imPolicyUsage,
      `${IMP_HEAD}><history max-messages="100001"/></im-policy>`,
      '<history>',
      '"max-messages"',
    );
    assertSchema(
      imPolicyUsage,
      `${IMP_HEAD}><deferred-delivery enabled="yes"/></im-policy>`,
      '<deferred-delivery>',
      '"enabled"',
      'boolean',
    );
    assertSchema(imPolicyUsage, `${IMP_HEAD}><allowed/><blocked/></im-policy>`, '<blocked> is not allowed');
    assertSchema(
      imPolicyUsage,
      `${IMP_HEAD}><blocked><domain>not a domain</domain></blocked></im-policy>`,
      '<domain>',
      'domain name',
    );
    assertSchema(imPolicyUsage, `${IMP_HEAD}><blocked><entry/></blocked></im-policy>`, '<entry>', '"uri"');
  });

  it('entries: SIP or tel URIs, unique per set', () => {
    assertConstraint(
      imPolicyUsage,
      `${IMP_HEAD}><blocked><entry uri="mailto:x@example.com"/></blocked></im-policy>`,
      'blocked entry uri',
    );
    const [p] = uniquenessProblems(
      imPolicyUsage,
      `${IMP_HEAD}><blocked><entry uri="sip:x@example.com"/><entry uri="sip:x@EXAMPLE.com"/></blocked></im-policy>`,
    );
    assert.equal(p?.field, 'im-policy/blocked/entry/@uri');
  });

  it('reads the settings and decides per sender', () => {
    const p = readImPolicy(parseXml(IM_POLICY_DOC));
    assert.equal(p.mode, 'allow-only');
    assert.equal(p.blockedAction, 'discard');
    assert.deepEqual(p.deferredDelivery, { enabled: true, networkStorage: true });
    assert.deepEqual(p.history, { enabled: true, maxMessages: 500, conversations: [] });
    assert.equal(imPolicyVerdict(p, 'sip:alice@example.com'), 'accept');
    assert.equal(imPolicyVerdict(p, '<sips:alice@EXAMPLE.com>'), 'accept');
    assert.equal(imPolicyVerdict(p, 'tel:+12015550123'), 'accept');
    assert.equal(imPolicyVerdict(p, 'sip:carol@friends.example'), 'accept');
    assert.equal(imPolicyVerdict(p, 'sip:carol@example.com'), 'discard');
    assert.equal(imPolicyVerdict(p, 'sip:spammer@example.com'), 'discard');

    const blockList = readImPolicy(
      parseXml(
        `${IMP_HEAD}><blocked><entry uri="sip:x@example.com"/><domain>Spam.Example</domain></blocked><allowed><domain>spam.example</domain></allowed></im-policy>`,
      ),
    );
    assert.equal(blockList.mode, 'block-list');
    assert.equal(blockList.blockedAction, 'reject');
    assert.equal(imPolicyVerdict(blockList, 'sip:x@example.com'), 'reject');
    assert.equal(imPolicyVerdict(blockList, 'sip:anyone@spam.example'), 'reject', 'blocked wins over allowed');
    assert.equal(imPolicyVerdict(blockList, 'sip:y@example.com'), 'accept');

    const d = readImPolicy(undefined);
    assert.deepEqual(d, readImPolicy(parseXml(defaultImPolicyDocument())));
    assert.equal(imPolicyVerdict(d, 'sip:y@example.com'), 'accept');
  });

  it('keeps single conversations in the history when the whole history is off', () => {
    const doc = `${IMP_HEAD}><history><conversation uri="sip:bob@EXAMPLE.com"/><conversation uri="tel:+15551234"/></history></im-policy>`;
    assertValid(imPolicyUsage, doc);
    const p = readImPolicy(parseXml(doc));
    assert.equal(p.history.enabled, false);
    assert.equal(
      keepsHistoryWith(p, '<sip:bob@example.com>'),
      true,
      'compared as an address of record (host case aside)',
    );
    assert.equal(keepsHistoryWith(p, 'tel:+15551234'), true);
    assert.equal(keepsHistoryWith(p, 'sip:carol@example.com'), false);
    assert.equal(
      keepsHistoryWith(
        readImPolicy(parseXml(`${IMP_HEAD}><history enabled="true"/></im-policy>`)),
        'sip:carol@example.com',
      ),
      true,
    );
    assert.equal(keepsHistoryWith(readImPolicy(undefined), 'sip:bob@example.com'), false);
    assertSchema(
      imPolicyUsage,
      `${IMP_HEAD}><history><conversation/></history></im-policy>`,
      '<conversation>',
      '"uri"',
    );
    assertSchema(
      imPolicyUsage,
      `${IMP_HEAD}><history><entry uri="sip:b@example.com"/></history></im-policy>`,
      '<entry> is not allowed',
    );
    assertConstraint(
      imPolicyUsage,
      `${IMP_HEAD}><history><conversation uri="mailto:b@example.com"/></history></im-policy>`,
      'history conversation uri',
    );
    const [dup] = uniquenessProblems(
      imPolicyUsage,
      `${IMP_HEAD}><history><conversation uri="sip:b@example.com"/><conversation uri="sip:b@EXAMPLE.com"/></history></im-policy>`,
    );
    assert.equal(dup?.field, 'im-policy/history/conversation/@uri');
  });

  it('presence-aware delivery and the IM activity: off and on by default, read and validated', () => {
    const d = readImPolicy(undefined);
    assert.deepEqual(d.presenceAwareDelivery.holdWhen, [], 'without the setting messages are never held');
    assert.equal(d.publishImActivity, true);

    const both = `${IMP_HEAD}><deferred-delivery/><presence-aware-delivery hold-when=" busy  closed busy "/><publish-im-activity enabled="false"/></im-policy>`;
    assertValid(imPolicyUsage, both);
    const p = readImPolicy(parseXml(both));
    assert.deepEqual(p.presenceAwareDelivery.holdWhen, ['closed', 'busy'], 'a list, whitespace collapsed, each once');
    assert.equal(p.publishImActivity, false);

    const bare = `${IMP_HEAD}><presence-aware-delivery/></im-policy>`;
    assertValid(imPolicyUsage, bare);
    assert.deepEqual(
      readImPolicy(parseXml(bare)).presenceAwareDelivery.holdWhen,
      ['closed', 'busy'],
      'hold-when defaults to both',
    );
    assert.deepEqual(
      readImPolicy(parseXml(`${IMP_HEAD}><presence-aware-delivery hold-when="closed"/></im-policy>`))
        .presenceAwareDelivery.holdWhen,
      ['closed'],
    );
    assert.deepEqual(
      readImPolicy(parseXml(`${IMP_HEAD}><presence-aware-delivery hold-when=""/></im-policy>`)).presenceAwareDelivery
        .holdWhen,
      [],
      'an empty list holds nothing',
    );

    assertSchema(
      imPolicyUsage,
      `${IMP_HEAD}><presence-aware-delivery hold-when="closed away"/></im-policy>`,
      '<presence-aware-delivery>',
      '"hold-when"',
      'closed, busy',
    );
    assertSchema(
      imPolicyUsage,
      `${IMP_HEAD}><publish-im-activity enabled="no"/></im-policy>`,
      '<publish-im-activity>',
      '"enabled"',
      'boolean',
    );
    assertSchema(
      imPolicyUsage,
      `${IMP_HEAD}><presence-aware-delivery><entry uri="sip:b@example.com"/></presence-aware-delivery></im-policy>`,
      '<presence-aware-delivery>',
    );
    assertSchema(
      imPolicyUsage,
      `${IMP_HEAD}><presence-aware-delivery/><history/></im-policy>`,
      '<history> is not allowed',
    );
  });

  it('file transfer: any file by default; enabled, accept-types and max-size read and validated', () => {
    assert.deepEqual(readImPolicy(undefined).fileTransfer, { enabled: true, acceptTypes: [] });
    const doc = `${IMP_HEAD}><publish-im-activity/><file-transfer accept-types=" image/*  application/pdf " max-size="5000000"/></im-policy>`;
    assertValid(imPolicyUsage, doc);
    assert.deepEqual(readImPolicy(parseXml(doc)).fileTransfer, {
      enabled: true,
      acceptTypes: ['image/*', 'application/pdf'],
      maxSize: 5000000,
    });
    assert.equal(
      readImPolicy(parseXml(`${IMP_HEAD}><file-transfer enabled="false"/></im-policy>`)).fileTransfer.enabled,
      false,
    );
    assertSchema(imPolicyUsage, `${IMP_HEAD}><file-transfer accept-types="image"/></im-policy>`, '"accept-types"');
    assertSchema(imPolicyUsage, `${IMP_HEAD}><file-transfer max-size="0"/></im-policy>`, '"max-size"');
    assertSchema(imPolicyUsage, `${IMP_HEAD}><file-transfer enabled="no"/></im-policy>`, '"enabled"');
    assertSchema(
      imPolicyUsage,
      `${IMP_HEAD}><file-transfer/><publish-im-activity/></im-policy>`,
      '<publish-im-activity> is not allowed',
    );

    assert.equal(acceptsFileType([], undefined), true, 'no list: anything');
    assert.equal(acceptsFileType(['image/*'], 'IMAGE/JPEG'), true);
    assert.equal(acceptsFileType(['image/*'], 'application/pdf'), false);
    assert.equal(acceptsFileType(['application/pdf'], 'application/pdf;x=1'), true);
    assert.equal(acceptsFileType(['image/*'], undefined), false, 'an offer naming no type matches no type');
    assert.equal(acceptsFileType(['*'], undefined), true);
  });
});

// ---------------------------------------------------------------------------
// xcap-caps, xcap-directory, registry
// ---------------------------------------------------------------------------

function texts(doc: ReturnType<typeof parseXml>, container: string): string[] {
  const scope = NamespaceScope.root().child(doc.root);
  const [c] = findChildren(doc.root, scope, xmlNamespaces.xcapCaps, container);
  return c ? childElements(c).map(textContent) : [];
}

describe('xcap-caps', () => {
  it('lists every AUID and namespace, validates against its own usage', () => {
    const xml = xcapCapsDocument(allUsages());
    const doc = parseXml(xml);
    assert.deepEqual(xcapCapsUsage.validate(doc, CTX), []);
    const auids = texts(doc, 'auids');
    assert.deepEqual(
      auids,
      allUsages().map((u) => u.auid),
    );
    assert.equal(auids.filter((a) => a === 'xcap-caps').length, 1);
    const namespaces = texts(doc, 'namespaces');
    for (const ns of [
      xmlNamespaces.xcapCaps,
      xmlNamespaces.resourceLists,
      xmlNamespaces.rlsServices,
      xmlNamespaces.presRules,
      xmlNamespaces.commonPolicy,
      xmlNamespaces.omaPresRules,
      xmlNamespaces.pidf,
      xmlNamespaces.dataModel,
      xmlNamespaces.omaGroups,
      xmlNamespaces.omaXcapDirectory,
      'urn:ims-as:xml:im-policy',
    ]) {
      assert.ok(namespaces.includes(ns), ns);
    }
    assert.equal(new Set(namespaces).size, namespaces.length);
    assert.deepEqual(texts(doc, 'extensions'), []);
    // present though empty: clients validate with schemas that require it
    assert.match(xml, /<extensions\s*\/>/);
    assert.deepEqual(texts(parseXml(xcapCapsDocument([], ['x-ext'])), 'extensions'), ['x-ext']);
    assert.deepEqual(texts(parseXml(xcapCapsDocument([])), 'auids'), ['xcap-caps']);
  });

  it('is a read-only global document', () => {
    assert.equal(xcapCapsUsage.readOnly, true);
    assert.deepEqual(xcapCapsUsage.globalDocuments, ['index']);
    assert.ok(!xcapCapsUsage.documentNames?.test('index'));
    assert.equal(xcapCapsUsage.mimeType, 'application/xcap-caps+xml');
  });
});

describe('xcap-directory', () => {
  it('lists the documents per AUID with uri, etag, last-modified and size', () => {
    const xml = xcapDirectoryDocument(
      'sip:alice@example.com',
      [
        {
          auid: 'resource-lists',
          documentPath: 'index',
          etag: '"abc"',
          lastModified: new Date('2025-06-15T12:00:00Z'),
          size: 512,
        },
        {
          auid: 'pres-rules',
          documentPath: 'index',
          etag: 'def',
          lastModified: new Date('2025-06-14T08:30:00.250Z'),
          size: 1024,
        },
        {
          auid: 'resource-lists',
          documentPath: 'my lists',
          etag: 'W/"w1"',
          lastModified: new Date('2025-01-01T00:00:00Z'),
          size: 0,
        },
      ],
      'http://xcap.example.com/xcap-root/',
      ['org.openmobilealliance.groups'],
    );
    const doc = parseXml(xml);
    assert.deepEqual(xcapDirectoryUsage.validate(doc, CTX), []);
    const scope = NamespaceScope.root().child(doc.root);
    const folders = findChildren(doc.root, scope, xmlNamespaces.omaXcapDirectory, 'folder');
    assert.deepEqual(
      folders.map((f) => f.attributes?.['auid']),
      ['org.openmobilealliance.groups', 'pres-rules', 'resource-lists'],
    );
    assert.equal(childElements(folders[0]!).length, 0);
    assert.deepEqual(
      childElements(folders[1]!).map((e) => e.attributes),
      [
        {
          uri: 'http://xcap.example.com/xcap-root/pres-rules/users/sip:alice@example.com/index',
          etag: 'def',
          'last-modified': '2025-06-14T08:30:00.250Z',
          size: '1024',
        },
      ],
    );
    assert.deepEqual(
      childElements(folders[2]!).map((e) => [e.attributes?.['uri'], e.attributes?.['etag']]),
      [
        ['http://xcap.example.com/xcap-root/resource-lists/users/sip:alice@example.com/index', 'abc'],
        ['http://xcap.example.com/xcap-root/resource-lists/users/sip:alice@example.com/my%20lists', 'w1'],
      ],
    );
    assert.ok(parseXsDateTime(childElements(folders[2]!)[0]!.attributes?.['last-modified'] ?? ''));
  });

  it('usage properties', () => {
    assert.equal(xcapDirectoryUsage.auid, 'org.openmobilealliance.xcap-directory');
    assert.equal(xcapDirectoryUsage.readOnly, true);
    assert.ok(xcapDirectoryUsage.documentNames?.test('directory.xml'));
    assert.ok(!xcapDirectoryUsage.documentNames?.test('index'));
    const empty = parseXml(xcapDirectoryDocument('sip:a@example.com', [], 'https://x.example.com'));
    assert.deepEqual(childElements(empty.root), []);
    assert.deepEqual(xcapDirectoryUsage.validate(empty, CTX), []);
  });
});

describe('usage registry and helpers', () => {
  it('allUsages / usageByAuid', () => {
    const auids = allUsages().map((u) => u.auid);
    assert.deepEqual(auids, [
      'xcap-caps',
      'resource-lists',
      'rls-services',
      'pres-rules',
      'pidf-manipulation',
      'org.openmobilealliance.groups',
      'org.ims-as.im-policy',
      'org.openmobilealliance.xcap-directory',
    ]);
    for (const u of allUsages()) assert.equal(usageByAuid(u.auid), u);
    assert.equal(usageByAuid('nope'), undefined);
    allUsages().pop();
    assert.equal(allUsages().length, 8);
  });

  it('proposeAltValues and normalizeUri', () => {
    assert.deepEqual(
      proposeAltValues('sip:friends@example.com', (v) => v === 'sip:friends2@example.com', 2),
      ['sip:friends1@example.com', 'sip:friends3@example.com'],
    );
    assert.deepEqual(
      proposeAltValues('rule7', () => false, 2),
      ['rule8', 'rule9'],
    );
    assert.deepEqual(
      proposeAltValues('x', () => false, 1),
      ['x1'],
    );
    assert.equal(normalizeUri(' sip:Bob@Example.COM;transport=tcp '), 'sip:Bob@example.com');
    assert.equal(normalizeUri('sips:bob@example.com'), 'sips:bob@example.com');
    assert.equal(normalizeUri('tel:+1-201-555-0123'), 'tel:+12015550123');
    assert.equal(normalizeUri('mailto:x@y'), 'mailto:x@y');
  });
});
