// The live view: the leased browser's screen over CDP, straight from this
// page to the lease's cdp_url (the public API), with input forwarded.
//
// - Take over = POST /acquire (the console's own lease, heartbeated while
//   this tab holds it); Save and release = POST /release (the service
//   captures and commits the state before it answers).
// - Tabs are the browser's page targets, except the service's own
//   (the keeper, about:blank#sesshost-keeper, which captures also use, and
//   a capture's extra tabs at about:blank#sesshost-capture), which are
//   never shown nor closed.
// - The screen is Page.startScreencast (JPEG) on the attached tab with
//   Page.screencastFrameAck per frame; the viewport is the session's when
//   it has one, else 1280×800 (Emulation.setDeviceMetricsOverride, which
//   ends with our CDP session).
// - A dropped connection is retried (backoff up to 5 s) to the same URL
//   while the lease holds; a lease that ended says so.
// - A session leased by someone else cannot be shown: its cdp_url belongs
//   to its holder (the API never hands it to anyone else).
import { api, el, enc, when } from './api.js';
import { act, showError, show } from './app.js';

const $ = (id) => document.getElementById(id);
// The service's own tabs: the keeper and a capture's extra tabs.
const INTERNAL = 'about:blank#sesshost-';
const LEASE_SECONDS = 600;
const DEFAULT_VIEWPORT = { width: 1280, height: 800 };

// Figures the bench and tests read (no secrets: counts and times only).
export const stats = { frames: 0, lastFrameAt: 0, inputAt: null, latencies: [], connects: 0 };
window.sesshostLive = stats;

const leases = {
  get: (id) => { try { return JSON.parse(sessionStorage.getItem(`sesshost.lease.${id}`)); } catch { return null; } },
  set: (id, l) => sessionStorage.setItem(`sesshost.lease.${id}`, JSON.stringify(l)),
  clear: (id) => sessionStorage.removeItem(`sesshost.lease.${id}`),
};
const heartbeats = new Map();

function status(t) { $('l-status').textContent = t; }
function buttons(leased) {
  $('l-takeover').disabled = leased;
  $('l-save').disabled = !leased;
  for (const id of ['l-back', 'l-fwd', 'l-reload', 'l-addr', 'l-tab', 'l-newtab']) $(id).disabled = !leased;
}

function heartbeat(id) {
  if (heartbeats.has(id)) return;
  const t = setInterval(async () => {
    const l = leases.get(id);
    if (!l) { clearInterval(t); heartbeats.delete(id); return; }
    try { await api('POST', `/v1/sessions/${enc(id)}/heartbeat`, { body: { lease_id: l.lease_id } }); } catch (e) {
      if (e.status === 409 || e.status === 404) { leases.clear(id); clearInterval(t); heartbeats.delete(id); }
    }
  }, LEASE_SECONDS * 1000 / 4);
  heartbeats.set(id, t);
}

class Live {
  constructor(id, viewport) {
    this.id = id;
    this.viewport = viewport;
    this.ws = null;
    this.seq = 1;
    this.pending = new Map();
    this.pages = new Map();
    this.internal = new Set();
    this.sid = null;
    this.targetId = null;
    this.closed = false;
    this.retry = 0;
    this.meta = { deviceWidth: viewport.width, deviceHeight: viewport.height, offsetTop: 0 };
    this.canvas = $('l-screen');
    this.ctx2d = this.canvas.getContext('2d');
    this.canvas.width = viewport.width;
    this.canvas.height = viewport.height;
  }

  send(method, params = {}, sessionId) {
    return new Promise((resolve, reject) => {
      if (!this.ws || this.ws.readyState !== WebSocket.OPEN) { reject(new Error('not connected')); return; }
      const id = this.seq++;
      this.pending.set(id, { resolve, reject, method });
      const m = { id, method, params };
      if (sessionId) m.sessionId = sessionId;
      this.ws.send(JSON.stringify(m));
    });
  }

  connect() {
    const l = leases.get(this.id);
    if (!l || this.closed) return;
    status('Connecting…');
    const ws = new WebSocket(l.cdp_url);
    this.ws = ws;
    ws.onopen = () => this.opened().catch((e) => status(`Cannot start the live view: ${e.message}`));
    ws.onmessage = (ev) => this.message(JSON.parse(ev.data));
    ws.onclose = (ev) => this.dropped(ev);
  }

  async opened() {
    this.retry = 0;
    stats.connects++;
    this.sid = null;
    await this.send('Target.setDiscoverTargets', { discover: true });
    await this.attachSome();
    buttons(true);
    status('Live');
  }

  // Attach to the tab shown before (or the first one, or a new one). A
  // browser that was just replaced may still be restoring its tabs, so a
  // tab that vanished under us is retried a few times.
  async attachSome() {
    for (let i = 0; ; i++) {
      const { targetInfos } = await this.send('Target.getTargets');
      this.pages.clear();
      for (const t of targetInfos) this.target(t);
      let pick = this.targetId && this.pages.has(this.targetId) ? this.targetId : [...this.pages.keys()][0];
      try {
        if (!pick) pick = (await this.send('Target.createTarget', { url: 'about:blank' })).targetId;
        await this.attach(pick);
        return;
      } catch (e) {
        if (i >= 10 || this.closed) throw e;
        await new Promise((r) => setTimeout(r, 300));
      }
    }
  }

  async dropped(ev) {
    for (const p of this.pending.values()) p.reject(new Error('connection closed'));
    this.pending.clear();
    if (this.closed) return;
    const l = leases.get(this.id);
    let s = null;
    try { s = await api('GET', `/v1/sessions/${enc(this.id)}`); } catch (e) { /* network: retry below */ }
    if (this.closed) return;
    if (s && (!s.lease || !l || s.lease.lease_id !== l.lease_id)) {
      leases.clear(this.id);
      buttons(false);
      status(`The console's lease ended (${ev.reason || 'closed'}). Take over to open the browser again.`);
      return;
    }
    const wait = Math.min(5000, 250 * 2 ** this.retry++);
    status(`Connection lost${ev.reason ? ` (${ev.reason})` : ''}; reconnecting in ${(wait / 1000).toFixed(1)} s…`);
    setTimeout(() => this.connect(), wait);
  }

  message(m) {
    if (m.id !== undefined) {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (m.error) p.reject(new Error(`${p.method}: ${m.error.message}`)); else p.resolve(m.result);
      return;
    }
    const ps = m.params || {};
    switch (m.method) {
      case 'Page.screencastFrame':
        if (m.sessionId === this.sid) this.frame(ps, m.sessionId);
        break;
      case 'Target.targetCreated':
      case 'Target.targetInfoChanged':
        this.target(ps.targetInfo);
        break;
      case 'Target.targetDestroyed':
        this.pages.delete(ps.targetId);
        this.tabs();
        if (ps.targetId === this.targetId) this.switchAway();
        break;
      case 'Target.detachedFromTarget':
        if (ps.sessionId === this.sid) { this.sid = null; this.switchAway(); }
        break;
      case 'Page.frameNavigated':
        if (m.sessionId === this.sid && !ps.frame.parentId && document.activeElement !== $('l-addr')) $('l-addr').value = ps.frame.url;
        break;
    }
  }

  target(t) {
    // Once internal, always: the keeper visits origins while the service
    // captures storage, and must not appear as a tab meanwhile.
    if (t.url.startsWith(INTERNAL)) this.internal.add(t.targetId);
    if (t.type !== 'page' || this.internal.has(t.targetId)) { this.pages.delete(t.targetId); } else this.pages.set(t.targetId, t);
    this.tabs();
  }

  tabs() {
    const sel = $('l-tab');
    sel.replaceChildren(...[...this.pages.values()].map((t) => el('option', { value: t.targetId, selected: t.targetId === this.targetId }, t.title || t.url || '(new tab)')));
  }

  async switchAway() {
    if (this.closed || !this.ws || this.ws.readyState !== WebSocket.OPEN) return;
    await this.attachSome().catch((e) => status(`Cannot show a tab: ${e.message}`));
  }

  async attach(targetId) {
    if (this.sid) {
      const old = this.sid;
      this.sid = null;
      await this.send('Page.stopScreencast', {}, old).catch(() => {});
      await this.send('Target.detachFromTarget', { sessionId: old }).catch(() => {});
    }
    this.targetId = targetId;
    const { sessionId } = await this.send('Target.attachToTarget', { targetId, flatten: true });
    this.sid = sessionId;
    const { width, height } = this.viewport;
    await Promise.all([
      this.send('Page.enable', {}, sessionId),
      this.send('Emulation.setDeviceMetricsOverride', { width, height, deviceScaleFactor: 1, mobile: false }, sessionId),
      this.send('Emulation.setFocusEmulationEnabled', { enabled: true }, sessionId),
    ]);
    // A background tab of a headless browser does not paint: bring it to front.
    await this.send('Page.bringToFront', {}, sessionId).catch(() => {});
    // A static page sends no screencast frame until it repaints: draw a
    // screenshot first so the screen is never blank.
    const shot = await this.send('Page.captureScreenshot', { format: 'jpeg', quality: 70 }, sessionId).catch(() => null);
    if (shot && this.sid === sessionId) this.draw(shot.data);
    await this.send('Page.startScreencast', { format: 'jpeg', quality: 70, maxWidth: width, maxHeight: height, everyNthFrame: 1 }, sessionId);
    const t = this.pages.get(targetId);
    if (t) $('l-addr').value = t.url;
    this.tabs();
  }

  frame(p, sessionId) {
    this.send('Page.screencastFrameAck', { sessionId: p.sessionId }, sessionId).catch(() => {});
    this.meta = p.metadata;
    this.draw(p.data);
  }

  draw(data) {
    const img = new Image();
    img.onload = () => {
      if (this.closed) return;
      if (this.canvas.width !== img.naturalWidth || this.canvas.height !== img.naturalHeight) {
        this.canvas.width = img.naturalWidth;
        this.canvas.height = img.naturalHeight;
      }
      this.ctx2d.drawImage(img, 0, 0);
      const now = performance.now();
      stats.frames++;
      stats.lastFrameAt = now;
      if (stats.inputAt !== null) { stats.latencies.push(now - stats.inputAt); stats.inputAt = null; }
    };
    img.src = `data:image/jpeg;base64,${data}`;
  }

  // Page coordinates (CSS px of the remote viewport) of a pointer event.
  point(e) {
    const r = this.canvas.getBoundingClientRect();
    const w = this.meta.deviceWidth || this.viewport.width, h = this.meta.deviceHeight || this.viewport.height;
    return { x: Math.round((e.clientX - r.left) / r.width * w), y: Math.round((e.clientY - r.top) / r.height * h) };
  }

  // Forward one input event; those that change the screen (a press, a
  // key down, a wheel, a paste) start an input-to-frame measurement.
  input(method, params) {
    if (!this.sid) return;
    const t = params.type;
    if (stats.inputAt === null && t !== 'mouseReleased' && t !== 'keyUp') stats.inputAt = performance.now();
    this.send(method, params, this.sid).catch(() => {});
  }

  close() {
    this.closed = true;
    if (this.ws) this.ws.close();
  }
}

let live = null;

function mods(e) { return (e.altKey ? 1 : 0) | (e.ctrlKey ? 2 : 0) | (e.metaKey ? 4 : 0) | (e.shiftKey ? 8 : 0); }
const BUTTONS = ['left', 'middle', 'right'];

function wire() {
  const c = $('l-screen');
  let moving = false;
  c.addEventListener('mousedown', (e) => {
    c.focus();
    live?.input('Input.dispatchMouseEvent', { type: 'mousePressed', ...live.point(e), button: BUTTONS[e.button] || 'left', buttons: e.buttons, clickCount: e.detail || 1, modifiers: mods(e) });
    e.preventDefault();
  });
  c.addEventListener('mouseup', (e) => {
    live?.input('Input.dispatchMouseEvent', { type: 'mouseReleased', ...live.point(e), button: BUTTONS[e.button] || 'left', buttons: e.buttons, clickCount: e.detail || 1, modifiers: mods(e) });
  });
  c.addEventListener('mousemove', (e) => {
    if (!live || moving) return;
    moving = true;
    requestAnimationFrame(() => { moving = false; });
    live.send('Input.dispatchMouseEvent', { type: 'mouseMoved', ...live.point(e), buttons: e.buttons, modifiers: mods(e) }, live.sid).catch(() => {});
  });
  c.addEventListener('wheel', (e) => {
    e.preventDefault();
    live?.input('Input.dispatchMouseEvent', { type: 'mouseWheel', ...live.point(e), deltaX: e.deltaX, deltaY: e.deltaY, modifiers: mods(e) });
  }, { passive: false });
  c.addEventListener('contextmenu', (e) => e.preventDefault());
  const key = (type) => (e) => {
    if (!live) return;
    // Ctrl/Cmd+V is left to the browser so the paste event below fires.
    if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === 'v') return;
    e.preventDefault();
    const printable = e.key.length === 1 && !(e.ctrlKey || e.metaKey || e.altKey);
    const p = { type, key: e.key, code: e.code, modifiers: mods(e), windowsVirtualKeyCode: e.keyCode, nativeVirtualKeyCode: e.keyCode, autoRepeat: e.repeat, location: e.location };
    if (type === 'keyDown') {
      if (printable) { p.text = e.key; p.unmodifiedText = e.key; } else if (e.key === 'Enter') { p.text = '\r'; p.unmodifiedText = '\r'; } else p.type = 'rawKeyDown';
    }
    live.input('Input.dispatchKeyEvent', p);
  };
  c.addEventListener('keydown', key('keyDown'));
  c.addEventListener('keyup', key('keyUp'));
  c.addEventListener('paste', (e) => {
    const text = e.clipboardData?.getData('text/plain');
    e.preventDefault();
    if (text) live?.input('Input.insertText', { text });
  });
  $('l-nav').addEventListener('submit', (e) => {
    e.preventDefault();
    let url = $('l-addr').value.trim();
    if (!url || !live?.sid) return;
    if (!/^[a-z][a-z0-9+.-]*:/i.test(url)) url = `https://${url}`;
    live.send('Page.navigate', { url }, live.sid).then((r) => { if (r.errorText) status(`Navigation failed: ${r.errorText}`); }).catch((err) => status(err.message));
    $('l-screen').focus();
  });
  const history = async (step) => {
    if (!live?.sid) return;
    const h = await live.send('Page.getNavigationHistory', {}, live.sid);
    const e = h.entries[h.currentIndex + step];
    if (e) await live.send('Page.navigateToHistoryEntry', { entryId: e.id }, live.sid);
  };
  $('l-back').addEventListener('click', () => history(-1).catch((e) => status(e.message)));
  $('l-fwd').addEventListener('click', () => history(1).catch((e) => status(e.message)));
  $('l-reload').addEventListener('click', () => live?.sid && live.send('Page.reload', {}, live.sid).catch((e) => status(e.message)));
  $('l-tab').addEventListener('change', () => live?.attach($('l-tab').value).catch((e) => status(e.message)));
  $('l-newtab').addEventListener('click', async () => {
    if (!live) return;
    const { targetId } = await live.send('Target.createTarget', { url: 'about:blank' });
    await live.attach(targetId);
    $('l-addr').focus();
  });
  $('l-takeover').addEventListener('click', takeOver);
  $('l-save').addEventListener('click', saveAndRelease);
  $('l-close').addEventListener('click', async () => { closeLive(); (await import('./detail.js')).showDetail(currentId); });
}

let currentId = null;

export async function openLive(id) {
  closeLive();
  currentId = id;
  show('live');
  $('live-h').textContent = 'Live view';
  buttons(false);
  $('l-tab').replaceChildren();
  $('l-addr').value = '';
  status('Loading…');
  const [s, state] = await Promise.all([
    act(() => api('GET', `/v1/sessions/${enc(id)}`)),
    act(() => api('GET', `/v1/sessions/${enc(id)}/state`)),
  ]);
  if (!s || currentId !== id) return;
  $('live-h').textContent = `Live view: ${s.name || s.id}`;
  const vp = state?.viewport?.width ? { width: state.viewport.width, height: state.viewport.height } : DEFAULT_VIEWPORT;
  $('l-figures').textContent = `Remote viewport ${vp.width}×${vp.height}`;
  live = new Live(id, vp);
  const mine = leases.get(id);
  if (mine && s.lease && s.lease.lease_id === mine.lease_id) {
    heartbeat(id);
    live.connect();
    return;
  }
  leases.clear(id);
  if (s.lease) status(`Leased by ${s.lease.holder} until ${s.lease.expires_at} (${when(s.lease.expires_at)}); Take over waits up to 30 s for it.`);
  else status('Not leased: Take over to open its browser.');
}

async function takeOver() {
  const id = currentId;
  status('Acquiring a lease…');
  const l = await act(() => api('POST', `/v1/sessions/${enc(id)}/acquire`, { body: { lease_seconds: LEASE_SECONDS, wait_seconds: 30 } }));
  if (!l || currentId !== id) { if (!l) status('Not leased.'); return; }
  leases.set(id, l);
  heartbeat(id);
  live.closed = false;
  live.connect();
}

async function saveAndRelease() {
  const id = currentId;
  const l = leases.get(id);
  if (!l || !live) return;
  status('Saving…');
  live.closed = true;
  if (live.sid) {
    await live.send('Page.stopScreencast', {}, live.sid).catch(() => {});
    await live.send('Target.detachFromTarget', { sessionId: live.sid }).catch(() => {});
  }
  live.ws?.close();
  const s = await act(() => api('POST', `/v1/sessions/${enc(id)}/release`, { body: { lease_id: l.lease_id } }));
  if (!s) { live.closed = false; live.connect(); return; }
  leases.clear(id);
  buttons(false);
  status(`Saved and released (state ${s.state}): workers can acquire it through the API.`);
  showError(null);
}

export function closeLive() {
  if (live) { live.close(); live = null; }
}

wire();
