import { pino, type Logger as PinoLogger, type LevelWithSilent } from 'pino';

/**
 * Structured logs: one JSON object per line on stdout, with `svc` naming the component
 * (isc, im, charging, store ...). Child loggers carry request-scoped fields (callId ...).
 */
export type Logger = PinoLogger;

/**
 * A pino child keeps the level it was created with, so a reload of log.level must reach
 * every child: each root remembers its descendants (weakly: request-scoped children go away).
 */
const descendants = new WeakMap<Logger, Set<WeakRef<Logger>>>();
/** Prune the dead references once the set grows past this many. */
const PRUNE_ABOVE = 256;

export function createLogger(level: LevelWithSilent = 'info', base: Record<string, unknown> = {}): Logger {
  const family = new Set<WeakRef<Logger>>();
  let pruneAt = PRUNE_ABOVE;
  const root = pino({
    level,
    base: { ...base },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    // (inherited by children, so grandchildren are recorded too)
    onChild: (child) => {
      family.add(new WeakRef(child));
      if (family.size > pruneAt) {
        for (const ref of family) if (!ref.deref()) family.delete(ref);
        pruneAt = Math.max(PRUNE_ABOVE, family.size * 2);
      }
    },
  });
  descendants.set(root, family);
  return root;
}

/** Sets the level of a logger made by createLogger and of every child it has. */
export function setLogLevel(root: Logger, level: LevelWithSilent): void {
  root.level = level;
  for (const ref of descendants.get(root) ?? []) {
    const child = ref.deref();
    if (child) child.level = level;
  }
}

/** A logger that drops everything: for unit tests and CLI commands that print their own output. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
