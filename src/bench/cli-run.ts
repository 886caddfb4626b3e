// Shared CLI plumbing for bench subcommands: Ctrl+C -> stop signal (twice -> exit 130), errors ->
// one clear stderr line and a non-zero exit code, never a stack trace for expected failures.
import { PdsError } from '../util/errors.js';

export async function runCli(main: (stop: AbortSignal) => Promise<number>): Promise<void> {
  const ctl = new AbortController();
  const onSigint = () => {
    if (ctl.signal.aborted) process.exit(130);
    process.stderr.write('\nInterrupted: no more requests will be sent; aborting in-flight requests (Ctrl+C again to quit now)\n');
    ctl.abort();
  };
  process.on('SIGINT', onSigint);
  try {
    process.exitCode = await main(ctl.signal);
  } catch (e) {
    const msg = e instanceof PdsError || e instanceof RangeError || e instanceof Error ? e.message : String(e);
    process.stderr.write(`error: ${msg}\n`);
    if (!(e instanceof PdsError) && process.env.PDSERVE_DEBUG && e instanceof Error) process.stderr.write(`${e.stack}\n`);
    process.exitCode = e instanceof PdsError && e.code === 'PDS_ERR_UNAVAILABLE' ? 3 : 1;
  } finally {
    process.off('SIGINT', onSigint);
  }
}
