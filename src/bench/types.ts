// Shapes shared by the bench client, metrics and reports. Times are seconds on the performance.now()
// clock (converted to seconds) unless a name says _ms.

/** One prompt of a workload (vLLM's SampleRequest). */
export interface SampleRequest {
  prompt: string;
  /** Prompt tokens as the client's tokenizer counts them (the server's usage.prompt_tokens wins). */
  promptLen: number;
  /** max_tokens sent with the request. */
  expectedOutputLen: number;
}

/** What one streamed request produced (vLLM's RequestFuncOutput). */
export interface RequestRecord {
  success: boolean;
  /** Send time, seconds (performance.now()/1000). */
  startTime: number;
  /** Seconds from send to the first chunk with content; 0 when none arrived. */
  ttft: number;
  /** Gaps between consecutive content chunks, seconds. */
  itl: number[];
  /** Seconds from send to the last content chunk. */
  latency: number;
  /** usage.completion_tokens; 0 when the server sent no usage (then the tokenizer counts the text). */
  outputTokens: number;
  promptLen: number;
  generatedText: string;
  error: string;
  /** Seconds the request waited for a --max-concurrency slot after its arrival time. */
  clientQueueTime: number;
}

export type PercentileMetric = 'ttft' | 'tpot' | 'itl' | 'e2el' | 'client_queue_time' | 'e2el_including_client_queue';
export const percentileMetricNames: readonly PercentileMetric[] = [
  'ttft', 'tpot', 'itl', 'e2el', 'client_queue_time', 'e2el_including_client_queue',
];

/** SLOs in milliseconds, e.g. {ttft: 200, tpot: 50}. */
export type GoodputConfig = Partial<Record<'ttft' | 'tpot' | 'e2el', number>>;

export interface MetricStats {
  mean: number; // ms
  median: number;
  std: number;
  percentiles: Array<[number, number]>; // [p, ms]
}

/** vLLM's BenchmarkMetrics. */
export interface BenchmarkMetrics {
  completed: number;
  failed: number;
  totalInput: number;
  totalOutput: number;
  requestThroughput: number;
  requestGoodput: number;
  outputThroughput: number;
  totalTokenThroughput: number;
  ttft: MetricStats;
  tpot: MetricStats;
  itl: MetricStats;
  e2el: MetricStats;
  clientQueueTime: MetricStats;
  e2elIncludingClientQueue: MetricStats;
  maxOutputTokensPerS: number;
  maxConcurrentRequests: number;
  /** Output tokens (content chunks) per 1-s bucket from the first send. */
  tokensPerSecond: number[];
  /** Per successful request, the output length used (usage or tokenizer count); 0 for failures. */
  actualOutputLens: number[];
}
