// Commander option table shared by `bench serve` and `bench compare` (defaults are vLLM's).
import type { Command } from 'commander';
import { presetHelp } from './presets.js';

export function addTargetModelOptions(cmd: Command): Command {
  return cmd
    .option('--endpoint <path>', 'API endpoint: /v1/completions or /v1/chat/completions', '/v1/completions')
    .option('--model <name>', 'model name sent in requests (default: first model from /v1/models)')
    .option('--served-model-name <name>', 'model name for the API if it differs from --model')
    .option('--tokenizer <dir|card>', 'tokenizer: a model directory or a built-in card name (default: --model)');
}

export function addWorkloadOptions(cmd: Command): Command {
  return cmd
    .option('--preset <name>', presetHelp())
    .option('--dataset-name <name>', 'random | sharegpt | prefix_repetition | custom', 'random')
    .option('--dataset-path <path>', 'ShareGPT JSON or custom JSONL ({"prompt", "output_tokens"?} per line)')
    .option('--num-prompts <n>', 'number of prompts', '1000')
    .option('--seed <n>', 'seed for prompts and arrival times', '0')
    .option('--random-input-len <n>', 'random: input tokens per request', '1024')
    .option('--random-output-len <n>', 'random: output tokens per request', '128')
    .option('--random-range-ratio <r>', 'random: lengths uniform in [L(1-r), L(1+r)]', '0')
    .option('--random-prefix-len <n>', 'random: shared prefix tokens before the random part', '0')
    .option('--prefix-repetition-prefix-len <n>', 'prefix_repetition: prefix tokens', '256')
    .option('--prefix-repetition-suffix-len <n>', 'prefix_repetition: suffix tokens', '256')
    .option('--prefix-repetition-num-prefixes <n>', 'prefix_repetition: distinct prefixes', '10')
    .option('--prefix-repetition-output-len <n>', 'prefix_repetition: output tokens', '128')
    .option('--sharegpt-output-len <n>', 'sharegpt: override each output length')
    .option('--custom-output-len <n>', 'custom: output tokens when a row has no output_tokens', '256')
    .option('--skip-chat-template', 'custom: send prompts without applying the chat template')
    .option('--disable-shuffle', 'sharegpt/custom/prefix_repetition: keep file order')
    .option('--request-rate <rps>', 'requests per second (inf: all at once)', 'inf')
    .option('--burstiness <b>', 'gamma shape of inter-arrival times (1 = Poisson)', '1')
    .option('--max-concurrency <n>', 'maximum requests in flight')
    .option('--ignore-eos', 'send ignore_eos (always on for the random dataset, as in vLLM)')
    .option('--temperature <t>', 'sampling temperature sent with each request (default: server decides)')
    .option('--num-warmups <n>', 'warmup requests before the measured run', '0');
}

export function addReportOptions(cmd: Command): Command {
  return cmd
    .option('--percentile-metrics <list>', 'ttft,tpot,itl,e2el,client_queue_time,e2el_including_client_queue', 'ttft,tpot,itl')
    .option('--metric-percentiles <list>', 'percentiles to report, e.g. 50,90,99', '99')
    .option('--goodput <slo...>', 'SLOs as KEY:MS pairs (ttft, tpot, e2el)')
    .option('--save-result', 'save the JSON result')
    .option('--save-detailed', 'include per-request data in the JSON result')
    .option('--result-dir <dir>', 'directory for result JSON files')
    .option('--result-filename <name>', 'result JSON file name')
    .option('--label <label>', 'label prefix of the result file name (default: backend)')
    .option('--disable-tqdm', 'no progress bar');
}
