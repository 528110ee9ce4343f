// Health: the last hour from GET /v1/metrics/history as inline SVG charts,
// the current load from GET /v1/pressure, and the hosts serving.
import { api, el, bytes } from './api.js';
import { act } from './app.js';

const $ = (id) => document.getElementById(id);
const NS = 'http://www.w3.org/2000/svg';
let timer = null;

const CHARTS = [
  ['Live browsers', (s) => s.live_browsers, (v) => v.toFixed(0)],
  ['Leased sessions', (s) => s.leased, (v) => v.toFixed(0)],
  ['Queued acquires', (s) => s.queued, (v) => v.toFixed(0)],
  ['Warm pool (available)', (s) => s.pool_available, (v) => v.toFixed(0)],
  ['Acquire latency p50 (ms)', (s) => s.acquire_p50_ms, (v) => `${v.toFixed(0)} ms`],
  ['Machine memory in use', (s) => s.memory_fraction === null ? null : s.memory_fraction * 100, (v) => `${v.toFixed(0)} %`],
  ['Service memory (RSS)', (s) => s.rss_bytes, (v) => bytes(v)],
];

function svg(tag, attrs) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  return e;
}

function chart(title, samples, get, fmt, span) {
  const W = 360, H = 120, L = 4, B = 14;
  const now = Date.now();
  const pts = samples.map((s) => [s.at_ms, get(s)]).filter(([, v]) => v !== null && v !== undefined);
  const max = Math.max(1, ...pts.map(([, v]) => v));
  const x = (t) => L + (W - L) * (1 - (now - t) / span);
  const y = (v) => (H - B) - (H - B - 4) * (v / max);
  const g = svg('svg', { class: 'chart', viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': `${title} over the last hour` });
  g.append(svg('line', { x1: L, y1: H - B, x2: W, y2: H - B }));
  if (pts.length) {
    g.append(svg('polyline', { points: pts.map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(' ') }));
    const [lt, lv] = pts[pts.length - 1];
    g.append(svg('circle', { cx: x(lt).toFixed(1), cy: y(lv).toFixed(1), r: 2.5 }));
  }
  const t1 = svg('text', { x: L, y: H - 2 }); t1.textContent = '-60 min';
  const t2 = svg('text', { x: W - 24, y: H - 2 }); t2.textContent = 'now';
  const t3 = svg('text', { x: L, y: 10 }); t3.textContent = `max ${fmt(max)}`;
  g.append(t1, t2, t3);
  const last = pts.length ? fmt(pts[pts.length - 1][1]) : 'no data yet';
  return el('figure', {}, el('figcaption', {}, `${title}: `, el('span', { class: 'muted' }, last)), g);
}

async function refresh() {
  const [h, p] = await Promise.all([
    act(() => api('GET', '/v1/metrics/history')),
    api('GET', '/v1/pressure').catch((e) => (e.status === 503 ? null : null)),
  ]);
  if (!h) return;
  const span = h.capacity * h.interval_seconds * 1000;
  $('h-now').textContent = p ? `now: ${p.live}/${p.max_live} live, ${p.leased} leased, ${p.queued} queued, pool ${p.pool}, memory ${(p.memory * 100).toFixed(0)} %, ${p.available ? 'available' : `unavailable (${p.reason})`}` : '';
  $('h-hosts').replaceChildren(el('table', { 'aria-label': 'Hosts' },
    el('thead', {}, el('tr', {}, ['Host', 'State', 'Up for', 'Max live browsers'].map((t) => el('th', { scope: 'col' }, t)))),
    el('tbody', {}, h.hosts.map((x) => el('tr', {},
      el('td', { class: 'mono' }, x.host_id ? `${x.host_id} ${x.listen}${x.self ? ' (this host)' : ''}` : x.listen),
      el('td', {}, x.alive === false ? 'judged dead' : 'serving'),
      el('td', {}, x.uptime_seconds === undefined ? '—' : `${Math.round(x.uptime_seconds / 60)} min`),
      el('td', {}, x.max_live === undefined ? '—' : String(x.max_live)))))));
  $('h-charts').replaceChildren(...CHARTS.map(([t, g, f]) => chart(t, h.samples, g, f, span)));
}

export function startHealth() {
  stopHealth();
  refresh();
  timer = setInterval(refresh, 10000);
}

export function stopHealth() {
  if (timer) clearInterval(timer);
  timer = null;
}
