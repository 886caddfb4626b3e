import type { Command } from 'commander';

export function registerUp(program: Command): void {
  program
    .command('up')
    .description('(being built)')
    .action(() => {
      console.error('pdserve up: not built yet');
      process.exit(2);
    });
}
