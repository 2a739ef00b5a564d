import { readFileSync } from 'node:fs';

/** A certificate (with its chain) and its private key, as PEM text for an HTTPS server. */
export interface TlsCredentials {
  cert: string;
  key: string;
}

/**
 * Reads the PEM files of `settings` (e.g. "xdm.tlsCert/xdm.tlsKey") once, at start: a missing
 * or unreadable file stops the start with a message naming the setting, instead of a server
 * that fails every handshake. Both paths empty: no TLS (undefined).
 */
export function readTlsCredentials(certPath: string, keyPath: string, settings: string): TlsCredentials | undefined {
  if (!certPath && !keyPath) return undefined;
  const read = (path: string, what: string): string => {
    try {
      return readFileSync(path, 'utf8');
    } catch (err) {
      throw new Error(
        `cannot read the ${what} ${path} (${settings}): ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      );
    }
  };
  const cert = read(certPath, 'certificate');
  const key = read(keyPath, 'private key');
  if (!/-----BEGIN [A-Z ]*CERTIFICATE-----/.test(cert))
    throw new Error(`${certPath} holds no PEM certificate (${settings})`);
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(key))
    throw new Error(`${keyPath} holds no PEM private key (${settings})`);
  return { cert, key };
}
