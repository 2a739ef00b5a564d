/**
 * A small typed JSON-RPC 2.0 client for Kamailio's jsonrpcs module over HTTP (xhttp),
 * as exposed by kamailio-cfg/kamailio.cfg on /RPC. (There is no maintained npm package.)
 */
export class KamailioRpcError extends Error {
  constructor(
    message: string,
    readonly code: number | undefined,
    readonly method: string,
  ) {
    super(message);
    this.name = 'KamailioRpcError';
  }
}

interface RpcResponse<T> {
  result?: T;
  error?: { code: number; message: string };
}

/**
 * Calls in flight at once. Kamailio serves /RPC on its few TCP workers: 10,000 dialogs ended at
 * once (every MSRP connection of a benchmark dropped together) timed out 9,999 of them when all
 * were sent together; queued behind a few, each is answered in about a millisecond.
 */
const DEFAULT_MAX_IN_FLIGHT = 8;

/** Tries of dlg.terminate_dlg when Kamailio did not answer in time. */
const TERMINATE_ATTEMPTS = 3;

export interface KamailioRpcOptions {
  httpUrl: string;
  secret: string;
  /** Per call, counted from when it is sent (not from when it was queued). */
  timeoutMs?: number;
  maxInFlight?: number;
}

export class KamailioRpc {
  private nextId = 1;
  private inFlight = 0;
  private readonly waiting: (() => void)[] = [];
  private readonly maxInFlight: number;

  constructor(private readonly opts: KamailioRpcOptions) {
    this.maxInFlight = Math.max(1, opts.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT);
  }

  /** Calls waiting for a free slot (for tests and metrics). */
  get queued(): number {
    return this.waiting.length;
  }

  async call<T = unknown>(method: string, params: unknown[] = []): Promise<T> {
    // a finishing call hands its slot straight to the next waiter, so the count never overshoots
    if (this.inFlight < this.maxInFlight) this.inFlight++;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    try {
      return await this.send<T>(method, params);
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.inFlight--;
    }
  }

  private async send<T>(method: string, params: unknown[]): Promise<T> {
    let res: Response;
    try {
      res = await fetch(`${this.opts.httpUrl}/RPC`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-isc-secret': this.opts.secret },
        body: JSON.stringify({ jsonrpc: '2.0', method, params, id: this.nextId++ }),
        signal: AbortSignal.timeout(this.opts.timeoutMs ?? 3000),
      });
    } catch (err) {
      throw new KamailioRpcError(
        `Kamailio RPC ${method} unreachable at ${this.opts.httpUrl}: ${(err as Error).message}`,
        undefined,
        method,
      );
    }
    if (res.status === 403)
      throw new KamailioRpcError(`Kamailio refused RPC ${method}: wrong secret or address`, 403, method);
    const text = await res.text();
    let parsed: RpcResponse<T>;
    try {
      parsed = JSON.parse(text) as RpcResponse<T>;
    } catch {
      throw new KamailioRpcError(`Kamailio RPC ${method}: not JSON (HTTP ${res.status})`, res.status, method);
    }
    if (parsed.error)
      throw new KamailioRpcError(`Kamailio RPC ${method}: ${parsed.error.message}`, parsed.error.code, method);
    return parsed.result as T;
  }

  async version(): Promise<string> {
    const r = await this.call<string | string[] | { version?: string }>('core.version');
    return typeof r === 'string' ? r : Array.isArray(r) ? r.join(' ') : String(r.version ?? JSON.stringify(r));
  }

  /**
   * Ends a confirmed dialog with a BYE to each side (dialog module; the dialog is matched on
   * Call-ID and both tags). 'gone' when Kamailio holds no such dialog any more: a BYE from a
   * party crossed the request, and the dialog is ending already.
   */
  async terminateDialog(callId: string, fromTag: string, toTag: string): Promise<'terminated' | 'gone'> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.call('dlg.terminate_dlg', [callId, fromTag, toTag]);
        return 'terminated';
      } catch (err) {
        // Kamailio 5.6 answers 500 "Couldnt find callid in dialog"; other versions 404 "Dialog not found"
        if (err instanceof KamailioRpcError && /couldn'?t find|not found/i.test(err.message)) return 'gone';
        // no answer in time (a busy Kamailio): asking again is safe, a dialog ended meanwhile reads 'gone'
        if (attempt < TERMINATE_ATTEMPTS && err instanceof KamailioRpcError && err.code === undefined) continue;
        throw err;
      }
    }
  }

  /** Drops a cached entry (e.g. a user's HA1 after a password change). */
  async htableDelete(table: string, key: string): Promise<void> {
    await this.call('htable.delete', [table, key]);
  }

  /** Empties a whole table (e.g. the identity cache, after any number or alias changed). */
  async htableFlush(table: string): Promise<void> {
    await this.call('htable.flush', [table]);
  }
}
