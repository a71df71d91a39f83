// pino JSON logs: one root logger per process, a child per component (`component` field).
import { pino, type Logger, type DestinationStream, type LevelWithSilent } from 'pino';

export type { Logger };

export interface LogOptions {
  /** trace | debug | info | warn | error | fatal | silent (default info, or HM9K_LOG_LEVEL). */
  level?: string;
  /** Fields on every line (e.g. { process: 'apps' }). */
  base?: Record<string, unknown>;
  /** Where lines go (default stdout). */
  destination?: DestinationStream;
}

const LEVELS = new Set(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']);

export function createRootLogger(opts: LogOptions = {}): Logger {
  const level = (opts.level ?? process.env.HM9K_LOG_LEVEL ?? 'info').toLowerCase();
  if (!LEVELS.has(level)) throw new Error(`invalid log level "${level}" (one of ${[...LEVELS].join(', ')})`);
  return pino(
    {
      level: level as LevelWithSilent,
      base: { pid: process.pid, ...(opts.base ?? {}) },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      // Never log credentials, even if an error object carries request options.
      redact: { paths: ['password', '*.password', 'token', '*.token', 'authorization', '*.authorization', 'headers.authorization', '*.headers.authorization', 'privateKey', '*.privateKey', 'passphrase', '*.passphrase'], censor: '[redacted]' },
    },
    opts.destination,
  );
}

/** A factory `logger(component)` sharing one root logger. */
export function loggerFactory(root: Logger): (component: string) => Logger {
  const cache = new Map<string, Logger>();
  return (component: string) => {
    let l = cache.get(component);
    if (!l) cache.set(component, (l = root.child({ component })));
    return l;
  };
}
