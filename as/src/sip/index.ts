/**
 * Pure SIP protocol core: message parsing, URIs, name-addr values and serialisers.
 * No I/O, no dependencies beyond Node built-ins (Buffer, crypto for identifiers).
 */
export { SipParseError, UriParseError, parseUri, formatUri, aor, isSameAor, percentDecode, escapeUser } from './uri.js';
export type { SipUri, SipUriInit, UriScheme } from './uri.js';

export {
  NameAddr,
  parseNameAddr,
  formatNameAddr,
  parseParams,
  formatParams,
  parseValueParams,
  headerValueOnly,
  quote,
  unquote,
  isToken,
} from './name-addr.js';
export type { NameAddrInit, ParamsInit } from './name-addr.js';

export {
  SipHeaders,
  SipRequest,
  SipResponse,
  parseSipMessage,
  splitHeaderList,
  headerKey,
  canonicalHeaderName,
  isListHeader,
  utf8ByteLength,
} from './message.js';
export type { SipMessage, CSeq, SipRequestInit, SipResponseInit } from './message.js';

export {
  buildRequest,
  buildResponse,
  replyHeaders,
  reasonPhrase,
  generateTag,
  generateBranch,
  generateCallId,
} from './build.js';
export type { BuildRequestInit, BuildResponseInit, HeaderList, ReplyHeadersOptions } from './build.js';
