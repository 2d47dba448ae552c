// Prometheus text exposition of the control plane's view: functions, sandboxes by state, desired
// and ready scale, panic mode, request counters (invocations, cold starts and their queue-time histogram,
// rejections), queue depth and scaling decisions per function, nodes, data planes, and the actor runtime's
// own counters.
//
// The request counters come from the autoscaler actors (actors/autoscaler-actor.ts), which sum the cumulative
// totals every data plane's router reports with `as.metric`; they lag by at most one router tick. They restart
// from 0 when the control plane (and so the autoscaler) restarts, which Prometheus reads as a counter reset.
import { COLD_START_BUCKETS_MS } from '../../actors/messages.js';
import type { ControlPlane } from './control-plane.js';

type Labels = Readonly<Record<string, string>>;

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function escapeHelp(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}

interface Family {
  readonly type: 'gauge' | 'counter' | 'histogram';
  readonly help: string;
  readonly samples: string[];
}

/** Samples grouped by family (HELP and TYPE once, then every sample of it), in the order families first appear. */
class Exposition {
  private readonly families = new Map<string, Family>();

  metric(name: string, type: 'gauge' | 'counter', help: string, value: number, labels: Labels = {}): void {
    this.family(name, type, help).samples.push(sample(name, labels, value));
  }

  /** A histogram from cumulative bucket counts (`bounds`, then +Inf), their sum and count. */
  histogram(name: string, help: string, bounds: readonly number[], buckets: readonly number[], sum: number, labels: Labels = {}): void {
    const samples = this.family(name, 'histogram', help).samples;
    let count = 0;
    for (let i = 0; i <= bounds.length; i++) {
      // Cumulative counts never decrease with `le`, even if a report were short of buckets.
      count = Math.max(count, buckets[i] ?? 0);
      const le = i < bounds.length ? formatValue(bounds[i] ?? Infinity) : '+Inf';
      samples.push(sample(`${name}_bucket`, { ...labels, le }, count));
    }
    samples.push(sample(`${name}_sum`, labels, sum), sample(`${name}_count`, labels, count));
  }

  private family(name: string, type: Family['type'], help: string): Family {
    let family = this.families.get(name);
    if (family === undefined) {
      family = { type, help, samples: [] };
      this.families.set(name, family);
    } else if (family.type !== type) {
      throw new Error(`metric ${name} is a ${family.type}, not a ${type}`);
    }
    return family;
  }

  text(): string {
    const lines: string[] = [];
    for (const [name, family] of this.families) lines.push(`# HELP ${name} ${escapeHelp(family.help)}`, `# TYPE ${name} ${family.type}`, ...family.samples);
    return `${lines.join('\n')}\n`;
  }
}

function sample(name: string, labels: Labels, value: number): string {
  const rendered = Object.entries(labels)
    .map(([k, v]) => `${k}="${escapeLabel(v)}"`)
    .join(',');
  return `${name}${rendered ? `{${rendered}}` : ''} ${Number.isFinite(value) ? formatValue(value) : 0}`;
}

export async function renderControlPlaneMetrics(plane: ControlPlane): Promise<string> {
  const out = new Exposition();
  const [functions, nodes, shards] = await Promise.all([plane.listFunctions(), plane.nodes().catch(() => []), plane.runtime.stats()]);
  const status = plane.status();
  out.metric('dirigent_leader_term', 'gauge', 'Leadership term of this control plane.', status.term);
  out.metric('dirigent_functions', 'gauge', 'Registered functions.', functions.length);
  for (const view of functions) {
    const fn = view.spec.name;
    const labels = { function: fn };
    const sandboxes = view.status;
    const autoscaler = view.autoscaler;
    for (const phase of ['creating', 'ready', 'draining'] as const) {
      out.metric('dirigent_sandboxes', 'gauge', 'Sandboxes by function and lifecycle phase.', sandboxes ? sandboxes[phase] : 0, { function: fn, state: phase });
    }
    out.metric('dirigent_desired_scale', 'gauge', 'Sandbox count the autoscaler wants.', sandboxes?.desired ?? 0, labels);
    out.metric('dirigent_autoscaler_panic', 'gauge', '1 while the autoscaler is in panic mode.', autoscaler?.panic ? 1 : 0, labels);
    out.metric('dirigent_observed_concurrency', 'gauge', 'In-flight plus queued requests the autoscaler last observed.', autoscaler?.observedInFlight ?? 0, labels);
    out.metric(
      'dirigent_queue_depth',
      'gauge',
      "Requests waiting in the data planes' cold-start queues (each data plane's peak over its last report period).",
      autoscaler?.queued ?? 0,
      labels,
    );
    out.metric('dirigent_scaling_decisions_total', 'counter', 'Scale commands the autoscaler sent to the function (each change of the desired count).', autoscaler?.decisions ?? 0, labels);
    const totals = autoscaler?.totals;
    out.metric('dirigent_invocations_total', 'counter', 'Requests the data planes handed to a sandbox.', totals?.invocations ?? 0, labels);
    out.metric('dirigent_cold_starts_total', 'counter', 'Requests that waited for a sandbox created after they were queued.', totals?.coldStarts ?? 0, labels);
    out.histogram(
      'dirigent_cold_start_queue_ms',
      'Time cold-started requests waited in the data plane queue, ms.',
      COLD_START_BUCKETS_MS,
      totals?.coldStartMsBuckets ?? [],
      totals?.coldStartMsSum ?? 0,
      labels,
    );
    for (const [code, count] of Object.entries(totals?.rejected ?? {}).sort(([a], [b]) => a.localeCompare(b))) {
      out.metric(
        'dirigent_rejected_requests_total',
        'counter',
        'Requests the data planes answered with an error without a sandbox (404, 413, 429, 503, 504), by status.',
        count,
        { function: fn, status: code },
      );
    }
  }
  for (const node of nodes) {
    out.metric('dirigent_node_alive', 'gauge', '1 while the node heartbeats.', node.alive ? 1 : 0, { node: node.nodeId });
    out.metric('dirigent_node_sandboxes', 'gauge', 'Sandboxes placed on the node.', node.sandboxes, { node: node.nodeId });
    out.metric('dirigent_node_heartbeat_age_seconds', 'gauge', 'Seconds since the node last heartbeated.', node.heartbeatAgeMs / 1000, { node: node.nodeId });
    const pool = node.pool;
    if (pool !== undefined) {
      out.metric('dirigent_node_pool_idle_sandboxes', 'gauge', 'Started generic sandboxes waiting in the node\'s pool (as of its last heartbeat).', pool.idle, { node: node.nodeId });
      out.metric('dirigent_node_pool_target_sandboxes', 'gauge', 'Started generic sandboxes the node\'s pool keeps when full.', pool.target, { node: node.nodeId });
      out.metric('dirigent_node_pool_idle_memory_mib', 'gauge', 'Measured idle memory of the pooled sandboxes, MiB.', pool.idleMiB, { node: node.nodeId });
      out.metric('dirigent_node_pool_memory_cap_mib', 'gauge', 'Most idle memory the pool may hold, MiB (taken off the node\'s capacity).', pool.capMiB, { node: node.nodeId });
      out.metric('dirigent_node_cold_starts_total', 'counter', 'Sandbox creations on the node, by how they started: from the pool or fresh.', pool.fromPool, { node: node.nodeId, start: 'pool' });
      out.metric('dirigent_node_cold_starts_total', 'counter', 'Sandbox creations on the node, by how they started: from the pool or fresh.', pool.fresh, { node: node.nodeId, start: 'fresh' });
    }
  }
  out.metric('dirigent_dataplanes_connected', 'gauge', 'Connected data planes.', status.dataplanes);
  out.metric('dirigent_reconstructed_sandboxes_total', 'counter', 'Sandboxes adopted from workers after a control-plane start.', status.reconstruction.sandboxesAdopted);
  for (const shard of shards) {
    const labels = { shard: String(shard.shard) };
    out.metric('dirigent_actor_messages_total', 'counter', 'Messages processed by actors, per shard thread.', shard.processed, labels);
    out.metric('dirigent_actor_mailbox_depth', 'gauge', 'Messages waiting in actor mailboxes, per shard thread.', shard.mailbox, labels);
    out.metric('dirigent_actor_restarts_total', 'counter', 'Actor restarts after a crash, per shard thread.', shard.restarts, labels);
    out.metric('dirigent_actors', 'gauge', 'Live actors, per shard thread.', shard.actors, labels);
  }
  return out.text();
}
