import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';

/**
 * One typed configuration for the AS. Sources, later ones winning:
 *   built-in defaults < JSON file (AS_CONFIG or --config) < environment variables.
 * Every setting has one dotted name (used in the file and in error messages) and one
 * environment variable. `loadConfig` validates everything and reports every bad setting
 * at once, naming both, so an operator fixes the whole file in one go.
 */
export interface AsConfig {
  sip: {
    /** The SIP domain we serve; users are sip:user@domain. */
    domain: string;
    /** Other host parts accepted as the same domain (e.g. 127.0.0.1). */
    domainAliases: string[];
  };
  isc: {
    host: string;
    port: number;
    /** Shared secret with Kamailio (HTTP basic password one way, X-ISC-Secret the other). */
    secret: string;
    /** Source addresses allowed to call the ISC endpoint (Kamailio's). */
    trustedAddresses: string[];
  };
  kamailio: {
    /** Base URL of Kamailio's HTTP listener (jsonrpcs at /RPC, AS-originated requests at /uac). */
    httpUrl: string;
    /** host:port of Kamailio's evapi event stream; empty: events come over HTTP only. */
    evapiAddress: string;
    /** Connections the AS opens to the evapi stream (each carries up to 32 KB of unconfirmed requests). */
    evapiLinks: number;
    /** Kamailio's own SIP address: next hop for requests the AS originates to an AoR. */
    sipUri: string;
    /** tm fr_timer of the Kamailio config, in ms: no outcome by then + margin means timeout. */
    transactionTimeoutMs: number;
  };
  xdm: {
    host: string;
    port: number;
    /** Path of the XCAP root, e.g. /xcap-root. */
    rootPath: string;
    /** The XCAP root as clients reach it; empty: http(s)://host:port/rootPath (https with TLS). */
    publicRoot: string;
    maxDocumentBytes: number;
    maxDepth: number;
    /** Authenticating proxies allowed to assert the user's identity in a header. */
    trustedProxies: string[];
    assertedIdentityHeader: string;
    /**
     * PEM files of the XCAP server's certificate (with its chain) and key: both set, it serves
     * HTTPS only; both empty, plain HTTP (development, or behind a TLS-terminating proxy).
     */
    tlsCert: string;
    tlsKey: string;
  };
  store: {
    /** MongoDB connection string; when empty the embedded store in dataDir is used. */
    mongodbUri: string;
    dataDir: string;
  };
  charging: {
    cdrDir: string;
    rotateBytes: number;
    rotateSeconds: number;
    /** Days CDRs stay queryable in the store (files are the archive); 0 keeps them forever. */
    storeRetentionDays: number;
    /** Most CDRs kept in the store (the oldest go first); 0: no limit. */
    storeMaxRecords: number;
    fsync: boolean;
    /** TS 32.297 BER files (docs/charging.md section 4): closed by size, age, record count. */
    fileMaxBytes: number;
    fileMaxSeconds: number;
    fileMaxRecords: number;
    /** Also write the JSON Lines export. */
    jsonl: boolean;
    /** interOperatorIdentifiers of the records when the P-Charging-Vector has none; empty: the SIP domain. */
    originatingIoi: string;
    terminatingIoi: string;
    /** Diameter Rf offline charging (docs/charging.md section 5); off while `peers` is empty. */
    rf: {
      /** CDF peers "host:port,host:port", tried in this order. */
      peers: string;
      /** Our Diameter identity; empty: `<node.id>.<sip.domain>`. */
      originHost: string;
      /** Empty: the SIP domain. */
      originRealm: string;
      /** The CDF's realm; empty: our origin realm. */
      destinationRealm: string;
      watchdogSeconds: number;
    };
  };
  cluster: {
    /**
     * Other AS instances share this store: changes travel through the store's change feed
     * (docs/isc.md section 6). Off: this instance is alone and reacts to its own changes only.
     */
    sharedStore: boolean;
    /** How often the change feed is read for other instances' changes (ms): their delay. */
    feedPollMs: number;
    /** Length of the leases of timer-driven jobs and of instance heartbeats (s). */
    leaseSeconds: number;
  };
  node: {
    /** Identifies this AS instance in CDRs and logs; unique per instance sharing a store. */
    id: string;
    /** Address written in CDRs as the node address. */
    address: string;
  };
  presence: {
    /** Bearer token of the external presence source API; empty disables it. */
    externalToken: string;
    /** Bounds of PUBLISH and SUBSCRIBE expiry (seconds): below min gets 423. */
    minExpires: number;
    maxExpires: number;
    defaultExpires: number;
    /** Any user part of our domain is a presentity, provisioned or not (as Kamailio's own presence). */
    openDomain: boolean;
    /** What a watcher gets when no pres-rule applies (RFC 5025 leaves it to the server). */
    defaultSubHandling: 'confirm' | 'allow' | 'polite-block' | 'block';
    /** Largest NOTIFY body of a list subscription; above it the state is split (RFC 4662). */
    maxNotifyBytes: number;
    /** Largest presence document (PIDF) one watcher is sent; a larger composition is reduced (docs/presence-lists.md). */
    maxComposedBytes: number;
    /** Members a resource list may have once resolved (nested lists and references included). */
    maxListMembers: number;
    /** How deep lists may nest through references before resolution stops. */
    maxListDepth: number;
    /** Shortest interval between two NOTIFYs of one dialog (seconds; 0: none), whatever the watcher asks (RFC 6446 local policy). */
    minNotifyInterval: number;
    /** SUBSCRIBEs (any event package, un-SUBSCRIBEs not counted) one user may send per minute, over every instance; 0: no limit. */
    subscribesPerMinute: number;
  };
  im: {
    /** Largest MESSAGE body accepted, originating and terminating (413 above). */
    maxMessageBytes: number;
    /** How long a deferred message waits for its recipient before it expires. */
    deferredExpirySeconds: number;
    /** How long a delivery notification (IMDN) waits: never as long as a message. */
    notificationExpirySeconds: number;
    /** Stored messages per recipient; above it the sender is told the storage is full. */
    deferredQuota: number;
    /** Retry backoff of failed deferred deliveries: first wait, doubled up to the maximum. */
    retryBaseSeconds: number;
    retryMaxSeconds: number;
    /** Delivery attempts of one stored message before it is failed (so it never blocks its mailbox). */
    maxDeliveryAttempts: number;
    /** How often expiry and due retries are looked for. */
    sweepSeconds: number;
    /** User part of the URI-list service (RFC 5365 exploder): sip:<user>@domain. */
    exploderUser: string;
    /** Most recipients of one group or URI-list message. */
    maxRecipients: number;
    /** Operator ceiling on a group's participants (pager copies, session participants); a group's own max-participant-count may only lower it. */
    groupMaxParticipants: number;
    /** Operator ceiling of a user's history (the user's own setting cannot exceed it). */
    historyMaxMessages: number;
    /** Percentage of the history limit at which the user is told it is nearly full. */
    historyWarnPercent: number;
    /** A user's first registration brings one service MESSAGE about their IM profile. */
    welcome: boolean;
    /** MESSAGEs one user may send per minute, over every instance (403 with Retry-After beyond); 0: no limit. */
    messagesPerMinute: number;
    /** Group and URI-list messages (explosions) one user may send per minute; 0: no limit. */
    groupMessagesPerMinute: number;
  };
  msrp: {
    /** Address in the AS's MSRP URIs and listened on; empty: isc.host (docs/msrp.md). */
    host: string;
    port: number;
    /** Largest MSRP message relayed (413 above; a message already flowing is cut with `#`). */
    maxMessageBytes: number;
    /** Largest file an RFC 5547 offer may name (488 above); 0: msrp.maxMessageBytes. */
    maxFileBytes: number;
    /** An MSRP session with no traffic this long ends (its SIP dialog gets a BYE); 0: never. */
    idleTimeoutSeconds: number;
    /** An established IM session writes an interim (partial) charging record this often; 0: never. */
    interimRecordSeconds: number;
    /** PEM certificate (with chain) and key: both set, the MSRP listener speaks TLS (msrps: URIs). */
    tlsCert: string;
    tlsKey: string;
  };
  conference: {
    /** User part of the conference factory URI (ad-hoc conferences: INVITE to sip:<it>@<domain>). */
    factoryUser: string;
    /** Messages of a chat room kept and replayed to each joiner (0: none). */
    replayMessages: number;
    /** Largest message a conference participant may send (the focus holds it whole to fan it out; 413 above). */
    maxMessageBytes: number;
  };
  admin: {
    /** Token for the admin API (provisioning CLI); empty disables the API. */
    token: string;
  };
  ops: {
    /** Interval of the operator page's samples (it keeps the last hour of them). */
    sampleSeconds: number;
  };
  log: {
    level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  };
}

type Kind = 'string' | 'port' | 'int' | 'bool' | 'list' | 'url' | 'level';

interface Setting {
  path: string;
  env: string;
  kind: Kind;
  def: unknown;
  help: string;
  /** Extra check beyond the kind; returns an error text or undefined. */
  check?: (value: unknown) => string | undefined;
  /** Applied to a running AS by a reload (SIGHUP, POST /admin/reload); others need a restart. */
  reloadable?: true;
}

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** The settings table: the single place where names, defaults and help live. */
export const SETTINGS: readonly Setting[] = [
  {
    path: 'sip.domain',
    env: 'SIP_DOMAIN',
    kind: 'string',
    def: 'example.com',
    help: 'SIP domain served',
    check: (v) => (/^[a-z0-9.-]+$/i.test(String(v)) ? undefined : 'must be a host name'),
  },
  {
    path: 'sip.domainAliases',
    env: 'SIP_DOMAIN_ALIASES',
    kind: 'list',
    def: ['127.0.0.1'],
    help: 'other host parts accepted as the domain (comma-separated)',
  },
  {
    path: 'isc.host',
    env: 'ISC_HOST',
    kind: 'string',
    def: '127.0.0.1',
    help: 'address the ISC HTTP endpoint listens on',
  },
  { path: 'isc.port', env: 'ISC_PORT', kind: 'port', def: 7080, help: 'port of the ISC HTTP endpoint' },
  {
    path: 'isc.secret',
    env: 'ISC_SECRET',
    kind: 'string',
    def: '',
    help: 'shared secret with Kamailio (required)',
    check: (v) =>
      String(v).length >= 16 ? undefined : 'must be set, at least 16 characters (scripts/start.sh generates one)',
  },
  {
    path: 'isc.trustedAddresses',
    reloadable: true,
    env: 'ISC_TRUSTED_ADDRESSES',
    kind: 'list',
    def: ['127.0.0.1'],
    help: 'Kamailio addresses allowed on the ISC endpoint',
  },
  {
    path: 'kamailio.httpUrl',
    env: 'KAMAILIO_HTTP_URL',
    kind: 'url',
    def: 'http://127.0.0.1:5071',
    help: "Kamailio's HTTP listener (jsonrpcs /RPC, /uac)",
  },
  {
    path: 'kamailio.evapiAddress',
    env: 'KAMAILIO_EVAPI_ADDR',
    kind: 'string',
    def: '127.0.0.1:5072',
    help: "Kamailio's evapi event stream (host:port; empty: HTTP events only)",
    check: (v) => (v === '' || /^[^:\s]+:\d{1,5}$/.test(String(v)) ? undefined : 'must be host:port or empty'),
  },
  {
    path: 'kamailio.evapiLinks',
    env: 'KAMAILIO_EVAPI_LINKS',
    kind: 'int',
    def: 4,
    help: "connections to the evapi stream (1-8; Kamailio's evapi max_clients must allow them)",
    check: (v) => (Number(v) >= 1 && Number(v) <= 8 ? undefined : 'must be 1 to 8'),
  },
  {
    path: 'kamailio.sipUri',
    env: 'KAMAILIO_SIP_URI',
    kind: 'string',
    def: 'sip:127.0.0.1:5060',
    help: "Kamailio's SIP address (next hop of AS-originated requests)",
    check: (v) => (/^sips?:/.test(String(v)) ? undefined : 'must be a sip: URI'),
  },
  {
    path: 'kamailio.transactionTimeoutMs',
    env: 'KAMAILIO_TRANSACTION_TIMEOUT_MS',
    kind: 'int',
    def: 5000,
    help: "tm fr_timer of Kamailio's config (ms)",
  },
  { path: 'xdm.host', env: 'XDM_HOST', kind: 'string', def: '127.0.0.1', help: 'address the XCAP server listens on' },
  { path: 'xdm.port', env: 'XDM_PORT', kind: 'port', def: 8080, help: 'port of the XCAP server' },
  {
    path: 'xdm.rootPath',
    env: 'XDM_ROOT_PATH',
    kind: 'string',
    def: '/xcap-root',
    help: 'path of the XCAP root',
    check: (v) =>
      /^\/[A-Za-z0-9._~-]+(\/[A-Za-z0-9._~-]+)*$/.test(String(v)) ? undefined : 'must be a path like /xcap-root',
  },
  {
    path: 'xdm.publicRoot',
    env: 'XDM_PUBLIC_ROOT',
    kind: 'string',
    def: '',
    help: 'XCAP root URI as clients reach it (empty: http(s)://host:port/rootPath, https with xdm.tlsCert)',
  },
  {
    path: 'xdm.maxDocumentBytes',
    env: 'XDM_MAX_DOCUMENT_BYTES',
    kind: 'int',
    def: 1024 * 1024,
    help: 'largest XCAP document or PUT body (413 above)',
  },
  {
    path: 'xdm.maxDepth',
    env: 'XDM_MAX_DEPTH',
    kind: 'int',
    def: 32,
    help: 'deepest element nesting accepted in XCAP documents',
  },
  {
    path: 'xdm.trustedProxies',
    reloadable: true,
    env: 'XDM_TRUSTED_PROXIES',
    kind: 'list',
    def: [],
    help: 'aggregation proxies allowed to assert identities (comma-separated addresses)',
  },
  {
    path: 'xdm.assertedIdentityHeader',
    env: 'XDM_ASSERTED_IDENTITY_HEADER',
    kind: 'string',
    def: 'X-3GPP-Asserted-Identity',
    help: 'header carrying the asserted identity from a trusted proxy',
  },
  {
    path: 'xdm.tlsCert',
    env: 'XDM_TLS_CERT',
    kind: 'string',
    def: '',
    help: 'PEM file of the XCAP server certificate (with chain): with xdm.tlsKey the XCAP port serves HTTPS only; both empty: plain HTTP (development)',
  },
  {
    path: 'xdm.tlsKey',
    env: 'XDM_TLS_KEY',
    kind: 'string',
    def: '',
    help: 'PEM file of the private key of xdm.tlsCert',
  },
  {
    path: 'store.mongodbUri',
    env: 'MONGODB_URI',
    kind: 'string',
    def: '',
    help: 'MongoDB connection string (empty: embedded store)',
    check: (v) =>
      v === '' || /^mongodb(\+srv)?:\/\//.test(String(v)) ? undefined : 'must start with mongodb:// or mongodb+srv://',
  },
  {
    path: 'store.dataDir',
    env: 'AS_DATA_DIR',
    kind: 'string',
    def: 'run/data',
    help: 'directory of the embedded store',
  },
  {
    path: 'charging.cdrDir',
    env: 'CDR_DIR',
    kind: 'string',
    def: 'run/cdr',
    help: 'pick-up directory of the TS 32.297 CDR files (and of the JSON Lines export)',
  },
  {
    path: 'charging.rotateBytes',
    reloadable: true,
    env: 'CDR_ROTATE_BYTES',
    kind: 'int',
    def: 16 * 1024 * 1024,
    help: 'rotate a JSON Lines export file above this size',
  },
  {
    path: 'charging.rotateSeconds',
    reloadable: true,
    env: 'CDR_ROTATE_SECONDS',
    kind: 'int',
    def: 3600,
    help: 'rotate a JSON Lines export file after this many seconds',
  },
  {
    path: 'charging.storeRetentionDays',
    env: 'CDR_STORE_RETENTION_DAYS',
    kind: 'int',
    def: 30,
    help: 'days CDRs stay in the store (0: forever)',
  },
  {
    path: 'charging.storeMaxRecords',
    env: 'CDR_STORE_MAX_RECORDS',
    kind: 'int',
    def: 1_000_000,
    help: 'most CDRs kept in the store, oldest removed first (0: no limit); the files keep every record',
  },
  { path: 'charging.fsync', env: 'CDR_FSYNC', kind: 'bool', def: false, help: 'fsync CDR files after each batch' },
  {
    path: 'charging.fileMaxBytes',
    env: 'CDR_FILE_MAX_BYTES',
    kind: 'int',
    def: 16 * 1024 * 1024,
    help: 'close a TS 32.297 CDR file before it passes this size (bytes)',
  },
  {
    path: 'charging.fileMaxSeconds',
    env: 'CDR_FILE_MAX_SECONDS',
    kind: 'int',
    def: 900,
    help: 'close a TS 32.297 CDR file this many seconds after it was opened',
  },
  {
    path: 'charging.fileMaxRecords',
    env: 'CDR_FILE_MAX_RECORDS',
    kind: 'int',
    def: 100_000,
    help: 'close a TS 32.297 CDR file when it holds this many records',
  },
  {
    path: 'charging.rf.peers',
    env: 'CDR_RF_PEERS',
    kind: 'string',
    def: '',
    help: 'Diameter Rf: CDF peers "host:port,host:port" tried in order (empty: Rf off)',
    check: (v) =>
      String(v)
        .split(',')
        .every((p) => p.trim() === '' || /^(\[[0-9a-f:.]+\]|[^:\s,]+):\d{1,5}$/i.test(p.trim()))
        ? undefined
        : 'must be host:port,host:port or empty',
  },
  {
    path: 'charging.rf.originHost',
    env: 'CDR_RF_ORIGIN_HOST',
    kind: 'string',
    def: '',
    help: 'Diameter Rf: our Origin-Host (empty: <node.id>.<sip.domain>)',
    check: (v) => (/^[a-z0-9.-]*$/i.test(String(v)) ? undefined : 'must be a host name'),
  },
  {
    path: 'charging.rf.originRealm',
    env: 'CDR_RF_ORIGIN_REALM',
    kind: 'string',
    def: '',
    help: 'Diameter Rf: our Origin-Realm (empty: the SIP domain)',
    check: (v) => (/^[a-z0-9.-]*$/i.test(String(v)) ? undefined : 'must be a realm (host name)'),
  },
  {
    path: 'charging.rf.destinationRealm',
    env: 'CDR_RF_DESTINATION_REALM',
    kind: 'string',
    def: '',
    help: "Diameter Rf: the CDF's realm (empty: our origin realm)",
    check: (v) => (/^[a-z0-9.-]*$/i.test(String(v)) ? undefined : 'must be a realm (host name)'),
  },
  {
    path: 'charging.rf.watchdogSeconds',
    env: 'CDR_RF_WATCHDOG_SECONDS',
    kind: 'int',
    def: 30,
    help: 'Diameter Rf: device watchdog interval Tw (seconds)',
    check: (v) => (Number(v) >= 6 && Number(v) <= 600 ? undefined : 'must be 6 to 600'),
  },
  {
    path: 'charging.originatingIoi',
    env: 'CDR_ORIGINATING_IOI',
    kind: 'string',
    def: '',
    help: 'originating inter-operator identifier written in CDRs when the P-Charging-Vector has no orig-ioi (empty: the SIP domain)',
    check: (v) =>
      /^[\x21-\x7e]{0,128}$/.test(String(v)) ? undefined : 'must be at most 128 printable characters, no spaces',
  },
  {
    path: 'charging.terminatingIoi',
    env: 'CDR_TERMINATING_IOI',
    kind: 'string',
    def: '',
    help: 'terminating inter-operator identifier written in CDRs when the P-Charging-Vector has no term-ioi (empty: the SIP domain)',
    check: (v) =>
      /^[\x21-\x7e]{0,128}$/.test(String(v)) ? undefined : 'must be at most 128 printable characters, no spaces',
  },
  {
    path: 'charging.jsonl',
    env: 'CDR_JSONL',
    kind: 'bool',
    def: false,
    help: 'also write the JSON Lines CDR export (cdr-<node>-….jsonl)',
  },
  {
    path: 'node.id',
    env: 'AS_NODE_ID',
    kind: 'string',
    def: '',
    help: "this instance's id in CDRs (default: hostname-port)",
    check: (v) => (/^[A-Za-z0-9_.-]*$/.test(String(v)) ? undefined : 'letters, digits, _ . - only'),
  },
  {
    path: 'cluster.sharedStore',
    env: 'AS_SHARED_STORE',
    kind: 'bool',
    def: false,
    help: 'several AS instances share the store: changes go through its change feed (each needs its own AS_NODE_ID)',
  },
  {
    path: 'cluster.feedPollMs',
    env: 'AS_FEED_POLL_MS',
    kind: 'int',
    def: 100,
    help: "how often other instances' changes are read from the store (ms)",
    check: (v) => (Number(v) >= 10 && Number(v) <= 10_000 ? undefined : 'must be 10 to 10000'),
  },
  {
    path: 'cluster.leaseSeconds',
    env: 'AS_LEASE_SECONDS',
    kind: 'int',
    def: 15,
    help: "lease of timer-driven jobs and instance heartbeats: a dead instance's jobs move within this (+ a third)",
    check: (v) => (Number(v) >= 3 && Number(v) <= 300 ? undefined : 'must be 3 to 300'),
  },
  { path: 'node.address', env: 'AS_NODE_ADDRESS', kind: 'string', def: '127.0.0.1', help: 'address written in CDRs' },
  {
    path: 'presence.externalToken',
    env: 'PRESENCE_EXTERNAL_TOKEN',
    kind: 'string',
    def: '',
    help: 'bearer token for external presence sources (PUT /presence/<user>/sources/<name>); empty: off',
  },
  {
    path: 'presence.minExpires',
    reloadable: true,
    env: 'PRESENCE_MIN_EXPIRES',
    kind: 'int',
    def: 60,
    help: 'shortest PUBLISH/SUBSCRIBE expiry accepted (423 below, with Min-Expires)',
  },
  {
    path: 'presence.maxExpires',
    reloadable: true,
    env: 'PRESENCE_MAX_EXPIRES',
    kind: 'int',
    def: 7200,
    help: 'longest PUBLISH/SUBSCRIBE expiry granted',
  },
  {
    path: 'presence.defaultExpires',
    reloadable: true,
    env: 'PRESENCE_DEFAULT_EXPIRES',
    kind: 'int',
    def: 3600,
    help: 'expiry when the request has none',
  },
  {
    path: 'presence.openDomain',
    env: 'PRESENCE_OPEN_DOMAIN',
    kind: 'bool',
    def: false,
    help: 'accept any user of the domain as a presentity, provisioned or not (benchmarks, open labs)',
  },
  {
    path: 'presence.defaultSubHandling',
    env: 'PRESENCE_DEFAULT_SUB_HANDLING',
    kind: 'string',
    def: 'confirm',
    help: 'sub-handling when no pres-rule applies: confirm, allow, polite-block or block',
    check: (v) =>
      ['confirm', 'allow', 'polite-block', 'block'].includes(String(v))
        ? undefined
        : 'must be confirm, allow, polite-block or block',
  },
  {
    path: 'presence.maxNotifyBytes',
    reloadable: true,
    env: 'PRESENCE_MAX_NOTIFY_BYTES',
    kind: 'int',
    def: 48000,
    help: 'largest list NOTIFY body; a larger list state is split across NOTIFYs (the whole NOTIFY stays under the 64 KB that Kamailio and UDP take)',
    check: (v) => (Number(v) >= 4096 && Number(v) <= 50000 ? undefined : 'must be between 4096 and 50000'),
  },
  {
    path: 'presence.maxComposedBytes',
    env: 'PRESENCE_MAX_COMPOSED_BYTES',
    kind: 'int',
    def: 16384,
    help: 'largest presence document one watcher gets; a larger composition loses notes and extensions, then the tuples that do not fit, then all but the basic status (counted in ims_as_presence_document_reductions_total)',
    check: (v) => (Number(v) >= 1024 && Number(v) <= 50000 ? undefined : 'must be between 1024 and 50000'),
  },
  {
    path: 'presence.maxListMembers',
    reloadable: true,
    env: 'PRESENCE_MAX_LIST_MEMBERS',
    kind: 'int',
    def: 1000,
    help: 'members a resource list may have once resolved (403 above)',
    check: (v) => (Number(v) >= 1 ? undefined : 'must be at least 1'),
  },
  {
    path: 'presence.maxListDepth',
    reloadable: true,
    env: 'PRESENCE_MAX_LIST_DEPTH',
    kind: 'int',
    def: 8,
    help: 'how deep resource lists may nest through references',
    check: (v) => (Number(v) >= 1 ? undefined : 'must be at least 1'),
  },
  {
    path: 'presence.minNotifyInterval',
    env: 'PRESENCE_MIN_NOTIFY_INTERVAL',
    kind: 'int',
    def: 0,
    help: 'shortest interval in seconds between two NOTIFYs of one subscription, any event package (bursts coalesce into one NOTIFY with the latest state; echoed as max-rate); 0: none',
    check: (v) => (Number(v) >= 0 ? undefined : 'must be 0 or more'),
  },
  {
    path: 'presence.subscribesPerMinute',
    reloadable: true,
    env: 'PRESENCE_SUBSCRIBES_PER_MINUTE',
    kind: 'int',
    def: 600,
    help: 'SUBSCRIBEs (any event package; un-SUBSCRIBEs not counted) one user may send per minute, counted over every instance on the store; beyond it 403 with Retry-After; 0: no limit',
    check: (v) => (Number(v) >= 0 ? undefined : 'must be 0 or more'),
  },
  {
    path: 'im.maxMessageBytes',
    reloadable: true,
    env: 'IM_MAX_MESSAGE_BYTES',
    kind: 'int',
    def: 32 * 1024,
    help: 'largest MESSAGE body (413 above, with Max-Message-Size)',
    check: (v) => (Number(v) >= 1 ? undefined : 'must be at least 1'),
  },
  {
    path: 'im.deferredExpirySeconds',
    reloadable: true,
    env: 'IM_DEFERRED_EXPIRY_SECONDS',
    kind: 'int',
    def: 7 * 86400,
    help: 'how long a message for an offline user is kept',
    check: (v) => (Number(v) >= 1 ? undefined : 'must be at least 1'),
  },
  {
    path: 'im.notificationExpirySeconds',
    reloadable: true,
    env: 'IM_NOTIFICATION_EXPIRY_SECONDS',
    kind: 'int',
    def: 86400,
    help: 'how long a delivery notification for an offline user is kept',
    check: (v) => (Number(v) >= 1 ? undefined : 'must be at least 1'),
  },
  {
    path: 'im.deferredQuota',
    reloadable: true,
    env: 'IM_DEFERRED_QUOTA',
    kind: 'int',
    def: 1000,
    help: 'stored messages per recipient (senders are told when it is full)',
  },
  {
    path: 'im.retryBaseSeconds',
    reloadable: true,
    env: 'IM_RETRY_BASE_SECONDS',
    kind: 'int',
    def: 30,
    help: 'first wait before a failed deferred delivery is retried (doubles)',
    check: (v) => (Number(v) >= 1 ? undefined : 'must be at least 1'),
  },
  {
    path: 'im.retryMaxSeconds',
    reloadable: true,
    env: 'IM_RETRY_MAX_SECONDS',
    kind: 'int',
    def: 3600,
    help: 'longest wait between retries of a deferred delivery',
  },
  {
    path: 'im.maxDeliveryAttempts',
    reloadable: true,
    env: 'IM_MAX_DELIVERY_ATTEMPTS',
    kind: 'int',
    def: 8,
    help: 'attempts to deliver one stored message the device keeps failing (5xx, 408 ...) before it is failed, with its CDR and IMDN, and the messages behind it go on (8: about two hours with the default backoff)',
    check: (v) => (Number(v) >= 1 ? undefined : 'must be at least 1'),
  },
  {
    path: 'im.sweepSeconds',
    env: 'IM_SWEEP_SECONDS',
    kind: 'int',
    def: 30,
    help: 'how often expired messages and due retries are looked for',
    check: (v) => (Number(v) >= 1 ? undefined : 'must be at least 1'),
  },
  {
    path: 'im.exploderUser',
    env: 'IM_EXPLODER_USER',
    kind: 'string',
    def: 'im-exploder',
    help: 'user part of the URI-list (recipient-list) service URI',
    check: (v) => (/^[A-Za-z0-9._~+-]+$/.test(String(v)) ? undefined : 'must be a SIP user part'),
  },
  {
    path: 'im.maxRecipients',
    reloadable: true,
    env: 'IM_MAX_RECIPIENTS',
    kind: 'int',
    def: 100,
    help: 'most recipients of one group or recipient-list message',
    check: (v) => (Number(v) >= 1 && Number(v) <= 1000 ? undefined : 'must be 1 to 1000'),
  },
  {
    path: 'im.groupMaxParticipants',
    reloadable: true,
    env: 'IM_GROUP_MAX_PARTICIPANTS',
    kind: 'int',
    def: 100,
    help: "most participants of a group (pager: the sender and the copies; sessions: joined); a group's max-participant-count may only lower it",
    check: (v) => (Number(v) >= 2 && Number(v) <= 10000 ? undefined : 'must be 2 to 10000'),
  },
  {
    path: 'im.historyMaxMessages',
    env: 'IM_HISTORY_MAX_MESSAGES',
    kind: 'int',
    def: 10000,
    help: 'most history entries a user may keep',
    check: (v) => (Number(v) >= 1 ? undefined : 'must be at least 1'),
  },
  {
    path: 'im.historyWarnPercent',
    env: 'IM_HISTORY_WARN_PERCENT',
    kind: 'int',
    def: 90,
    help: 'history fill level (%) at which the user is warned',
    check: (v) => (Number(v) >= 1 && Number(v) <= 100 ? undefined : 'must be 1 to 100'),
  },
  {
    path: 'im.welcome',
    env: 'IM_WELCOME',
    kind: 'bool',
    def: true,
    help: "a user's first registration creates their IM profile (im-policy document) and brings one MESSAGE from sip:service@<domain> saying where to edit it",
  },
  {
    path: 'im.messagesPerMinute',
    reloadable: true,
    env: 'IM_MESSAGES_PER_MINUTE',
    kind: 'int',
    def: 600,
    help: 'MESSAGEs one user may send per minute, counted over every instance on the store; beyond it 403 with Retry-After; 0: no limit',
    check: (v) => (Number(v) >= 0 ? undefined : 'must be 0 or more'),
  },
  {
    path: 'im.groupMessagesPerMinute',
    reloadable: true,
    env: 'IM_GROUP_MESSAGES_PER_MINUTE',
    kind: 'int',
    def: 30,
    help: 'group and URI-list messages (each sent on to every member) one user may send per minute, over every instance; beyond it 403 with Retry-After; 0: no limit',
    check: (v) => (Number(v) >= 0 ? undefined : 'must be 0 or more'),
  },
  {
    path: 'msrp.host',
    env: 'MSRP_HOST',
    kind: 'string',
    def: '',
    help: "address in the AS's MSRP URIs (SDP a=path) and listened on (empty: isc.host)",
  },
  {
    path: 'msrp.port',
    env: 'MSRP_PORT',
    kind: 'port',
    def: 2855,
    help: 'port of the MSRP switch (TCP, or TLS with msrp.tlsCert)',
  },
  {
    path: 'msrp.maxMessageBytes',
    env: 'MSRP_MAX_MESSAGE_BYTES',
    kind: 'int',
    def: 100 * 1024 * 1024,
    help: 'largest MSRP message relayed in a session (413 above; a message passing it while it flows is cut off with #)',
    check: (v) => (Number(v) >= 1 ? undefined : 'must be at least 1'),
  },
  {
    path: 'msrp.maxFileBytes',
    env: 'MSRP_MAX_FILE_BYTES',
    kind: 'int',
    def: 0,
    help: 'largest file a file-transfer offer (RFC 5547) may name: above it the INVITE gets 488 with a Warning (0: msrp.maxMessageBytes, which also caps it)',
    check: (v) => (Number(v) >= 0 ? undefined : 'must be 0 or more'),
  },
  {
    path: 'msrp.idleTimeoutSeconds',
    env: 'MSRP_IDLE_TIMEOUT_SECONDS',
    kind: 'int',
    def: 1800,
    help: 'an MSRP session with no traffic this long ends with a BYE (0: never)',
  },
  {
    path: 'msrp.interimRecordSeconds',
    env: 'MSRP_INTERIM_RECORD_SECONDS',
    kind: 'int',
    def: 1800,
    help: 'an established IM session writes an interim (partial) charging record per role this often, chained by recordSequenceNumber (0: only the final record)',
    check: (v) => (Number(v) >= 0 ? undefined : 'must be 0 or more'),
  },
  {
    path: 'msrp.tlsCert',
    env: 'MSRP_TLS_CERT',
    kind: 'string',
    def: '',
    help: 'PEM file of the MSRP certificate (with chain): with msrp.tlsKey the MSRP port speaks TLS only (msrps: URIs)',
  },
  {
    path: 'msrp.tlsKey',
    env: 'MSRP_TLS_KEY',
    kind: 'string',
    def: '',
    help: 'PEM file of the private key of msrp.tlsCert',
  },
  {
    path: 'conference.factoryUser',
    env: 'CONFERENCE_FACTORY_USER',
    kind: 'string',
    def: 'conference-factory',
    help: 'user part of the conference factory URI: an INVITE to sip:<it>@<sip.domain> creates an ad-hoc conference (RFC 5366 recipient list: the focus invites the listed users)',
  },
  {
    path: 'conference.replayMessages',
    reloadable: true,
    env: 'CONFERENCE_REPLAY_MESSAGES',
    kind: 'int',
    def: 20,
    help: 'messages of a chat room kept in the store and replayed to each joiner (0: none)',
    check: (v) => (Number(v) >= 0 ? undefined : 'must be 0 or more'),
  },
  {
    path: 'conference.maxMessageBytes',
    env: 'CONFERENCE_MAX_MESSAGE_BYTES',
    kind: 'int',
    def: 1024 * 1024,
    help: 'largest message a conference participant may send over MSRP (the focus holds it whole to send it to every other participant; 413 above)',
    check: (v) => (Number(v) >= 1 ? undefined : 'must be at least 1'),
  },
  {
    path: 'admin.token',
    env: 'AS_ADMIN_TOKEN',
    kind: 'string',
    def: '',
    help: 'bearer token of the admin API (empty: API off)',
  },
  {
    path: 'ops.sampleSeconds',
    env: 'OPS_SAMPLE_SECONDS',
    kind: 'int',
    def: 10,
    help: "interval of the operator page's samples (/admin/ui keeps the last hour)",
    check: (v) => (Number(v) >= 1 && Number(v) <= 300 ? undefined : 'must be 1 to 300'),
  },
  {
    path: 'log.level',
    reloadable: true,
    env: 'LOG_LEVEL',
    kind: 'level',
    def: 'info',
    help: `log level (${LEVELS.join(', ')})`,
  },
];

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

function coerce(kind: Kind, raw: unknown): { value?: unknown; error?: string } {
  switch (kind) {
    case 'string':
      return typeof raw === 'string' ? { value: raw } : { error: 'must be a string' };
    case 'url':
      if (typeof raw !== 'string') return { error: 'must be a URL string' };
      try {
        const u = new URL(raw);
        if (u.protocol !== 'http:' && u.protocol !== 'https:') return { error: 'must be an http(s) URL' };
        return { value: raw.replace(/\/+$/, '') };
      } catch {
        return { error: `must be a URL, got '${raw}'` };
      }
    case 'port':
    case 'int': {
      const n = typeof raw === 'number' ? raw : typeof raw === 'string' && /^\d+$/.test(raw.trim()) ? Number(raw) : NaN;
      if (!Number.isInteger(n) || n < 0) return { error: `must be a non-negative integer, got '${String(raw)}'` };
      if (kind === 'port' && (n < 1 || n > 65535)) return { error: `must be a port 1-65535, got ${n}` };
      return { value: n };
    }
    case 'bool':
      if (typeof raw === 'boolean') return { value: raw };
      if (typeof raw === 'string' && /^(1|true|yes|on)$/i.test(raw)) return { value: true };
      if (typeof raw === 'string' && /^(0|false|no|off)$/i.test(raw)) return { value: false };
      return { error: `must be true or false, got '${String(raw)}'` };
    case 'list':
      if (Array.isArray(raw) && raw.every((x) => typeof x === 'string')) return { value: raw };
      if (typeof raw === 'string')
        return {
          value: raw
            .split(',')
            .map((s) => s.trim())
            .filter(Boolean),
        };
      return { error: 'must be a list of strings' };
    case 'level':
      return typeof raw === 'string' && LEVELS.includes(raw)
        ? { value: raw }
        : { error: `must be one of ${LEVELS.join(', ')}` };
  }
}

export function getPath(obj: unknown, path: string): unknown {
  let cur: unknown = obj;
  for (const part of path.split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

export function setPath(obj: Record<string, unknown>, path: string, value: unknown): void {
  const parts = path.split('.');
  let cur = obj;
  for (const part of parts.slice(0, -1)) {
    cur[part] ??= {};
    cur = cur[part] as Record<string, unknown>;
  }
  cur[parts[parts.length - 1]!] = value;
}

/** Every dotted path a file may contain, to report unknown keys (typos) as errors. */
function fileKeys(obj: unknown, prefix = ''): string[] {
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) return [prefix];
  return Object.entries(obj).flatMap(([k, v]) => fileKeys(v, prefix ? `${prefix}.${k}` : k));
}

/** Settings that must not exceed another: [lower, upper]. */
const ORDERED: ReadonlyArray<readonly [string, string]> = [
  ['presence.minExpires', 'presence.defaultExpires'],
  ['presence.defaultExpires', 'presence.maxExpires'],
  ['presence.minExpires', 'presence.maxExpires'],
  ['im.retryBaseSeconds', 'im.retryMaxSeconds'],
];

/** Each pair of settings whose values contradict each other, named both ways (path and variable). */
function contradictions(values: Record<string, unknown>): string[] {
  const named = (p: string) => `${p} (${SETTINGS.find((s) => s.path === p)?.env ?? '?'})`;
  const out: string[] = [];
  for (const [lower, upper] of ORDERED) {
    const lo = getPath(values, lower) as number;
    const hi = getPath(values, upper) as number;
    if (lo > hi) out.push(`${named(lower)} is ${lo}, above ${named(upper)} ${hi}: it must not be`);
  }
  return out;
}

export interface LoadOptions {
  env?: NodeJS.ProcessEnv;
  /** Path of a JSON config file; defaults to env AS_CONFIG. */
  file?: string;
}

export function loadConfig(opts: LoadOptions = {}): AsConfig {
  const env = opts.env ?? process.env;
  const problems: string[] = [];
  const filePath = opts.file ?? env.AS_CONFIG;
  let fromFile: unknown = {};
  if (filePath) {
    try {
      fromFile = JSON.parse(readFileSync(filePath, 'utf8'));
    } catch (err) {
      throw new ConfigError([`config file ${filePath}: ${(err as Error).message}`]);
    }
    const known = new Set(SETTINGS.map((s) => s.path));
    for (const key of fileKeys(fromFile)) {
      if (key && !known.has(key)) problems.push(`${key} (in ${filePath}): unknown setting`);
    }
  }
  const out: Record<string, unknown> = {};
  for (const s of SETTINGS) {
    const envRaw = env[s.env];
    // an empty variable sets a text setting to empty (e.g. KAMAILIO_EVAPI_ADDR= turns the
    // stream off); for numbers and switches it means "not set"
    const fromEnv = envRaw !== undefined && (envRaw !== '' || s.kind === 'string' || s.kind === 'list');
    const fileRaw = getPath(fromFile, s.path);
    const source = fromEnv ? `environment ${s.env}` : fileRaw !== undefined ? `file ${filePath}` : 'default';
    const raw = fromEnv ? envRaw : fileRaw !== undefined ? fileRaw : s.def;
    const { value, error } = coerce(s.kind, raw);
    const problem = error ?? s.check?.(value);
    if (problem) {
      problems.push(`${s.path} (${s.env}, from ${source}): ${problem}`);
      continue;
    }
    setPath(out, s.path, value);
  }
  if (problems.length === 0) problems.push(...contradictions(out));
  const xdm = out.xdm as { tlsCert?: string; tlsKey?: string } | undefined;
  if (xdm && xdm.tlsCert !== undefined && xdm.tlsKey !== undefined && !xdm.tlsCert !== !xdm.tlsKey) {
    problems.push(
      'xdm.tlsCert (XDM_TLS_CERT) and xdm.tlsKey (XDM_TLS_KEY): set both for HTTPS, or neither for plain HTTP',
    );
  }
  const msrp = out.msrp as { tlsCert?: string; tlsKey?: string } | undefined;
  if (msrp && msrp.tlsCert !== undefined && msrp.tlsKey !== undefined && !msrp.tlsCert !== !msrp.tlsKey) {
    problems.push(
      'msrp.tlsCert (MSRP_TLS_CERT) and msrp.tlsKey (MSRP_TLS_KEY): set both for MSRP over TLS, or neither for TCP',
    );
  }
  if (problems.length) throw new ConfigError(problems);
  const cfg = out as unknown as AsConfig;
  if (!cfg.msrp.host) cfg.msrp.host = cfg.isc.host;
  if (!cfg.node.id) cfg.node.id = `${hostname().replace(/[^A-Za-z0-9_.-]/g, '-')}-${cfg.isc.port}`;
  return cfg;
}

/** The settings as help text for --help. */
export function settingsHelp(): string {
  return SETTINGS.map(
    (s) =>
      `  ${s.env.padEnd(32)} ${s.path.padEnd(30)} ${s.help} [default: ${JSON.stringify(s.def)}]${s.reloadable ? ' (reload)' : ''}`,
  ).join('\n');
}
