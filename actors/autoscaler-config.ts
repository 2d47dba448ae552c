// Per-function autoscaler parameters (Knative KPA on concurrency, with Dirigent's defaults).
// Every field is settable per function; windows are in ms and are rounded to whole ticks by the scaler.

export interface AutoscalerConfig {
  /** Decision period, ms. Dirigent: 2000. */
  readonly tickMs: number;
  /** Window averaged in stable mode, ms. Dirigent: 60000. */
  readonly stableWindowMs: number;
  /** Window averaged for panic detection, ms. Dirigent: 6000. */
  readonly panicWindowMs: number;
  /** Panic starts when panic-window demand >= this % of the ready count. Dirigent: 200. */
  readonly panicThresholdPercent: number;
  /** Scale up to at most this factor of the ready count per tick. Dirigent: 1000. */
  readonly maxScaleUpRate: number;
  /** Scale down to no less than ready / this factor per tick. Dirigent: 2. */
  readonly maxScaleDownRate: number;
  /** Target in-flight requests per sandbox = containerConcurrency * targetUtilizationPercent / 100. */
  readonly targetUtilizationPercent: number;
  /** Lower and upper bound of the sandbox count. */
  readonly minScale: number;
  readonly maxScale: number;
  /** No scale to zero until the function has had no in-flight request for this long, ms. */
  readonly keepAliveMs: number;
  /**
   * What a tick's bucket holds, between the time-weighted average of the in-flight count over the tick (0 %,
   * Knative's queue-proxy metric, the default) and its peak (100 %, this port's metric before issue 19, kept
   * for comparison): average + (peak - average) * peakWeightPercent / 100. Default 0.
   */
  readonly peakWeightPercent: number;
}

export const MAX_SCALE_LIMIT = 2 ** 31 - 1;

export const defaultAutoscalerConfig: AutoscalerConfig = Object.freeze({
  tickMs: 2000,
  stableWindowMs: 60_000,
  panicWindowMs: 6000,
  panicThresholdPercent: 200,
  maxScaleUpRate: 1000,
  maxScaleDownRate: 2,
  targetUtilizationPercent: 100,
  minScale: 0,
  maxScale: MAX_SCALE_LIMIT,
  keepAliveMs: 60_000,
  peakWeightPercent: 0,
});
