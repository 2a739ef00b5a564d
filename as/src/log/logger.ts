import { pino, type Logger as PinoLogger, type LevelWithSilent } from 'pino';

/**
 * Structured logs: one JSON object per line on stdout, with `svc` naming the component
 * (isc, im, charging, store ...). Child loggers carry request-scoped fields (callId ...).
 */
export type Logger = PinoLogger;

export function createLogger(level: LevelWithSilent = 'info', base: Record<string, unknown> = {}): Logger {
  return pino({
    level,
    base: { ...base },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  });
}

/** A logger that drops everything: for unit tests and CLI commands that print their own output. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
