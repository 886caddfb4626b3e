import type { Command } from 'commander';

export function registerProxy(program: Command): void {
  program
    .command('proxy')
    .description('(being built)')
    .action(() => {
      console.error('pdserve proxy: not built yet');
      process.exit(2);
    });
}
