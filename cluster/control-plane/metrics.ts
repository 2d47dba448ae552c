// Prometheus text exposition of the control plane's view: functions, sandboxes by state, desired
// and ready scale, panic mode, nodes, data planes, and the actor runtime's own counters.
import type { ControlPlane } from './control-plane.js';

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

class Exposition {
  private readonly lines: string[] = [];
  private readonly declared = new Set<string>();

  metric(name: string, type: 'gauge' | 'counter', help: string, value: number, labels: Record<string, string> = {}): void {
    if (!this.declared.has(name)) {
      this.declared.add(name);
      this.lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    }
    const rendered = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(',');
    this.lines.push(`${name}${rendered ? `{${rendered}}` : ''} ${Number.isFinite(value) ? value : 0}`);
  }

  text(): string {
    return `${this.lines.join('\n')}\n`;
  }
}

export async function renderControlPlaneMetrics(plane: ControlPlane): Promise<string> {
  const out = new Exposition();
  const [functions, nodes, shards] = await Promise.all([plane.listFunctions(), plane.nodes().catch(() => []), plane.runtime.stats()]);
  const status = plane.status();
  out.metric('dirigent_leader_term', 'gauge', 'Leadership term of this control plane.', status.term);
  out.metric('dirigent_functions', 'gauge', 'Registered functions.', functions.length);
  for (const view of functions) {
    const fn = view.spec.name;
    const sandboxes = view.status;
    for (const phase of ['creating', 'ready', 'draining'] as const) {
      out.metric('dirigent_sandboxes', 'gauge', 'Sandboxes by function and lifecycle phase.', sandboxes ? sandboxes[phase] : 0, { function: fn, state: phase });
    }
    out.metric('dirigent_desired_scale', 'gauge', 'Sandbox count the autoscaler wants.', sandboxes?.desired ?? 0, { function: fn });
    out.metric('dirigent_autoscaler_panic', 'gauge', '1 while the autoscaler is in panic mode.', view.autoscaler?.panic ? 1 : 0, { function: fn });
    out.metric('dirigent_observed_concurrency', 'gauge', 'In-flight plus queued requests the autoscaler last observed.', view.autoscaler?.observedInFlight ?? 0, { function: fn });
  }
  for (const node of nodes) {
    out.metric('dirigent_node_alive', 'gauge', '1 while the node heartbeats.', node.alive ? 1 : 0, { node: node.nodeId });
    out.metric('dirigent_node_sandboxes', 'gauge', 'Sandboxes placed on the node.', node.sandboxes, { node: node.nodeId });
    out.metric('dirigent_node_heartbeat_age_seconds', 'gauge', 'Seconds since the node last heartbeated.', node.heartbeatAgeMs / 1000, { node: node.nodeId });
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
