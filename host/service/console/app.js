// The console shell: sign in, sections, the sessions table and creation.
// Every action is a public API call (see api.js); errors are shown as the
// API states them.
import { api, key, el, bytes, when, enc } from './api.js';
import { showDetail } from './detail.js';
import { openLive, closeLive } from './live.js';
import { startHealth, stopHealth } from './health.js';

const $ = (id) => document.getElementById(id);
const sections = ['signin', 'sessions', 'detail', 'live', 'health'];
let all = [];

export function show(name) {
  for (const s of sections) $(s).hidden = s !== name;
  for (const b of document.querySelectorAll('nav button')) {
    if (b.dataset.view === name || (name !== 'health' && b.dataset.view === 'sessions' && name !== 'signin')) b.setAttribute('aria-current', 'page');
    else b.removeAttribute('aria-current');
  }
  if (name !== 'health') stopHealth();
  if (name !== 'live') closeLive();
}

export function showError(e) {
  const box = $('error');
  if (!e) { box.hidden = true; box.textContent = ''; return; }
  box.textContent = e.code ? `${e.status} ${e.code}: ${e.message}` : String(e.message || e);
  box.hidden = false;
}

// Run an action; its error (an API envelope) goes to the alert box.
export async function act(f) {
  showError(null);
  try { return await f(); } catch (e) { showError(e); if (e.status === 401) signOut(false); return undefined; }
}

async function signIn(k) {
  // The key is checked with a real call before it is kept.
  await api('GET', '/v1/sessions?limit=1', { k });
  key.set(k);
  $('nav').hidden = false;
  $('signout').hidden = false;
  $('who').textContent = `key ${k.slice(0, 8)}…`;
  await listSessions();
}

function signOut(clearError = true) {
  key.clear();
  for (const k of Object.keys(sessionStorage)) if (k.startsWith('sesshost.lease.')) sessionStorage.removeItem(k);
  $('nav').hidden = true;
  $('signout').hidden = true;
  $('who').textContent = '';
  $('key').value = '';
  if (clearError) showError(null);
  show('signin');
}

export async function listSessions() {
  show('sessions');
  const q = new URLSearchParams({ limit: '1000' });
  if ($('state-filter').value) q.set('state', $('state-filter').value);
  if ($('tag-filter').value.trim()) q.set('tag', $('tag-filter').value.trim());
  const r = await act(() => api('GET', `/v1/sessions?${q}`));
  if (!r) return;
  all = r.sessions;
  render();
}

function check(s) {
  if (s.needs_auth) return el('span', { class: 'bad' }, 'needs login');
  if (!s.last_check) return s.auth_check ? el('span', { class: 'muted' }, 'not run') : el('span', { class: 'muted' }, '—');
  return el('span', { class: s.last_check.ok ? 'ok' : 'bad', title: s.last_check.detail }, `${s.last_check.ok ? 'ok' : 'failed'} ${when(s.last_check.at)}`);
}

function render() {
  const q = $('search').value.trim().toLowerCase();
  const rows = all.filter((s) => !q || [s.id, s.name, ...(s.tags || [])].some((v) => v && v.toLowerCase().includes(q)));
  const tb = $('table').tBodies[0];
  tb.replaceChildren(...rows.map((s) => el('tr', { 'data-id': s.id, tabindex: '0', onclick: () => showDetail(s.id), onkeydown: (e) => { if (e.key === 'Enter') showDetail(s.id); } },
    el('td', {}, el('strong', {}, s.name || '(unnamed)'), el('br'), el('span', { class: 'mono muted' }, s.id)),
    el('td', { class: `state-${s.state}` }, s.state),
    el('td', {}, (s.tags || []).map((t) => el('span', { class: 'tag' }, t))),
    el('td', { title: s.expires_at || '' }, s.expires_at ? when(s.expires_at) : 'never'),
    el('td', {}, s.lease ? [el('span', { class: 'mono' }, s.lease.holder), el('br'), el('span', { class: 'muted' }, `until ${when(s.lease.expires_at)}`)] : '—'),
    el('td', {}, bytes(s.sizes?.stored_bytes)),
    el('td', { title: s.last_used_at || '' }, when(s.last_used_at)),
    el('td', {}, check(s)),
  )));
  $('count').textContent = `${rows.length} of ${all.length} sessions`;
}

async function create(ev) {
  ev.preventDefault();
  const b = {};
  const v = (id) => $(id).value.trim();
  if (v('c-name')) b.name = v('c-name');
  const tags = v('c-tags').split(',').map((t) => t.trim()).filter(Boolean);
  if (tags.length) b.tags = tags;
  if (v('c-ttl')) b.ttl_seconds = Math.round(Number(v('c-ttl')) * 3600);
  if (v('c-w') || v('c-h')) b.viewport = { width: Number(v('c-w') || 1280), height: Number(v('c-h') || 800) };
  if (v('c-check')) b.auth_check = { url: v('c-check'), expect_status: Number(v('c-status') || 200) };
  const s = await act(() => api('POST', '/v1/sessions', { body: b }));
  if (!s) return;
  $('create-form').reset();
  $('create').open = false;
  await showDetail(s.id);
}

function init() {
  $('signin-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    await act(() => signIn($('key').value.trim()));
  });
  $('signout').addEventListener('click', () => signOut());
  $('search').addEventListener('input', render);
  $('state-filter').addEventListener('change', listSessions);
  $('tag-filter').addEventListener('change', listSessions);
  $('refresh').addEventListener('click', listSessions);
  $('create-form').addEventListener('submit', create);
  $('d-close').addEventListener('click', listSessions);
  for (const b of document.querySelectorAll('nav button')) {
    b.addEventListener('click', () => {
      if (b.dataset.view === 'health') { show('health'); startHealth(); } else listSessions();
    });
  }
  const k = key.get();
  if (k) act(() => signIn(k));
  else show('signin');
}

export { openLive, enc };
init();
