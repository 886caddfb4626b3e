#!/usr/bin/env node
// pdserve: one binary, one file per command (src/cli/<command>.ts).
import { Command } from 'commander';
import { registerServe } from './serve.js';
import { registerUp } from './up.js';
import { registerProxy } from './proxy.js';
import { registerRouter } from './router.js';
import { registerKvServer } from './kv-server.js';
import { registerBench } from './bench.js';
import { watchLifeline } from '../util/lifeline.js';
import { warnRenamedEnv } from '../util/env-renamed.js';

// started by `pdserve up`: exit when it does (src/util/lifeline.ts)
watchLifeline();
// an old PDS_* knob still set: one warning naming its PDSERVE_* name (src/util/env-renamed.ts)
warnRenamedEnv();

const program = new Command();
program.name('pdserve').description('LLM serving with disaggregated prefill and decode').version('0.1.0');
registerServe(program);
registerUp(program);
registerProxy(program);
registerRouter(program);
registerKvServer(program);
registerBench(program);
program.showHelpAfterError();
await program.parseAsync(process.argv);
