// The console's only way to the service: the public API with the tab's key.
// The key lives in sessionStorage (this tab only, never a cookie).

const KEY = 'sesshost.key';

export const key = {
  get: () => sessionStorage.getItem(KEY),
  set: (k) => sessionStorage.setItem(KEY, k),
  clear: () => sessionStorage.removeItem(KEY),
};

// An API error as the API states it: {status, code, message}.
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
  toString() { return `${this.status} ${this.code}: ${this.message}`; }
}

// Call the API; resolves to parsed JSON (or a Blob with {blob: true}),
// rejects with ApiError carrying the envelope's code and message.
export async function api(method, path, { body, headers = {}, blob = false, k = key.get() } = {}) {
  const h = { ...headers };
  if (k) h.Authorization = `Bearer ${k}`;
  let payload;
  if (body !== undefined) {
    h['Content-Type'] = 'application/json';
    payload = JSON.stringify(body);
  } else if (method === 'POST' || method === 'PUT') {
    h['Content-Type'] = 'application/json';
    payload = '{}';
  }
  let r;
  try {
    r = await fetch(path, { method, headers: h, body: payload, cache: 'no-store' });
  } catch (e) {
    throw new ApiError(0, 'network', `cannot reach the service (${e.message}); check it is running`);
  }
  if (!r.ok) {
    let code = 'http_' + r.status, message = r.statusText;
    try {
      const j = await r.json();
      if (j.error) ({ code, message } = j.error);
    } catch { /* not an envelope */ }
    throw new ApiError(r.status, code, message);
  }
  if (r.status === 204) return null;
  if (blob) return r.blob();
  const ct = r.headers.get('content-type') || '';
  return ct.includes('json') ? r.json() : r.text();
}

export const enc = encodeURIComponent;

// Small DOM helper: el('td', {class: 'x'}, 'text', child…).
export function el(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [a, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (a.startsWith('on')) e.addEventListener(a.slice(2), v);
    else if (a === 'text') e.textContent = v;
    else e.setAttribute(a, v === true ? '' : v);
  }
  for (const k of kids.flat()) if (k !== null && k !== undefined) e.append(k instanceof Node ? k : String(k));
  return e;
}

export function bytes(n) {
  if (n === null || n === undefined) return '—';
  const u = ['B', 'KiB', 'MiB', 'GiB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return `${i ? n.toFixed(1) : n} ${u[i]}`;
}

export function when(t) {
  if (!t) return '—';
  const d = new Date(t), s = (d - Date.now()) / 1000, a = Math.abs(s);
  const r = a < 90 ? `${Math.round(a)} s` : a < 5400 ? `${Math.round(a / 60)} min` : a < 172800 ? `${Math.round(a / 3600)} h` : `${Math.round(a / 86400)} d`;
  return s >= 0 ? `in ${r}` : `${r} ago`;
}
