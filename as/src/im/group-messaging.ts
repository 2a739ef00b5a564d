import type { XdmDocuments } from '../xdm/document-store.js';
import { groupsUsage, membersOfGroup } from '../xdm/usages/groups.js';
import { normalizeUri } from '../xml/uri-check.js';
import { parseXml } from '../xml/xml-tree.js';

/** A group of the XDMS groups usage, as the controlling function needs it. */
export interface ResolvedGroup {
  uri: string;
  /** Its owner (the XUI of the document defining it). */
  owner: string;
  /** Member URIs, normalised, in document order. */
  members: string[];
}

/**
 * Group URIs of the XDMS (OMA groups usage) for the IM controlling function. Group URIs are
 * unique across users (the XCAP server claims them), so the claim says which document
 * defines a group.
 */
export class GroupDirectory {
  constructor(private readonly docs: XdmDocuments) {}

  /** The group named by `uri` (canonical sip:user@domain), or undefined. */
  async resolve(uri: string): Promise<ResolvedGroup | undefined> {
    const key = normalizeUri(uri);
    const doc = await this.docs.holderOf(groupsUsage.auid, 'uri', key);
    if (!doc) return undefined;
    let members: string[] | undefined;
    try {
      members = membersOfGroup(parseXml(doc.body), key);
    } catch {
      members = undefined;
    }
    return members ? { uri: key, owner: doc.xui, members } : undefined;
  }

  /** Whether `uri` names a group (a member that does is a nested group, which OMA forbids). */
  async isGroup(uri: string): Promise<boolean> {
    return (await this.docs.holderOf(groupsUsage.auid, 'uri', normalizeUri(uri))) !== null;
  }
}
