/**
 * Two operators on one machine: example.com (Kamailio on 127.0.0.1) and example.net (Kamailio
 * on 127.0.0.2), each a complete stack (Kamailio, AS, store), and a real DNS server (dnsmasq)
 * on a loopback address of its own serving the NAPTR, SRV and A records each core looks the
 * other up with (RFC 3263). Each Kamailio resolves through that server alone: it runs in a
 * mount namespace of its own where the test's resolv.conf is bind-mounted over
 * /etc/resolv.conf (the machine's own file, shared with everyone else, is never touched).
 * The cores talk TLS to each other on their peer port, each presenting a certificate for its
 * domain signed by one test CA (mutual TLS).
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Resolver } from 'node:dns/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { endChild } from '../helpers/end-child.js';
import { ROOT, TestStack, eventually, portsFrom, type Ports, type StackTls } from './stack.js';

export interface Operator {
  domain: string;
  ip: string;
  ports: Ports;
  /** The TLS port other operators' cores connect to (client certificate required). */
  peerTlsPort: number;
}

/** Ports of the two operators of one test file: `fileBase` for example.com, +100 for example.net. */
export function operators(fileBase: number): { com: Operator; net: Operator } {
  const com = portsFrom(fileBase);
  const net = portsFrom(fileBase + 100);
  return {
    com: { domain: 'example.com', ip: '127.0.0.1', ports: com, peerTlsPort: com.sip + 96 },
    net: { domain: 'example.net', ip: '127.0.0.2', ports: net, peerTlsPort: net.sip + 96 },
  };
}

/**
 * The DNS server's address: port 53 (a resolv.conf cannot name another port) on a loopback
 * address derived from E2E_PORT_OFFSET, so two checkouts testing at once each have their own.
 */
export function dnsAddress(): string {
  const slot = Math.floor(Number(process.env.E2E_PORT_OFFSET ?? 0) / 1000) % 250;
  return `127.53.0.${slot + 1}`;
}

/**
 * dnsmasq options publishing one operator the way docs/interdomain.md tells an operator to:
 * NAPTR for SIPS over TCP first and SIP over TCP second, their SRV records, and the A record.
 * With `tcpOnly` only the SIP over TCP records are published (the TCP half of a comparison).
 */
export function operatorRecords(op: Operator, opts: { tcpOnly?: boolean } = {}): string[] {
  const host = `sip.${op.domain}`;
  const tls = opts.tcpOnly
    ? []
    : [
        `--naptr-record=${op.domain},10,10,S,SIPS+D2T,,_sips._tcp.${op.domain}`,
        `--srv-host=_sips._tcp.${op.domain},${host},${op.peerTlsPort},10,10`,
      ];
  return [
    ...tls,
    `--naptr-record=${op.domain},20,10,S,SIP+D2T,,_sip._tcp.${op.domain}`,
    `--srv-host=_sip._tcp.${op.domain},${host},${op.ports.sip},10,10`,
    `--host-record=${host},${op.ip}`,
  ];
}

/** dnsmasq answering only from its own records, on `ip`:53, in the foreground. */
export class TestDns {
  private constructor(
    private readonly child: ChildProcess,
    readonly ip: string,
    private readonly log: string[],
  ) {}

  static async start(ip: string, records: string[]): Promise<TestDns> {
    const log: string[] = [];
    const child = spawn(
      'dnsmasq',
      [
        '--keep-in-foreground',
        '--no-daemon',
        '--no-resolv',
        '--no-hosts',
        '--no-poll',
        '--bind-interfaces',
        `--listen-address=${ip}`,
        '--port=53',
        '--conf-file=/dev/null',
        '--pid-file=',
        '--user=root',
        // (its own records are served with TTL 0 otherwise, and Kamailio's resolver drops those)
        '--local-ttl=300',
        '--log-queries',
        '--log-facility=-',
        ...records,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child.stdout!.on('data', (d: Buffer) => log.push(d.toString()));
    child.stderr!.on('data', (d: Buffer) => log.push(d.toString()));
    const dns = new TestDns(child, ip, log);
    await eventually(async () => ((await dns.answers('sip.example.com')) ? true : undefined), 10000, 'dnsmasq').catch(
      (e: Error) => {
        throw new Error(`${e.message}: ${log.join('')}`);
      },
    );
    return dns;
  }

  /** Whether the server gives an address for `name`. */
  async answers(name: string): Promise<boolean> {
    const r = new Resolver({ timeout: 500, tries: 1 });
    r.setServers([this.ip]);
    return (await r.resolve4(name).catch(() => [])).length > 0;
  }

  get queries(): string {
    return this.log.join('');
  }

  async stop(): Promise<void> {
    await endChild(this.child, (c) => c.kill('SIGTERM'), 2000);
  }
}

/** One test CA and a certificate for each domain it signs (scripts/tls-setup.sh). */
export async function makePeerCertificates(dir: string, domains: string[]): Promise<Map<string, StackTls>> {
  const out = new Map<string, StackTls>();
  const first = join(dir, domains[0]!);
  for (const domain of domains) {
    const d = join(dir, domain);
    if (domain !== domains[0]) {
      mkdirSync(d, { recursive: true, mode: 0o700 });
      copyFileSync(join(first, 'ca.pem'), join(d, 'ca.pem'));
      copyFileSync(join(first, 'ca.key'), join(d, 'ca.key'));
    }
    await new Promise<void>((res, rej) =>
      execFile('bash', [join(ROOT, 'scripts/tls-setup.sh'), d, domain], (err, _o, stderr) =>
        err ? rej(new Error(`tls-setup.sh ${domain}: ${stderr}`)) : res(),
      ),
    );
    out.set(domain, { ca: join(d, 'ca.pem'), cert: join(d, 'server.pem'), key: join(d, 'server.key') });
  }
  return out;
}

/**
 * Kamailio's tls.cfg for an operator: UAs on TLS_PORT present no certificate; other
 * operators' cores on the peer port must present one the CA signed; connections the core
 * opens present its own certificate and check the other side's.
 */
export function peerTlsConfig(op: Operator, tls: StackTls): string {
  return `[server:default]
method = TLSv1.2+
certificate = ${tls.cert}
private_key = ${tls.key}
ca_list = ${tls.ca}
verify_certificate = no
require_certificate = no

[server:${op.ip}:${op.peerTlsPort}]
method = TLSv1.2+
certificate = ${tls.cert}
private_key = ${tls.key}
ca_list = ${tls.ca}
verify_certificate = yes
require_certificate = yes
verify_depth = 3

[client:default]
method = TLSv1.2+
certificate = ${tls.cert}
private_key = ${tls.key}
ca_list = ${tls.ca}
verify_certificate = yes
require_certificate = yes
verify_depth = 3
`;
}

export interface InterdomainOptions {
  /** INTERDOMAIN_PEERS of each operator (default: each trusts the other by its certificate). */
  peers?: { com?: string; net?: string };
  /** More Kamailio defines for both. */
  kamailioDefines?: string[];
  /** AS settings for both. */
  env?: Record<string, string>;
  /** Publish SIP over TCP only (no SIPS NAPTR/SRV). */
  tcpOnly?: boolean;
  /** More DNS records (dnsmasq options). */
  records?: string[];
}

/** Both operators' stacks and the DNS server they resolve through. */
export class Interdomain {
  private constructor(
    readonly dns: TestDns,
    readonly com: TestStack,
    readonly net: TestStack,
    readonly ops: { com: Operator; net: Operator },
    private readonly dir: string,
  ) {}

  /** Makes one more certificate, for `domain`, signed by the CA both operators trust. */
  async certificateFor(domain: string): Promise<StackTls> {
    const d = join(this.dir, 'tls', domain);
    mkdirSync(d, { recursive: true, mode: 0o700 });
    copyFileSync(join(this.dir, 'tls', this.ops.com.domain, 'ca.pem'), join(d, 'ca.pem'));
    copyFileSync(join(this.dir, 'tls', this.ops.com.domain, 'ca.key'), join(d, 'ca.key'));
    await new Promise<void>((res, rej) =>
      execFile('bash', [join(ROOT, 'scripts/tls-setup.sh'), d, domain], (err, _o, stderr) =>
        err ? rej(new Error(`tls-setup.sh ${domain}: ${stderr}`)) : res(),
      ),
    );
    return { ca: join(d, 'ca.pem'), cert: join(d, 'server.pem'), key: join(d, 'server.key') };
  }

  static async start(fileBase: number, opts: InterdomainOptions = {}): Promise<Interdomain> {
    const ops = operators(fileBase);
    const dir = mkdtempSync(join(tmpdir(), 'ims-e2e-interdomain-'));
    const certs = await makePeerCertificates(join(dir, 'tls'), [ops.com.domain, ops.net.domain]);
    const dnsIp = dnsAddress();
    const records = [
      ...operatorRecords(ops.com, { tcpOnly: opts.tcpOnly }),
      ...operatorRecords(ops.net, { tcpOnly: opts.tcpOnly }),
      ...(opts.records ?? []),
    ];
    const dns = await TestDns.start(dnsIp, records);
    const resolvConf = join(dir, 'resolv.conf');
    writeFileSync(resolvConf, `nameserver ${dnsIp}\noptions timeout:1 attempts:1\n`);
    const start = (op: Operator, peers: string) =>
      TestStack.start(op.ports, opts.env ?? {}, {
        domain: op.domain,
        ip: op.ip,
        tls: true,
        tlsFiles: certs.get(op.domain)!,
        kamailioTlsConfig: (tls) => peerTlsConfig(op, tls),
        resolvConf,
        kamailioDefines: [
          'WITH_INTERDOMAIN',
          `PEER_TLS_PORT=${op.peerTlsPort}`,
          `INTERDOMAIN_PEERS="${peers}"`,
          ...(opts.kamailioDefines ?? []),
        ],
      });
    let com: TestStack | undefined;
    try {
      com = await start(ops.com, opts.peers?.com ?? 'example.net=tls');
      const net = await start(ops.net, opts.peers?.net ?? 'example.com=tls');
      return new Interdomain(dns, com, net, ops, dir);
    } catch (e) {
      await com?.stop();
      await dns.stop();
      throw e;
    }
  }

  dumpLogs(): string {
    return `=== example.com ===\n${this.com.dumpLogs()}\n=== example.net ===\n${this.net.dumpLogs()}\n=== dns ===\n${this.dns.queries.slice(-3000)}`;
  }

  async stop(): Promise<void> {
    await this.com.stop();
    await this.net.stop();
    await this.dns.stop();
    if (!process.env.E2E_KEEP) rmSync(this.dir, { recursive: true, force: true });
  }
}
