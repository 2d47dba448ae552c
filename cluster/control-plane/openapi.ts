// OpenAPI 3.0 description of the admin API, served at /openapi.json.
import { LOG_TAIL_LIMIT } from '../../actors/sandbox-logs.js';
import { RUNTIME_KINDS } from '../../actors/settings.js';

const error = { $ref: '#/components/schemas/Error' };
const json = (schema: unknown) => ({ content: { 'application/json': { schema } } });
const errors = {
  '400': { description: 'Invalid input; the message names the field and its unit', ...json(error) },
  '401': { description: 'Admin token missing or wrong', ...json(error) },
  '404': { description: 'No such function', ...json(error) },
};
/** What a create or an update of the sandbox template refuses at once. */
const refused = {
  '422': {
    description: 'The function cannot run here: NO_WORKER, NO_WORKER_FOR_RUNTIME (no connected worker runs its source), NO_NODE_FITS (no node holds its resources), SOURCE_FAILED (it did not start when tried once on a worker)',
    ...json(error),
  },
};

export const openApiDocument = {
  openapi: '3.0.3',
  info: { title: 'dirigent-ts admin API', version: '1', description: 'Functions, nodes, data planes and cluster status of the control plane.' },
  paths: {
    '/api/v1/functions': {
      get: { summary: 'List functions with their status', responses: { '200': { description: 'Functions', ...json({ type: 'object', properties: { functions: { type: 'array', items: { $ref: '#/components/schemas/FunctionView' } } } }) } } },
      post: {
        summary: 'Create a function',
        requestBody: { required: true, ...json({ $ref: '#/components/schemas/FunctionSpecInput' }) },
        responses: { '201': { description: 'Created', ...json({ $ref: '#/components/schemas/FunctionView' }) }, '409': { description: 'A function with this name exists', ...json(error) }, ...refused, ...errors },
      },
    },
    '/api/v1/functions/{name}': {
      parameters: [{ name: 'name', in: 'path', required: true, schema: { type: 'string', pattern: '^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$' } }],
      get: { summary: 'One function: spec, sandboxes, autoscaler', responses: { '200': { description: 'Function', ...json({ $ref: '#/components/schemas/FunctionView' }) }, ...errors } },
      patch: {
        summary: 'Update fields of a function (scaling merges field by field). A change of the sandbox template (or any source given) makes a new templateVersion and rolls it out; scaling-only changes restart nothing',
        requestBody: { required: true, ...json({ type: 'object' }) },
        responses: { '200': { description: 'Updated', ...json({ $ref: '#/components/schemas/FunctionView' }) }, '409': { description: 'Changed by another update meanwhile', ...json(error) }, ...refused, ...errors },
      },
      put: { summary: 'Same as PATCH', requestBody: { required: true, ...json({ type: 'object' }) }, responses: { '200': { description: 'Updated', ...json({ $ref: '#/components/schemas/FunctionView' }) }, '409': { description: 'Changed by another update meanwhile', ...json(error) }, ...refused, ...errors } },
      delete: { summary: 'Deregister: drain and delete every sandbox', responses: { '200': { description: 'Deleted', ...json({ type: 'object', properties: { deleted: { type: 'string' } } }) }, ...errors } },
    },
    '/api/v1/functions/{name}/logs': {
      parameters: [
        { name: 'name', in: 'path', required: true, schema: { type: 'string' } },
        { name: 'since', in: 'query', schema: { type: 'integer', minimum: 0 }, description: 'lines written at or after this time, ms since the Unix epoch' },
        { name: 'tail', in: 'query', schema: { type: 'integer', minimum: LOG_TAIL_LIMIT.min, maximum: LOG_TAIL_LIMIT.max }, description: `the newest this many lines (default: ${LOG_TAIL_LIMIT.max})` },
        { name: 'follow', in: 'query', schema: { type: 'boolean' }, description: 'stream: NDJSON, one LogLine per line, new lines as they come, until the client disconnects' },
      ],
      get: {
        summary: "The function's stdout and stderr, from every sandbox it runs or ran recently, merged by time",
        responses: {
          '200': {
            description: 'Lines, oldest first, and the nodes that did not answer; with follow, application/x-ndjson',
            ...json({ type: 'object', properties: { lines: { type: 'array', items: { $ref: '#/components/schemas/LogLine' } }, unreachable: { type: 'array', items: { type: 'string' } } } }),
          },
          ...errors,
        },
      },
    },
    '/api/v1/nodes': { get: { summary: 'Worker nodes: capacity, allocation, heartbeat age', responses: { '200': { description: 'Nodes', ...json({ type: 'object' }) } } } },
    '/api/v1/dataplanes': { get: { summary: 'Registered data planes', responses: { '200': { description: 'Data planes', ...json({ type: 'object' }) } } } },
    '/api/v1/status': { get: { summary: 'Leader, term, counts and reconstruction progress', responses: { '200': { description: 'Status', ...json({ type: 'object' }) } } } },
    '/registerService': {
      post: {
        summary: 'Dirigent-compatible registration (form-encoded)',
        requestBody: { required: true, content: { 'application/x-www-form-urlencoded': { schema: { type: 'object', properties: { name: { type: 'string' }, image: { type: 'string' }, requested_cpu: { type: 'integer' }, requested_memory: { type: 'integer' }, scaling_upper_bound: { type: 'integer' }, scaling_lower_bound: { type: 'integer' } } } } } },
        responses: { '200': { description: 'Data-plane addresses joined by ";"', content: { 'text/plain': { schema: { type: 'string' } } } }, '400': { description: 'Unsupported image or invalid field' }, '409': { description: 'Duplicate name' }, '503': { description: 'No data plane has registered yet (NO_DATAPLANE): there is no address to answer' } },
      },
    },
    '/metrics': { get: { summary: 'Prometheus metrics', responses: { '200': { description: 'Text exposition format' } } } },
    '/healthz': { get: { summary: 'Liveness', responses: { '200': { description: 'ok' } } } },
    '/readyz': {
      get: {
        summary: 'Readiness of this replica',
        responses: { '200': { description: '`leader (term N)` or `follower (leader: <id>, term N)`' }, '503': { description: 'no leader elected yet, or the leader is still rebuilding from the workers' } },
      },
    },
    '/api/v1/console/cluster': { get: { summary: 'Console: leader, term, replicas, workers, data planes, reconstruction, every process\'s shards', responses: { '200': { description: 'Cluster view', ...json({ type: 'object' }) } } } },
    '/api/v1/console/functions': { get: { summary: 'Console: per function scale by phase, panic, queue, in-flight, invocation and cold-start counters', responses: { '200': { description: 'Functions view', ...json({ type: 'object' }) } } } },
    '/api/v1/console/kinds': { get: { summary: 'Console: actors by kind, process and shard (`?process=`)', responses: { '200': { description: 'Kinds view', ...json({ type: 'object' }) } } } },
    '/api/v1/console/actors': {
      get: {
        summary: 'Console: one page of the cluster\'s actors in the order of one counter (`?kind=&process=&shard=&sort=&offset=&limit=`)',
        responses: { '200': { description: 'Actors page', ...json({ type: 'object' }) }, '400': { description: 'Invalid query (INVALID_QUERY, BAD_REQUEST)' }, '404': { description: 'No such process' } },
      },
    },
    '/api/v1/console/actor': {
      get: {
        summary: 'Console: one actor\'s counters, state and state line (`?process=&shard=&name=`)',
        responses: { '200': { description: 'Actor', ...json({ type: 'object' }) }, '400': { description: 'Invalid query' }, '404': { description: 'No such actor (NO_SUCH_ACTOR)' } },
      },
    },
    '/api/v1/console/history': { get: { summary: 'Console: per function, the last 5 minutes of its counters, sampled every 5 s by the leader', responses: { '200': { description: 'History view', ...json({ type: 'object' }) } } } },
    '/api/v1/console/stream': {
      get: {
        summary: 'Console: the watched views (`?watch=<view>?<query>`, 1..4, URL-encoded) pushed as server-sent events when they change: `update` { i, body } and `view-error` { i, error }',
        responses: { '200': { description: 'Event stream', content: { 'text/event-stream': { schema: { type: 'string' } } } }, '400': { description: 'Invalid watch (INVALID_QUERY)' }, '404': { description: 'No such view' }, '503': { description: 'Too many streams on this replica (TOO_MANY_STREAMS)' } },
      },
    },
    ...Object.fromEntries(
      (
        [
          ['scale', "a function's min and/or max sandboxes: { function, minScale?, maxScale? }"],
          ['drain', 'cordon (drain: true, the default) or uncordon a worker node: { node, drain? }'],
          ['restart', "restart one of the control plane's actors from its init: { process: 'control-plane', shard, name }"],
        ] as const
      ).map(([action, what]) => [
        `/api/v1/console/${action}`,
        {
          post: {
            summary: `Console action (needs the admin token; logged): ${what}`,
            requestBody: { required: true, ...json({ type: 'object' }) },
            responses: { '200': { description: 'Done', ...json({ type: 'object' }) }, '400': { description: 'Invalid body (INVALID_BODY, INVALID_JSON)' }, '401': { description: 'No or wrong bearer token (UNAUTHORIZED)' }, '403': { description: 'No admin token configured: the console is read-only (ACTIONS_DISABLED); or an actor outside the control plane (REMOTE_ACTOR)' }, '404': { description: 'No such function, node or actor' } },
          },
        },
      ]),
    ),
    '/console': { get: { summary: 'The inspection console (an HTML page reading the /api/v1/console views)', responses: { '200': { description: 'HTML' } } } },
    '/api/v1/replicas': { get: { summary: 'Every control-plane replica with its role and term (each probed)', responses: { '200': { description: 'Replicas', ...json({ type: 'object' }) } } } },
  },
  components: {
    schemas: {
      Error: { type: 'object', properties: { error: { type: 'object', properties: { code: { type: 'string' }, message: { type: 'string' } }, required: ['code', 'message'] } } },
      FunctionSpecInput: {
        type: 'object',
        required: ['name', 'source'],
        additionalProperties: false,
        properties: {
          name: { type: 'string', description: 'DNS label' },
          runtime: { type: 'string', enum: [...RUNTIME_KINDS] },
          source: {
            oneOf: [
              { type: 'object', properties: { kind: { enum: ['thread'] }, module: { type: 'string', description: 'Path of an ES module exporting handler' } } },
              { type: 'object', properties: { kind: { enum: ['process'] }, command: { type: 'string' }, args: { type: 'array', items: { type: 'string' } } } },
              { type: 'object', properties: { kind: { enum: ['builtin'] }, workload: { enum: ['empty', 'echo', 'trace'] } } },
            ],
          },
          cpuMilli: { type: 'integer', description: 'millicores' },
          memoryMiB: { type: 'integer', description: 'MiB' },
          concurrency: { type: 'integer', description: 'max in-flight requests per sandbox' },
          timeoutMs: { type: 'integer', description: 'per-invocation timeout, ms' },
          queueDepth: { type: 'integer', description: 'bound of the cold-start queue, requests' },
          queueTimeoutMs: { type: 'integer', description: 'deadline while queued, ms' },
          maxBodyBytes: { type: 'integer', description: 'bytes' },
          env: { type: 'object', additionalProperties: { type: 'string' } },
          scaling: { type: 'object', description: 'Autoscaler fields (tickMs, stableWindowMs, panicWindowMs, panicThresholdPercent, maxScaleUpRate, maxScaleDownRate, targetUtilizationPercent, minScale, maxScale, keepAliveMs)' },
        },
      },
      LogLine: {
        type: 'object',
        properties: {
          t: { type: 'integer', description: 'when written, ms since the Unix epoch' },
          stream: { enum: ['stdout', 'stderr'] },
          sandboxId: { type: 'string' },
          nodeId: { type: 'string' },
          seq: { type: 'integer', description: "position in the sandbox's output, from 1" },
          line: { type: 'string' },
        },
      },
      FunctionView: { type: 'object', properties: { spec: { type: 'object' }, status: { $ref: '#/components/schemas/FunctionStatus' }, autoscaler: { type: 'object', nullable: true } } },
      FunctionStatus: {
        type: 'object',
        nullable: true,
        properties: {
          version: { type: 'integer', description: 'template version new sandboxes run (answers carry it in x-dirigent-version)' },
          state: { type: 'string', enum: ['active', 'updating', 'failed'], description: "Lambda's function state" },
          stateReason: { type: 'string', nullable: true },
          failures: {
            type: 'object',
            nullable: true,
            description: 'creation failures of the current version since its last successful start or update',
            properties: { count: { type: 'integer' }, lastError: { type: 'string' }, lastAt: { type: 'number', description: 'ms since the epoch' }, backoffMs: { type: 'integer' }, retryAt: { type: 'number', description: 'ms since the epoch' } },
          },
          desired: { type: 'integer' },
          creating: { type: 'integer' },
          ready: { type: 'integer' },
          draining: { type: 'integer' },
          outdated: { type: 'integer', description: 'sandboxes of older versions still creating or routed' },
          sandboxes: { type: 'array', items: { type: 'object' } },
        },
      },
    },
  },
} as const;
