// cluster/experiments: the paper's experiments as commands. The Azure Functions trace format (azure-trace.ts), the
// in-vitro loader's arrival and run-time generation (arrivals.ts), its invocation records (records.ts), the paper's
// metrics (metrics.ts), the open-loop HTTP/1.1 sender (sender.ts), the replay that ties them to a cluster
// (replay.ts), synthetic traces from "Serverless in the Wild" (synth.ts), and the report with its SVG plots
// (report.ts, svg-cdf.ts, svg-xy.ts). Not here: the benchmarks that run them (bench/trace.ts, bench/sweep.ts).
export { buildSchedule, IAT_DISTRIBUTIONS, invocationId, minuteOffsetsUs, type IatDistribution, type Schedule } from './arrivals.js';
export { formatAzureTrace, parseAzureTrace, readAzureTrace, TraceError, type TraceFunction } from './azure-trace.js';
export { analyze, percentile, type RunMetrics } from './metrics.js';
export { parseRecords, recordHeader, recordLine, type InvocationRecord } from './records.js';
export { DIRIGENT_PUBLISHED, loadRun, reportText, writePlots } from './report.js';
export { replay, ReplayError, type ReplayOptions, type ReplaySummary } from './replay.js';
export { HttpSender, type SendResult } from './sender.js';
export { synthesizeTrace } from './synth.js';
