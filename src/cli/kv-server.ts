import type { Command } from 'commander';

export function registerKvServer(program: Command): void {
  program
    .command('kv-server')
    .description('(being built)')
    .action(() => {
      console.error('pdserve kv-server: not built yet');
      process.exit(2);
    });
}
