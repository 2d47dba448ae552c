// The inspection console: plain browser JavaScript, no framework, no build step. The page subscribes to what
// it shows: one server-sent-event stream (/api/v1/console/stream) watching the one to three admin API views
// of the screen on view (their queries included: the page of actors, the actor opened), and redraws when the
// server pushes a changed view. A new screen closes the stream and opens another: nothing off screen is read.
// Everything shown is built with DOM nodes and textContent, never HTML strings: actor ids, function names and
// states are user input, and this way none of it can become markup.
'use strict';

/** Samples kept per function for the charts: the last 5 minutes, ms. */
const HISTORY_MS = 5 * 60 * 1000;
const PAGE = 50;
const SORTS = [
  ['mailbox', 'mailbox'],
  ['processed', 'processed'],
  ['p99Us', 'p99 step'],
  ['meanUs', 'mean step'],
  ['restarts', 'restarts'],
  ['lastActiveAt', 'last message'],
  ['address', 'name'],
];

const main = document.getElementById('main');
const errorBox = document.getElementById('error');
const updated = document.getElementById('updated');
const leaderBox = document.getElementById('leader');
const paused = document.getElementById('paused');
const tokenBox = document.getElementById('token');
const liveBox = document.getElementById('live');
/** name -> [{ t, invocations, coldStarts, ready, inFlight, queued }] within HISTORY_MS */
const samplesByFunction = new Map();
/** `process/shard/address` -> { at, processed }: the previous update's counts, for the rate column of the actors shown. */
let lastSeen = new Map();
/** The screen's stream, its views' latest bodies (by watch index) and how to draw them. */
let screen;
/** The screen's controls that must outlive redraws (what someone is typing): built once per screen. */
let controls;

// ---- DOM building: text only -------------------------------------------------------------------

/** An element with attributes (strings; `on*` functions become listeners) and children (nodes, or text). */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (key === 'class') el.className = String(value);
    // Through the CSSOM: the page's policy (no inline styles) refuses a style attribute.
    else if (key === 'width') el.style.width = String(value);
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

function svg(tag, attrs, ...children) {
  const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [key, value] of Object.entries(attrs || {})) el.setAttribute(key, String(value));
  for (const child of children) el.append(child);
  return el;
}

function table(id, headers, rows) {
  return h('table', { id },
    h('thead', null, h('tr', null, headers.map((x) => (x instanceof Node ? x : h('th', { class: x.startsWith('=') || x === '' ? 'num' : '' }, x.replace(/^[#=]/, '')))))),
    h('tbody', null, rows));
}

function num(value, cls) {
  return h('td', { class: `num ${cls || ''}` }, value === null || value === undefined ? '–' : value);
}

function us(value) {
  if (!value) return '–';
  return value >= 1000 ? `${(value / 1000).toFixed(value >= 10000 ? 0 : 1)} ms` : `${value} µs`;
}

/** A node's pool of started generic sandboxes (stem cells): idle / target, their memory (in all, per stem, the cap), and how cold starts began. */
function poolText(pool) {
  if (!pool) return '–';
  const each = pool.idle > 0 ? `, ${Math.round((pool.idleMiB / pool.idle) * 10) / 10} each` : '';
  return `${pool.idle} / ${pool.target} (${pool.idleMiB} MiB${each}, cap ${pool.capMiB}; starts ${pool.fromPool} pool, ${pool.fresh} fresh)`;
}

function age(ms) {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '–';
  if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`;
  if (ms < 120000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.round(ms / 60000)} min`;
}

/** A small line chart of [t (ms), value] points over the last HISTORY_MS up to the last point, scaled to its own maximum. */
function sparkline(points, width = 160, height = 28) {
  const max = Math.max(1e-9, ...points.map(([, v]) => v));
  const end = points.length ? points[points.length - 1][0] : 0;
  const xy = points.map(([t, v]) => `${(width - ((end - t) / HISTORY_MS) * width).toFixed(1)},${(height - 2 - (v / max) * (height - 4)).toFixed(1)}`).join(' ');
  return svg('svg', { class: 'spark', width, height, viewBox: `0 0 ${width} ${height}`, role: 'img' },
    svg('line', { x1: 0, y1: height - 1, x2: width, y2: height - 1 }),
    svg('polyline', { points: xy }));
}

// ---- routing and the live stream -----------------------------------------------------------------

function route() {
  const [view, query] = (location.hash.slice(1) || 'functions').split('?');
  return { view, params: new URLSearchParams(query || '') };
}

function go(view, params) {
  const query = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) if (v !== undefined && v !== null && v !== '') query.set(k, String(v));
  const text = query.toString();
  location.hash = `${view}${text ? `?${text}` : ''}`;
}

/** Each screen: the views it watches (`view?query`, as the JSON endpoints take them) and how it draws them. */
const SCREENS = {
  cluster: { watches: () => ['cluster', 'functions', 'actors?kind=function&sort=address&limit=1000'], draw: clusterView, controls: () => null },
  functions: { watches: () => ['functions', 'history'], draw: functionsView, controls: scaleForm },
  actors: { watches: actorsWatches, draw: actorsView, controls: () => null },
  // watch=1: the actor keeps its recent messages while this stream reads it (10 s after the last read).
  actor: { watches: (p) => [`actor?${new URLSearchParams({ process: p.get('process') || '', shard: p.get('shard') || '', name: p.get('name') || '', watch: '1' })}`], draw: actorView, controls: () => null },
};

/** Opens the stream for the screen in the address bar (closing the previous one). */
function subscribe() {
  if (screen) screen.source.close();
  const { view, params } = route();
  const name = Object.hasOwn(SCREENS, view) ? view : 'functions';
  const spec = SCREENS[name];
  for (const a of document.querySelectorAll('nav a')) a.classList.toggle('active', a.dataset.view === name || (name === 'actor' && a.dataset.view === 'actors'));
  const watches = spec.watches(params);
  const query = new URLSearchParams();
  for (const w of watches) query.append('watch', w);
  const source = new EventSource(`/api/v1/console/stream?${query}`);
  const mine = { source, name, params, spec, bodies: new Array(watches.length), errors: new Array(watches.length) };
  screen = mine;
  main.dataset.state = 'loading';
  controls = spec.controls(params);
  liveBox.textContent = 'connecting…';
  source.addEventListener('open', () => { if (screen === mine) liveBox.textContent = 'live'; });
  source.addEventListener('update', (e) => {
    const { i, body } = JSON.parse(e.data);
    mine.bodies[i] = body;
    mine.errors[i] = undefined;
    if (body && Array.isArray(body.functions) && body.functions.every((f) => typeof f.invocations === 'number')) sample(body);
    else if (body && body.functions && typeof body.functions === 'object') backfill(body.functions);
    if (screen === mine) draw();
  });
  source.addEventListener('view-error', (e) => {
    const { i, error } = JSON.parse(e.data);
    mine.errors[i] = error;
    if (screen === mine) draw();
  });
  source.addEventListener('error', async () => {
    if (screen !== mine) return;
    // EventSource reconnects by itself (after the server's `retry`), on this replica or through it to a new leader.
    if (source.readyState !== EventSource.CLOSED) return void (liveBox.textContent = 'reconnecting…');
    // Closed for good: the stream was refused (a bad query in the address bar, too many streams). Say why.
    liveBox.textContent = 'disconnected';
    const res = await fetch(`/api/v1/console/stream?${query}`, { headers: { accept: 'application/json' } }).catch(() => null);
    const body = res && !res.ok ? await res.json().catch(() => null) : null;
    if (res && res.ok) res.body.cancel();
    if (screen === mine) showError(body && body.error ? `${body.error.code}: ${body.error.message}` : 'the stream closed; reload to try again');
  });
}

function draw() {
  const s = screen;
  const error = s.errors.find((x) => x !== undefined);
  if (error) return showError(`${error.code}: ${error.message}`);
  if (paused.checked || s.bodies.some((b) => b === undefined)) return;
  const content = s.spec.draw(s.params, ...s.bodies);
  main.replaceChildren(...[content, controls].flat(Infinity).filter((x) => x !== null && x !== undefined && x !== false));
  main.dataset.state = 'ready';
  main.dataset.view = s.name;
  errorBox.hidden = true;
  updated.textContent = `updated ${new Date().toLocaleTimeString()}`;
}

function showError(text) {
  errorBox.hidden = false;
  errorBox.textContent = `Could not read the cluster: ${text}`;
}

/** Keeps the last HISTORY_MS of each function's counters, for its rate and charts (from whichever screen shows them). */
function sample(f) {
  for (const fn of f.functions) {
    const samples = samplesByFunction.get(fn.name) || [];
    if (samples.length && samples[samples.length - 1].t >= f.at) continue;
    samples.push({ t: f.at, invocations: fn.invocations, coldStarts: fn.coldStarts, ready: fn.ready, inFlight: fn.inFlight, queued: fn.queued });
    while (samples.length && samples[0].t < f.at - HISTORY_MS) samples.shift();
    samplesByFunction.set(fn.name, samples);
  }
  for (const name of samplesByFunction.keys()) if (!f.functions.some((fn) => fn.name === name)) samplesByFunction.delete(name);
}

/** Adds the leader's samples (the history view: the minutes before this page opened) under the page's own. */
function backfill(history) {
  for (const [name, older] of Object.entries(history)) {
    const samples = samplesByFunction.get(name) || [];
    const byTime = new Map([...older, ...samples].map((s) => [s.t, s]));
    const merged = [...byTime.values()].sort((a, b) => a.t - b.t);
    const end = merged.length ? merged[merged.length - 1].t : 0;
    samplesByFunction.set(name, merged.filter((s) => s.t >= end - HISTORY_MS));
  }
}

// ---- actions -------------------------------------------------------------------------------------

/** POSTs an action with the token typed in the header; the answer (done, or why not) shows in #action-result. */
async function act(action, body) {
  const result = document.getElementById('action-result');
  result.hidden = false;
  result.className = 'muted';
  result.textContent = `${action}…`;
  const headers = { 'content-type': 'application/json', accept: 'application/json' };
  if (tokenBox.value) headers.authorization = `Bearer ${tokenBox.value}`;
  try {
    const res = await fetch(`/api/v1/console/${action}`, { method: 'POST', headers, body: JSON.stringify(body) });
    const answer = await res.json().catch(() => null);
    result.className = res.ok ? 'ok' : 'bad';
    result.textContent = res.ok ? `${action}: done` : `${action} refused (${res.status}) ${answer && answer.error ? `${answer.error.code}: ${answer.error.message}` : res.statusText}`;
  } catch (error) {
    result.className = 'bad';
    result.textContent = `${action} failed: ${error.message}`;
  }
}

/** The functions screen's scale form: outside the redrawn part, so that typing survives updates. */
function scaleForm() {
  const fn = h('input', { name: 'function', list: 'function-names', placeholder: 'function', size: 16 });
  const min = h('input', { name: 'minScale', type: 'number', min: 0, placeholder: 'min', size: 4 });
  const max = h('input', { name: 'maxScale', type: 'number', min: 0, placeholder: 'max', size: 4 });
  const int = (input) => (input.value === '' ? undefined : Number(input.value));
  return h('form', { id: 'scale-form', class: 'filters', onsubmit: (e) => { e.preventDefault(); act('scale', { function: fn.value, minScale: int(min), maxScale: int(max) }); } },
    h('b', null, 'Scale'), fn, h('datalist', { id: 'function-names' }), 'sandboxes', min, 'to', max,
    h('button', { type: 'submit' }, 'set'), h('span', { class: 'muted' }, 'needs the admin token (above)'));
}

// ---- cluster -------------------------------------------------------------------------------------

function clusterView(params, c, f, fnActors) {
  showLeader(c);
  const r = c.reconstruction;
  return [
    h('h2', null, 'Control plane'),
    h('div', { class: 'cards' },
      card('term', c.term), card('serving', c.serving ? 'yes' : 'rebuilding'), card('functions', c.functions),
      card('reconstruction', r.phase === 'serving' ? `done in ${r.tookMs} ms` : `waiting: ${r.workersQueried}/${r.workersExpected} workers`),
      card('sandboxes adopted', r.sandboxesAdopted)),
    r.workersMissing.length ? h('p', { class: 'warn' }, `workers missing since the leader started: ${r.workersMissing.join(', ')}`) : null,
    h('h2', null, 'Replicas'),
    table('replicas-table', ['#id', '#role', '=term', '#readiness', '#admin'], c.replicas.map((x) =>
      h('tr', null, h('td', null, x.id), h('td', { class: x.role === 'unreachable' ? 'bad' : x.role === 'leader' ? 'ok' : '' }, x.role), num(x.term), h('td', null, x.readiness), h('td', null, x.adminUrl)))),
    h('h2', null, 'Workers'),
    table('workers-table', ['#node', '#address', '#state', '=slots', '=cpu (milli)', '=memory (MiB)', '=sandboxes', '=pool (idle / target)', '=heartbeat age', '#action (admin token)'], c.workers.map((n) =>
      h('tr', { 'data-node': n.nodeId }, h('td', null, n.nodeId), h('td', null, n.address),
        h('td', { class: n.alive ? (n.schedulable ? 'ok' : 'warn') : 'bad' }, n.alive ? (n.schedulable ? 'alive' : 'cordoned') : 'dead'),
        num(`${n.allocated.slots} / ${n.capacity.slots}`), num(`${n.allocated.cpuMilli} / ${n.capacity.cpuMilli}`), num(`${n.allocated.memoryMiB} / ${n.capacity.memoryMiB}`),
        num(n.sandboxes), num(poolText(n.pool)), num(age(n.heartbeatAgeMs), n.heartbeatAgeMs > 3000 ? 'warn' : ''),
        h('td', null, h('button', { class: 'drain', onclick: () => act('drain', { node: n.nodeId, drain: n.schedulable }) }, n.schedulable ? 'drain' : 'uncordon'))))),
    h('h2', null, 'Placement'),
    placement(c.workers, f.functions, fnActors.items),
    h('h2', null, 'Data planes'),
    table('dataplanes-table', ['#id', '#invoke', '#compat', '#link'], c.dataplanes.map((d) =>
      h('tr', null, h('td', null, d.id), h('td', null, d.invokeAddress), h('td', null, d.compatAddress || '–'), h('td', { class: d.connected ? 'ok' : 'bad' }, d.connected ? 'connected' : 'disconnected')))),
    h('h2', null, 'Processes and shards'),
    c.unreachable.length ? h('p', { class: 'bad' }, `did not answer: ${c.unreachable.join(', ')}`) : null,
    table('shards-table', ['#process', '=shard', '=actors', '=processed', '=mailbox', '=restarts', '=dead letters', '=pending asks', '=p50 step', '=p99 step'], c.processes.flatMap((p) => p.shards.map((s) =>
      h('tr', { class: 'clickable', onclick: () => go('actors', { process: p.process, shard: s.shard, sort: 'mailbox' }) },
        h('td', null, p.process), num(s.shard), num(s.actors), num(s.processed), num(s.mailbox, s.mailbox > 100 ? 'warn' : ''), num(s.restarts, s.restarts ? 'warn' : ''),
        num(s.deadLetters), num(s.pendingAsks), num(s.counters ? us(s.p50Us) : 'off'), num(s.counters ? us(s.p99Us) : 'off'))))),
  ];
}

/** Which sandbox runs on which node (one square each, coloured by function), and which shard hosts each function. */
function placement(workers, functions, fnActors) {
  const colour = new Map(functions.map((fn, i) => [fn.name, `hsl(${(i * 137) % 360} 55% 45%)`]));
  const byNode = new Map(workers.map((n) => [n.nodeId, []]));
  for (const fn of functions) for (const s of fn.sandboxes) (byNode.get(s.nodeId) || byNode.set(s.nodeId, []).get(s.nodeId)).push({ fn: fn.name, ...s });
  const SIZE = 14;
  const rows = [...byNode].map(([nodeId, sandboxes]) => {
    const node = workers.find((n) => n.nodeId === nodeId);
    const slots = Math.max(node ? node.capacity.slots : 0, sandboxes.length);
    const shown = Math.min(slots, 64);
    const picture = svg('svg', { class: 'placement', width: shown * (SIZE + 2), height: SIZE + 2, role: 'img' },
      ...Array.from({ length: shown }, (_, i) => {
        const s = sandboxes[i];
        const rect = svg('rect', { x: i * (SIZE + 2), y: 1, width: SIZE, height: SIZE, rx: 2, fill: s ? colour.get(s.fn) : '#e4e4de', opacity: s && s.phase !== 'ready' ? 0.45 : 1 });
        if (s) rect.append(svg('title', null, document.createTextNode(`${s.fn} · ${s.sandboxId} · ${s.phase}`)));
        return rect;
      }));
    return h('tr', { 'data-node': nodeId }, h('td', null, nodeId), h('td', null, picture), num(`${sandboxes.length} / ${slots}${slots > shown ? ' (64 shown)' : ''}`));
  });
  const shardOf = new Map(fnActors.map((a) => [a.address.replace(/^function\//, '').replace(/@.*$/, ''), `${a.process}/${a.shard}`]));
  return [
    table('placement-table', ['#node', '#sandboxes (one square each; faded: not ready)', '=used / slots'], rows),
    h('p', null, functions.map((fn) => h('span', { class: 'legend' }, svg('svg', { width: 10, height: 10 }, svg('rect', { width: 10, height: 10, rx: 2, fill: colour.get(fn.name) })), `${fn.name} (function actor on ${shardOf.get(fn.name) || '?'}) `))),
  ];
}

function card(label, value) {
  return h('div', { class: 'card' }, h('span', { class: 'muted' }, label), h('b', null, value));
}

function showLeader(c) {
  const leader = c.replicas.find((r) => r.role === 'leader');
  leaderBox.textContent = `leader ${leader ? leader.id : c.replicaId} · term ${c.term}${c.serving ? '' : ' · rebuilding'}`;
}

// ---- functions -----------------------------------------------------------------------------------

function functionsView(params, f) {
  const names = controls && controls.querySelector('#function-names');
  if (names) names.replaceChildren(...f.functions.map((fn) => h('option', { value: fn.name })));
  if (f.functions.length === 0) return [h('h2', null, 'Functions'), h('p', { id: 'no-functions', class: 'muted' }, 'No function is deployed. dirigent deploy <name> --module <file.mjs>')];
  return [
    h('h2', null, 'Functions'),
    table('functions-table', ['#name', '#state', '=desired', '=creating', '=ready', '=draining', '#panic', '=queued', '=in flight', '=invocations', '=req/s', '#req/s, last 5 min', '=cold starts', '=cold start p50', '=cold start p99', '#rejected', '#ready, last 5 min'],
      f.functions.map((fn) => {
        const samples = samplesByFunction.get(fn.name) || [];
        const rates = rateSeries(samples);
        const rejected = Object.entries(fn.rejected).map(([status, n]) => `${status}×${n}`).join(' ');
        return h('tr', { 'data-function': fn.name, class: 'clickable', onclick: () => go('actors', { kind: 'function', sort: 'processed' }) },
          h('td', null, h('b', null, fn.name), h('span', { class: 'muted' }, ` v${fn.version} ${fn.runtime}`)),
          h('td', { class: fn.state === 'active' ? 'ok' : 'bad', title: fn.stateReason || '' }, fn.state),
          num(fn.desired), num(fn.creating), num(fn.ready), num(fn.draining),
          h('td', { class: fn.panic ? 'warn' : 'muted' }, fn.panic ? 'PANIC' : 'no'),
          num(fn.queued, fn.queued ? 'warn' : ''), num(fn.inFlight), h('td', { class: 'num invocations' }, fn.invocations),
          num(rates.length ? rates[rates.length - 1][1].toFixed(1) : '–'), h('td', null, sparkline(rates)),
          num(fn.coldStarts), num(fn.coldStartP50Ms === null ? '–' : `≤${fn.coldStartP50Ms} ms`), num(fn.coldStartP99Ms === null ? (fn.coldStarts ? '>10 s' : '–') : `≤${fn.coldStartP99Ms} ms`),
          h('td', { class: rejected ? 'warn' : 'muted' }, rejected || 'none'),
          h('td', null, sparkline(samples.map((s) => [s.t, s.ready]))));
      })),
    h('h2', null, 'Sandboxes'),
    table('sandboxes-table', ['#function', '#sandbox', '#node', '#phase', '=version'], f.functions.flatMap((fn) => fn.sandboxes.map((s) =>
      h('tr', null, h('td', null, fn.name), h('td', null, s.sandboxId), h('td', null, s.nodeId), h('td', null, s.phase), num(s.version))))),
    h('p', { class: 'muted' }, 'Rates are counted by this page from the cumulative invocation counters (the data planes report them every router tick). Cold-start times are the time a request queued for a new sandbox.'),
  ];
}

/** [t, invocations per second] between consecutive samples. */
function rateSeries(samples) {
  const rates = [];
  for (let i = 1; i < samples.length; i++) {
    const dt = (samples[i].t - samples[i - 1].t) / 1000;
    rates.push([samples[i].t, dt > 0 ? Math.max(0, samples[i].invocations - samples[i - 1].invocations) / dt : 0]);
  }
  return rates;
}

// ---- actors --------------------------------------------------------------------------------------

function actorsQuery(params) {
  return {
    kind: params.get('kind') || '',
    process: params.get('process') || '',
    shard: params.get('shard') || '',
    sort: params.get('sort') || 'mailbox',
    offset: Number(params.get('offset') || 0),
  };
}

function actorsWatches(params) {
  const q = actorsQuery(params);
  const query = new URLSearchParams({ sort: q.sort, offset: String(q.offset), limit: String(PAGE) });
  for (const key of ['kind', 'process', 'shard']) if (q[key] !== '') query.set(key, q[key]);
  return ['kinds', `actors?${query}`];
}

function actorsView(params, kinds, page) {
  const q = actorsQuery(params);
  const processes = [...new Set(kinds.kinds.flatMap((k) => k.where.map((w) => w.process)))].sort();
  const set = (change) => go('actors', { ...q, offset: 0, ...change });
  const select = (name, options, value) => h('select', { name, onchange: (e) => set({ [name]: e.target.value }) },
    options.map(([v, label]) => h('option', { value: v, selected: v === value ? 'selected' : false }, label)));
  const maxProcessed = Math.max(1, ...kinds.kinds.map((k) => k.processed));
  const seen = lastSeen;
  lastSeen = new Map(page.items.map((a) => [`${a.process}/${a.shard}/${a.address}`, { at: page.at, processed: a.processed }]));
  return [
    h('h2', null, 'Actors by kind'),
    table('kinds-table', ['#kind', '=actors', '=processed', '', '=mailbox', '=restarts', '=p50 step', '=p99 step', '#where (process/shard: actors)'], kinds.kinds.map((k) =>
      h('tr', { class: 'clickable', 'data-kind': k.kind, onclick: () => set({ kind: k.kind }) },
        h('td', null, h('b', null, k.kind)), num(k.actors), num(k.processed),
        h('td', null, h('span', { class: 'barbox' }, h('span', { class: 'bar', width: `${((100 * k.processed) / maxProcessed).toFixed(0)}%` }))),
        num(k.mailbox, k.mailbox > 100 ? 'warn' : ''), num(k.restarts, k.restarts ? 'warn' : ''), num(us(k.p50Us)), num(us(k.p99Us)),
        h('td', { class: 'muted' }, k.where.map((w) => `${w.process}/${w.shard}: ${w.actors}`).join(', '))))),
    kinds.unreachable.length ? h('p', { class: 'bad' }, `did not answer: ${kinds.unreachable.join(', ')}`) : null,
    h('h2', null, 'Actors'),
    h('div', { class: 'filters' },
      h('label', null, 'kind ', select('kind', [['', 'all'], ...kinds.kinds.map((k) => [k.kind, k.kind])], q.kind)),
      h('label', null, 'process ', select('process', [['', 'all'], ...processes.map((p) => [p, p])], q.process)),
      h('label', null, 'shard ', h('input', { name: 'shard', type: 'number', min: 0, max: 255, size: 3, value: q.shard, onchange: (e) => set({ shard: e.target.value }) })),
      h('label', null, 'sort by ', select('sort', SORTS, q.sort)),
      h('span', { id: 'actors-total', class: 'muted' }, `${page.total === 0 ? 0 : q.offset + 1}–${q.offset + page.items.length} of ${page.total}`),
      h('button', { disabled: q.offset === 0 ? 'disabled' : false, onclick: () => go('actors', { ...q, offset: Math.max(0, q.offset - PAGE) }) }, '‹ previous'),
      h('button', { id: 'next-page', disabled: q.offset + PAGE >= page.total ? 'disabled' : false, onclick: () => go('actors', { ...q, offset: q.offset + PAGE }) }, 'next ›')),
    page.unreachable.length ? h('p', { class: 'bad' }, `did not answer (their actors are missing): ${page.unreachable.join(', ')}`) : null,
    table('actors-table', [
      '#actor', '#kind', '#process', '=shard',
      ...[['mailbox', 'mailbox'], ['processed', 'processed'], ['', 'msg/s'], ['meanUs', 'mean step'], ['p99Us', 'p99 step'], ['restarts', 'restarts'], ['lastActiveAt', 'last message']].map(([key, label]) =>
        key ? h('th', { class: `num sortable ${q.sort === key ? 'sorted' : ''}`, onclick: () => set({ sort: key }) }, label) : h('th', { class: 'num', title: 'since the previous update, for the actors on screen' }, label)),
    ], page.items.map((a) =>
      h('tr', { class: 'clickable', 'data-actor': a.address, onclick: () => go('actor', { process: a.process, shard: a.shard, name: a.address }) },
        h('td', null, a.address), h('td', null, a.kind), h('td', null, a.process), num(a.shard),
        num(a.mailbox, a.mailbox > 100 ? 'bad' : a.mailbox > 0 ? 'warn' : ''), num(a.processed), num(rateOf(a, page.at, seen)), num(us(a.meanUs)), num(us(a.p99Us)), num(a.restarts, a.restarts ? 'warn' : ''),
        num(`${age(page.at - a.lastActiveAt)} ago`)))),
  ];
}

/** Messages per second since this actor was last on screen (the previous update), or – when it was not. */
function rateOf(a, at, seen) {
  const before = seen.get(`${a.process}/${a.shard}/${a.address}`);
  if (!before || at <= before.at || a.processed < before.processed) return '–';
  return ((a.processed - before.processed) / ((at - before.at) / 1000)).toFixed(1);
}

function actorView(params, a) {
  const s = a.stats;
  return [
    h('p', null, h('a', { href: '#actors', onclick: (e) => { e.preventDefault(); window.history.length > 1 ? window.history.back() : go('actors'); } }, '‹ actors')),
    h('h2', { id: 'actor-name' }, a.name),
    h('p', { class: 'muted' }, `${s.kind} on ${a.process}, shard ${a.shard}`),
    h('div', { class: 'cards' },
      card('mailbox', s.mailbox), card('processed', s.processed), card('restarts', s.restarts),
      card('step p50 / p90 / p99', `${us(s.p50Us)} / ${us(s.p90Us)} / ${us(s.p99Us)}`), card('mean step', us(s.meanUs)),
      card('last message', `${age(a.at - s.lastActiveAt)} ago`)),
    a.process === 'control-plane'
      ? h('p', null, h('button', { id: 'restart-actor', onclick: () => act('restart', { process: a.process, shard: a.shard, name: a.name }) }, 'restart this actor'), h('span', { class: 'muted' }, ' from its init, as after a crash (needs the admin token)'))
      : null,
    h('h2', null, 'State'),
    h('div', { id: 'actor-line', class: 'line' }, a.line),
    h('pre', { id: 'actor-state' }, JSON.stringify(a.state, null, 2)),
    h('h2', null, 'Recent messages'),
    a.recent && a.recent.length
      ? table('recent-table', ['#ago', '#message', '#from'], a.recent.slice().reverse().map((m) =>
        h('tr', null, h('td', { class: 'muted' }, `${age(a.at - m.at)}`), h('td', { class: 'line-cell' }, m.message), h('td', { class: 'muted' }, m.from || '–'))))
      : h('p', { id: 'recent-empty', class: 'muted' }, 'None since this view opened (messages are kept only while someone looks).'),
  ];
}

window.addEventListener('hashchange', subscribe);
paused.addEventListener('change', () => { if (!paused.checked && screen) draw(); });
subscribe();
