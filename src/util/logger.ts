// vLLM-style log lines on stdout (as vLLM): `INFO 11-21 05:30:00 [component] message`.
type Level = 'DEBUG' | 'INFO' | 'WARNING' | 'ERROR';
const order: Record<Level, number> = { DEBUG: 10, INFO: 20, WARNING: 30, ERROR: 40 };
const envLevel = (process.env.PDSERVE_LOG_LEVEL || 'INFO').toUpperCase() as Level;
const minLevel = order[envLevel] ?? 20;

function stamp(d = new Date()): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

export interface Logger {
  debug(msg: string): void;
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
}

export function getLogger(component: string): Logger {
  const write = (level: Level, msg: string) => {
    if (order[level] < minLevel) return;
    process.stdout.write(`${level} ${stamp()} [${component}] ${msg}\n`);
  };
  return {
    debug: (m) => write('DEBUG', m),
    info: (m) => write('INFO', m),
    warn: (m) => write('WARNING', m),
    error: (m) => write('ERROR', m),
  };
}
