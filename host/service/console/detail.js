// One session: facts, actions (extend, fork, check, delete, export), and
// its cookies per site (values hidden until revealed), origins with
// storage sizes, tabs, snapshot history with rollback, execution context,
// audit trail.
import { api, el, bytes, when, enc } from './api.js';
import { show, act, listSessions } from './app.js';
import { openLive } from './live.js';

const $ = (id) => document.getElementById(id);
let current = null;

export async function showDetail(id) {
  current = id;
  show('detail');
  $('d-body').replaceChildren(el('p', { class: 'muted' }, 'Loading…'));
  const s = await act(() => api('GET', `/v1/sessions/${enc(id)}`));
  if (!s) return;
  $('detail-h').textContent = `Session ${s.name || s.id}`;
  facts(s);
  const [state, snaps, ctx, audit] = await Promise.all([
    act(() => api('GET', `/v1/sessions/${enc(id)}/state`)),
    act(() => api('GET', `/v1/sessions/${enc(id)}/snapshots`)),
    act(() => api('GET', `/v1/sessions/${enc(id)}/context`)),
    act(() => api('GET', `/v1/audit?session=${enc(id)}&limit=50`)),
  ]);
  if (current !== id) return;
  $('d-body').replaceChildren(
    el('h3', {}, 'Cookies by site'),
    el('div', { id: 'd-cookies' }, state ? cookieTables(state, false) : ''),
    el('button', { type: 'button', id: 'd-reveal', onclick: () => reveal(id) }, 'Reveal values'),
    el('h3', {}, 'Origins'),
    state ? origins(state) : '',
    el('h3', {}, 'Tabs'),
    tabs(s, state),
    el('h3', {}, 'Snapshots'),
    snaps ? snapshots(id, snaps.snapshots) : '',
    el('h3', {}, 'Execution context'),
    context(id, ctx),
    el('h3', {}, 'Audit trail'),
    audit ? auditTable(audit.events) : '',
  );
}

function facts(s) {
  const d = $('d-facts');
  const row = (k, v) => [el('dt', {}, k), el('dd', {}, v)];
  d.replaceChildren(
    ...row('Id', el('span', { class: 'mono' }, s.id)),
    ...row('State', el('span', { class: `state-${s.state}` }, s.state)),
    ...row('Tags', (s.tags || []).join(', ') || '—'),
    ...row('Created', s.created_at),
    ...row('Expires', s.expires_at ? `${s.expires_at} (${when(s.expires_at)})` : 'never'),
    ...row('Last used', s.last_used_at ? `${s.last_used_at} (${when(s.last_used_at)})` : '—'),
    ...row('Lease', s.lease ? `${s.lease.holder}, until ${s.lease.expires_at}` : 'none'),
    ...row('Size', `${bytes(s.sizes?.stored_bytes)} stored, ${bytes(s.sizes?.logical_bytes)} logical, ${s.sizes?.snapshots ?? 0} snapshots`),
    ...row('Login check', s.last_check ? `${s.last_check.ok ? 'ok' : 'failed'} at ${s.last_check.at}: ${s.last_check.detail}` : (s.auth_check ? 'not run yet' : 'none configured')),
  );
}

function cookieTables(state, values) {
  if (!state.sites.some((x) => x.cookies.length)) return el('p', { class: 'muted' }, 'No cookies.');
  return state.sites.filter((x) => x.cookies.length).map((site) => el('table', { 'aria-label': `Cookies of ${site.site}` },
    el('caption', {}, site.site),
    el('thead', {}, el('tr', {}, ['Name', 'Value', 'Domain', 'Path', 'Flags', 'Expires'].map((h) => el('th', { scope: 'col' }, h)))),
    el('tbody', {}, site.cookies.map((c) => el('tr', {},
      el('td', { class: 'mono' }, c.name),
      el('td', { class: 'mono cookie-value' }, values ? (c.value ?? '') : '••••••'),
      el('td', {}, c.domain), el('td', {}, c.path),
      el('td', {}, [c.http_only && 'HttpOnly', c.secure && 'Secure', c.same_site && `SameSite=${c.same_site}`].filter(Boolean).join(' ')),
      el('td', {}, c.session ? 'session' : (c.expires || '—')),
    ))),
  ));
}

async function reveal(id) {
  // The reveal is an audited API call (state.values).
  const state = await act(() => api('GET', `/v1/sessions/${enc(id)}/state?values=true`));
  if (!state || current !== id) return;
  $('d-cookies').replaceChildren(...[cookieTables(state, true)].flat());
  $('d-reveal').disabled = true;
}

function origins(state) {
  const list = state.sites.flatMap((x) => x.origins);
  if (!list.length) return el('p', { class: 'muted' }, 'No stored origins.');
  return el('table', { 'aria-label': 'Origins' },
    el('thead', {}, el('tr', {}, ['Origin', 'localStorage', 'sessionStorage', 'IndexedDB'].map((h) => el('th', { scope: 'col' }, h)))),
    el('tbody', {}, list.map((o) => el('tr', {},
      el('td', { class: 'mono' }, o.origin),
      el('td', {}, `${o.local_storage.keys} keys, ${bytes(o.local_storage.bytes)}`),
      el('td', {}, `${o.session_storage.keys} keys, ${bytes(o.session_storage.bytes)}`),
      el('td', {}, `${o.indexed_db.databases} dbs, ${o.indexed_db.records} records, ${bytes(o.indexed_db.bytes)}`),
    ))));
}

function tabs(s, state) {
  const list = s.tabs || state?.tabs || [];
  if (!list.length) return el('p', { class: 'muted' }, 'No tabs.');
  return el('ul', {}, list.map((t) => el('li', {}, el('span', {}, t.title || '(untitled)'), ' — ', el('span', { class: 'mono' }, t.url))));
}

function snapshots(id, list) {
  if (!list.length) return el('p', { class: 'muted' }, 'No snapshots.');
  return el('table', { 'aria-label': 'Snapshots' },
    el('thead', {}, el('tr', {}, ['Seq', 'Taken', 'Note', 'Size', 'Cookies', 'Origins', 'Tabs', ''].map((h) => el('th', { scope: 'col' }, h)))),
    el('tbody', {}, [...list].reverse().map((x) => el('tr', {},
      el('td', {}, x.seq), el('td', { title: x.created_at }, when(x.created_at)), el('td', {}, x.note || ''),
      el('td', {}, bytes(x.stored_bytes)), el('td', {}, x.cookies), el('td', {}, x.origins), el('td', {}, x.tabs),
      el('td', {}, el('button', { type: 'button', onclick: async (e) => {
        e.stopPropagation();
        if (!confirm(`Roll session back to snapshot ${x.seq}?`)) return;
        if (await act(() => api('POST', `/v1/sessions/${enc(id)}/rollback`, { body: { seq: x.seq } }))) showDetail(id);
      } }, `Roll back to ${x.seq}`)),
    ))));
}

function context(id, ctx) {
  const ta = el('textarea', { id: 'd-context', 'aria-label': 'Execution context (JSON)' });
  ta.value = JSON.stringify(ctx ?? {}, null, 2);
  return el('div', {}, ta, el('button', { type: 'button', onclick: async () => {
    let v;
    try { v = JSON.parse(ta.value); } catch (e) { return act(() => { throw new Error(`the context is not JSON: ${e.message}`); }); }
    if (await act(() => api('PUT', `/v1/sessions/${enc(id)}/context`, { body: v }))) showDetail(id);
  } }, 'Save context'));
}

function auditTable(events) {
  if (!events.length) return el('p', { class: 'muted' }, 'No events.');
  return el('table', { 'aria-label': 'Audit trail' },
    el('thead', {}, el('tr', {}, ['When', 'Who', 'Action', 'Result', 'Detail'].map((h) => el('th', { scope: 'col' }, h)))),
    el('tbody', {}, [...events].reverse().map((e) => el('tr', {},
      el('td', { title: e.ts || '' }, e.ts || ''), el('td', { class: 'mono' }, e.key_id || ''), el('td', {}, e.action),
      el('td', { class: e.result === 'ok' ? 'ok' : 'bad' }, e.result), el('td', { class: 'mono' }, JSON.stringify(e.detail ?? {})),
    ))));
}

async function download(ev) {
  ev.preventDefault();
  const secret = $('x-secret').value;
  const h = $('x-kind').value === 'passphrase' ? { 'X-Sesshost-Passphrase': secret } : { 'X-Sesshost-Recipient': secret };
  const blob = await act(() => api('GET', `/v1/sessions/${enc(current)}/export`, { headers: h, blob: true }));
  if (!blob) return;
  const a = el('a', { href: URL.createObjectURL(blob), download: `${current}.sessbundle` });
  document.body.append(a);
  a.click();
  a.remove();
  $('x-secret').value = '';
}

function init() {
  $('d-live').addEventListener('click', () => openLive(current));
  $('d-extend').addEventListener('click', async () => {
    const h = prompt('Extend by how many hours?', '24');
    if (!h) return;
    if (await act(() => api('POST', `/v1/sessions/${enc(current)}/extend`, { body: { additional_seconds: Math.round(Number(h) * 3600) } }))) showDetail(current);
  });
  $('d-fork').addEventListener('click', async () => {
    const name = prompt('Name of the fork?', '');
    if (name === null) return;
    const s = await act(() => api('POST', `/v1/sessions/${enc(current)}/fork`, { body: name ? { name } : {} }));
    if (s) showDetail(s.id);
  });
  $('d-check').addEventListener('click', async () => {
    if (await act(() => api('POST', `/v1/sessions/${enc(current)}/check`))) showDetail(current);
  });
  $('d-delete').addEventListener('click', async () => {
    if (!confirm(`Delete session ${current}? Its stored state is removed.`)) return;
    if ((await act(async () => { await api('DELETE', `/v1/sessions/${enc(current)}`); return true; }))) listSessions();
  });
  $('export-form').addEventListener('submit', download);
}
init();
