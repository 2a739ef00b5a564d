/**
 * Example documents of the RFCs, shared by the tests that use them as fixtures (kept
 * verbatim in content; whitespace as the tests expect).
 */

/** RFC 4826 section 3.3: a resource-lists document. */
export const RFC4826_RESOURCE_LISTS = `<?xml version="1.0" encoding="UTF-8"?>
<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists"
 xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <list name="friends">
   <entry uri="sip:bill@example.com">
    <display-name>Bill Doe</display-name>
   </entry>
   <entry-ref ref="resource-lists/users/sip:bill@example.com/index/~~/resource-lists/list%5b@name=%22list1%22%5d/entry%5b@uri=%22sip:petri@example.com%22%5d"/>
   <list name="close-friends">
    <display-name>Close Friends</display-name>
    <entry uri="sip:joe@example.com">
     <display-name>Joe Smith</display-name>
    </entry>
    <entry uri="sip:nancy@example.com">
     <display-name>Nancy Gross</display-name>
    </entry>
    <external anchor="http://xcap.example.org/resource-lists/users/sip:a@example.org/index/~~/resource-lists/list%5b@name=%22mkting%22%5d">
      <display-name>Marketing</display-name>
    </external>
   </list>
  </list>
</resource-lists>
`;

/** The "close-friends" list of the RFC 4826 section 3.3 example, on its own. */
export const RFC4826_CLOSE_FRIENDS = `<?xml version="1.0" encoding="UTF-8"?>
<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists"
 xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <list name="close-friends">
   <entry uri="sip:joe@example.com">
    <display-name>Joe Smith</display-name>
   </entry>
   <entry uri="sip:nancy@example.com">
    <display-name>Nancy Gross</display-name>
   </entry>
   <external anchor="http://xcap.example.org/resource-lists/users/sip:a@example.org/index/~~/resource-lists/list%5b@name=%22mkting%22%5d">
     <display-name>Marketing</display-name>
    </external>
  </list>
</resource-lists>
`;

/** RFC 5025 section 5: a pres-rules document. */
export const RFC5025_PRES_RULES = `<?xml version="1.0" encoding="UTF-8"?>
<cr:ruleset xmlns="urn:ietf:params:xml:ns:pres-rules"
 xmlns:pr="urn:ietf:params:xml:ns:pres-rules"
 xmlns:cr="urn:ietf:params:xml:ns:common-policy">
 <cr:rule id="a">
  <cr:conditions>
   <cr:identity>
    <cr:one id="sip:user@example.com"/>
   </cr:identity>
  </cr:conditions>
  <cr:actions>
   <pr:sub-handling>allow</pr:sub-handling>
  </cr:actions>
  <cr:transformations>
   <pr:provide-services>
    <pr:service-uri-scheme>sip</pr:service-uri-scheme>
    <pr:service-uri-scheme>mailto</pr:service-uri-scheme>
   </pr:provide-services>
   <pr:provide-persons>
    <pr:all-persons/>
   </pr:provide-persons>
   <pr:provide-activities>true</pr:provide-activities>
   <pr:provide-user-input>bare</pr:provide-user-input>
   <pr:provide-unknown-attribute ns="urn:vendor-specific:foo-namespace" name="foo">true</pr:provide-unknown-attribute>
  </cr:transformations>
 </cr:rule>
</cr:ruleset>`;

/** RFC 4826 section 4.3: an rls-services document. */
export const RFC4826_RLS_SERVICES = `<?xml version="1.0" encoding="UTF-8"?>
<rls-services xmlns="urn:ietf:params:xml:ns:rls-services"
   xmlns:rl="urn:ietf:params:xml:ns:resource-lists"
   xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
   <service uri="sip:mybuddies@example.com">
    <resource-list>http://xcap.example.com/resource-lists/users/sip:joe@example.com/index/~~/resource-lists/list%5b@name=%22l1%22%5d</resource-list>
    <packages>
     <package>presence</package>
    </packages>
   </service>
   <service uri="sip:marketing@example.com">
     <list name="marketing">
       <rl:entry uri="sip:joe@example.com"/>
       <rl:entry uri="sip:sudhir@example.com"/>
     </list>
     <packages>
       <package>presence</package>
     </packages>
   </service>
</rls-services>
`;
