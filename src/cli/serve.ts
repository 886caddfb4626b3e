import type { Command } from 'commander';

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('(being built)')
    .action(() => {
      console.error('pdserve serve: not built yet');
      process.exit(2);
    });
}
