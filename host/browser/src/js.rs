//! Page JavaScript that reads and writes a whole origin's storage.
//!
//! Values travel in the JSON shape of [`sessbundle::state::JsValue`]
//! (`{"t": TYPE, "v": VALUE}`, bytes in base64, special numbers as strings),
//! so the result of [`CAPTURE_ORIGIN`] deserialises straight into the state
//! model and [`RESTORE_ORIGIN`] takes the model's JSON as is.

/// Shared helpers: base64 and the value codec.
const CODEC: &str = r#"
const __b64 = (u8) => {
  if (u8.toBase64) return u8.toBase64();
  let s = ''; for (let i = 0; i < u8.length; i += 0x8000) s += String.fromCharCode.apply(null, u8.subarray(i, i + 0x8000));
  return btoa(s);
};
const __unb64 = (s) => {
  if (Uint8Array.fromBase64) return Uint8Array.fromBase64(s);
  const b = atob(s); const u = new Uint8Array(b.length); for (let i = 0; i < b.length; i++) u[i] = b.charCodeAt(i); return u;
};
const __num = (n) => Number.isNaN(n) ? 'NaN' : n === Infinity ? 'Infinity' : n === -Infinity ? '-Infinity' : (n === 0 && 1 / n < 0) ? '-0' : n;
const __unnum = (n) => typeof n === 'number' ? n : n === 'NaN' ? NaN : n === 'Infinity' ? Infinity : n === '-Infinity' ? -Infinity : n === '-0' ? -0 : Number(n);
const __enc = async (v, seen = new Set()) => {
  if (v === undefined) return { t: 'undefined' };
  if (v === null) return { t: 'null' };
  switch (typeof v) {
    case 'boolean': return { t: 'bool', v };
    case 'number': return { t: 'number', v: __num(v) };
    case 'bigint': return { t: 'bigInt', v: v.toString() };
    case 'string': return { t: 'string', v };
    case 'object': break;
    default: return { t: 'undefined' };
  }
  if (seen.has(v)) throw new Error('a stored value contains a cycle, which the session format cannot hold');
  seen.add(v);
  try {
    const tag = Object.prototype.toString.call(v);
    if (tag === '[object Date]') return { t: 'date', v: __num(v.getTime()) };
    if (tag === '[object RegExp]') return { t: 'regExp', v: { source: v.source, flags: v.flags } };
    if (tag === '[object ArrayBuffer]') return { t: 'arrayBuffer', v: __b64(new Uint8Array(v)) };
    if (ArrayBuffer.isView(v)) return { t: 'typedArray', v: { kind: v.constructor.name, bytes: __b64(new Uint8Array(v.buffer, v.byteOffset, v.byteLength)) } };
    if (tag === '[object File]') return { t: 'file', v: { name: v.name, type: v.type, lastModified: __num(v.lastModified), bytes: __b64(new Uint8Array(await v.arrayBuffer())) } };
    if (tag === '[object Blob]') return { t: 'blob', v: { type: v.type, bytes: __b64(new Uint8Array(await v.arrayBuffer())) } };
    if (Array.isArray(v)) { const a = []; for (const x of v) a.push(await __enc(x, seen)); return { t: 'array', v: a }; }
    if (tag === '[object Map]') { const a = []; for (const [k, x] of v) a.push([await __enc(k, seen), await __enc(x, seen)]); return { t: 'map', v: a }; }
    if (tag === '[object Set]') { const a = []; for (const x of v) a.push(await __enc(x, seen)); return { t: 'set', v: a }; }
    if (tag === '[object Number]' || tag === '[object Boolean]' || tag === '[object String]' || tag === '[object BigInt]') return __enc(v.valueOf(), seen);
    const o = []; for (const k of Object.keys(v)) o.push([k, await __enc(v[k], seen)]);
    return { t: 'object', v: o };
  } finally { seen.delete(v); }
};
const __dec = (j) => {
  switch (j.t) {
    case 'undefined': return undefined;
    case 'null': return null;
    case 'bool': case 'string': return j.v;
    case 'number': return __unnum(j.v);
    case 'bigInt': return BigInt(j.v);
    case 'date': return new Date(__unnum(j.v));
    case 'regExp': return new RegExp(j.v.source, j.v.flags);
    case 'arrayBuffer': return __unb64(j.v).buffer;
    case 'typedArray': {
      const u = __unb64(j.v.bytes);
      if (j.v.kind === 'DataView') return new DataView(u.buffer);
      const C = globalThis[j.v.kind];
      if (typeof C !== 'function' || !C.BYTES_PER_ELEMENT) throw new Error('unknown typed array kind ' + j.v.kind);
      return new C(u.buffer, 0, u.byteLength / C.BYTES_PER_ELEMENT);
    }
    case 'blob': return new Blob([__unb64(j.v.bytes)], { type: j.v.type });
    case 'file': return new File([__unb64(j.v.bytes)], j.v.name, { type: j.v.type, lastModified: __unnum(j.v.lastModified) });
    case 'array': return j.v.map(__dec);
    case 'object': {
      const o = {};
      for (const [k, x] of j.v) Object.defineProperty(o, k, { value: __dec(x), enumerable: true, writable: true, configurable: true });
      return o;
    }
    case 'map': return new Map(j.v.map(([k, x]) => [__dec(k), __dec(x)]));
    case 'set': return new Set(j.v.map(__dec));
  }
  throw new Error('unknown value type ' + j.t);
};
const __req = (r) => new Promise((res, rej) => { r.onsuccess = () => res(r.result); r.onerror = () => rej(r.error); });
"#;

/// Evaluates to a JSON string `{"localStorage": [...], "indexedDB": [...]}`
/// for the page's origin (records with typed keys and values; the key
/// generator is read separately over CDP).
pub fn capture_origin() -> String {
    format!(
        r#"(async () => {{
{CODEC}
const ls = [];
for (let i = 0; i < localStorage.length; i++) {{ const k = localStorage.key(i); ls.push({{ key: k, value: localStorage.getItem(k) }}); }}
const dbs = [];
for (const info of await indexedDB.databases()) {{
  const db = await new Promise((res, rej) => {{
    const r = indexedDB.open(info.name);
    r.onsuccess = () => res(r.result);
    r.onerror = () => rej(r.error);
    r.onupgradeneeded = () => r.transaction.abort();
    r.onblocked = () => rej(new Error('database ' + info.name + ' is blocked by an open connection'));
  }});
  const names = Array.from(db.objectStoreNames);
  const stores = [];
  if (names.length) {{
    const tx = db.transaction(names, 'readonly');
    const pending = names.map((n) => {{
      const s = tx.objectStore(n);
      const indexes = Array.from(s.indexNames).map((iN) => {{ const i = s.index(iN); return {{ name: i.name, keyPath: i.keyPath, unique: i.unique, multiEntry: i.multiEntry }}; }});
      return {{ name: n, keyPath: s.keyPath, autoIncrement: s.autoIncrement, indexes, keys: __req(s.getAllKeys()), vals: __req(s.getAll()) }};
    }});
    for (const p of pending) {{
      const keys = await p.keys, vals = await p.vals;
      const records = [];
      for (let i = 0; i < keys.length; i++) records.push({{ key: await __enc(keys[i]), value: await __enc(vals[i]) }});
      const st = {{ name: p.name, autoIncrement: p.autoIncrement, indexes: p.indexes, records }};
      if (p.keyPath !== null) st.keyPath = p.keyPath;
      stores.push(st);
    }}
  }}
  dbs.push({{ name: db.name, version: db.version, objectStores: stores }});
  db.close();
}}
return JSON.stringify({{ localStorage: ls, indexedDB: dbs }});
}})()"#
    )
}

/// A function expression taking `{clear, localStorage, indexedDB}` (the
/// model's JSON) that replaces the page origin's storage with it. IndexedDB
/// databases are recreated at their version with the same schema, records
/// and key generator position.
pub fn restore_origin(data_json: &str) -> String {
    format!(
        r#"(async (data) => {{
{CODEC}
const __t0 = performance.now();
if (data.clear) localStorage.clear();
for (const {{ key, value }} of data.localStorage || []) localStorage.setItem(key, value);
const __t1 = performance.now();
// indexedDB.databases() costs ~100 ms on an origin's first IndexedDB use:
// only ask when there is something to write.
const existing = (data.indexedDB || []).length ? new Set((await indexedDB.databases()).map((d) => d.name)) : new Set();
for (const d of data.indexedDB || []) {{
  if (existing.has(d.name)) await new Promise((res, rej) => {{
    // A page of this origin that keeps the database open and ignores
    // 'versionchange' blocks the delete forever: give it 2 s, then fail.
    const r = indexedDB.deleteDatabase(d.name);
    let timer = null;
    r.onsuccess = () => {{ clearTimeout(timer); res(); }};
    r.onerror = () => {{ clearTimeout(timer); rej(r.error); }};
    r.onblocked = () => {{ timer = setTimeout(() => rej(new Error('IndexedDB database ' + JSON.stringify(d.name) + ' is held open by another tab of this origin; close that tab and restore again')), 2000); }};
  }});
  const db = await new Promise((res, rej) => {{
    const r = indexedDB.open(d.name, d.version);
    r.onupgradeneeded = () => {{
      for (const s of d.objectStores || []) {{
        const opts = {{ autoIncrement: !!s.autoIncrement }};
        if (s.keyPath != null) opts.keyPath = s.keyPath;
        const os = r.result.createObjectStore(s.name, opts);
        for (const i of s.indexes || []) os.createIndex(i.name, i.keyPath, {{ unique: !!i.unique, multiEntry: !!i.multiEntry }});
      }}
    }};
    r.onsuccess = () => res(r.result);
    r.onerror = () => rej(r.error);
    r.onblocked = () => rej(new Error('database ' + d.name + ' is blocked by an open connection'));
  }});
  const names = (d.objectStores || []).map((s) => s.name);
  if (names.length) {{
    // Relaxed durability: no fsync per transaction. The data reaches disk
    // with Chromium's normal flushing; a crash right after restore loses
    // nothing the session file does not still hold.
    const tx = db.transaction(names, 'readwrite', {{ durability: 'relaxed' }});
    const done = new Promise((res, rej) => {{ tx.oncomplete = res; tx.onerror = () => rej(tx.error); tx.onabort = () => rej(tx.error); }});
    for (const s of d.objectStores) {{
      const os = tx.objectStore(s.name);
      let maxKey = 0;
      for (const r of s.records || []) {{
        const k = __dec(r.key), v = __dec(r.value);
        if (s.keyPath != null) os.put(v); else os.put(v, k);
        if (typeof k === 'number' && k > maxKey) maxKey = k;
      }}
      if (s.autoIncrement && s.keyGenerator != null) {{
        const current = Math.max(1, Math.floor(maxKey) + 1);
        const want = s.keyGenerator;
        if (want > current) {{
          // Advance the generator: an explicit key k sets it to k + 1.
          const k = want - 1;
          if (s.keyPath != null) {{
            const obj = {{}}; let o = obj; const parts = s.keyPath.split('.');
            for (let i = 0; i < parts.length - 1; i++) o = o[parts[i]] = {{}};
            o[parts[parts.length - 1]] = k;
            os.put(obj);
          }} else os.put(null, k);
          os.delete(k);
        }}
      }}
    }}
    await done;
  }}
  db.close();
}}
return {{ localStorageMs: __t1 - __t0, indexedDbMs: performance.now() - __t1 }};
}})({data_json})"#
    )
}

/// Evaluates to the page's sessionStorage as `[{key, value}]`.
pub const READ_SESSION_STORAGE: &str = r#"(() => { const a = []; for (let i = 0; i < sessionStorage.length; i++) { const k = sessionStorage.key(i); a.push({ key: k, value: sessionStorage.getItem(k) }); } return a; })()"#;

/// A function expression that writes `[{key, value}]` into sessionStorage.
pub fn write_session_storage(items_json: &str) -> String {
    format!(
        r#"((items) => {{ for (const {{ key, value }} of items) sessionStorage.setItem(key, value); return true; }})({items_json})"#
    )
}
