//! Session state JSON ⇄ bundle, streaming: what `host seal`, `host unseal`
//! and `host inspect --decrypt` run.
//!
//! - [`unseal_to_json`] writes the state JSON record by record (memory: a
//!   few records, never the state), checking each record with the same
//!   [`RecordCheck`] that [`BundleReader::read_state`] (and so `import`)
//!   applies: it accepts exactly the bundles `import` accepts.
//! - [`seal_from_json`] parses state JSON straight into records (no
//!   `SessionState` of the origins is ever built) and overlaps parsing with
//!   compression and encryption on two threads. The bundle holds the same
//!   records `seal` of the parsed state would.
//! - [`inspect`] counts what a bundle holds, through [`unseal_to_json`].
//!
//! The JSON layout of [`unseal_to_json`] (kept byte for byte from the first
//! CLI): `{`, `"meta"` and `"extra"` pretty-printed, then `"cookies"`,
//! `"origins"`, `"tabs"` arrays with one compact item per line, `}`.

use std::collections::BTreeMap;
use std::io::{Read, Seek, Write};
use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

use crate::error::{Error, Result};
use crate::format::to_msgpack;
use crate::reader::BundleReader;
use crate::records::{self, Decoded, Job, Record, RecordCheck, RecordKind};
use crate::state::{Cookie, Meta, OriginState, SessionState, Tab};
use crate::writer::{BundleWriter, PreparedRecord, SealSummary};

/// Records decoded ahead of the JSON writer (and parsed ahead of the
/// compressor). Cost: memory of this many records on top of one being
/// worked on; 4 keeps both threads busy on session-like states.
const AHEAD: usize = 4;

/// What [`unseal_to_json`] wrote. Counts and sizes only: never a value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnsealReport {
    /// The session's name (`meta.name`).
    pub name: String,
    pub records: usize,
    pub cookies: usize,
    /// Cookie records (one per site).
    pub cookie_sites: usize,
    pub origins: Vec<OriginSummary>,
    pub tabs: usize,
    /// Decoded record bodies (MessagePack), summed over records: a chunk
    /// shared by two records counts twice.
    pub record_bytes: u64,
    /// Bytes of state JSON written: exactly the size of `host unseal`'s
    /// output file.
    pub json_bytes: u64,
}

/// One origin's counts, for `inspect`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OriginSummary {
    pub origin: String,
    pub local_storage_items: usize,
    pub indexeddb_databases: usize,
    pub indexeddb_records: usize,
    /// Bytes of its record body (MessagePack).
    pub bytes: u64,
}

/// What a bundle holds: [`UnsealReport`] plus the manifest's figures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InspectReport {
    pub content: UnsealReport,
    /// Seal time (manifest `created_ms`), ms since the epoch.
    pub sealed_ms: i64,
    pub chunks: usize,
    /// Plaintext of the distinct chunks (what deduplication keeps).
    pub chunk_bytes: u64,
    /// Bytes the chunks take in the payload (after compression).
    pub stored_bytes: u64,
    /// Sanitisers recorded in the manifest: name and blake3 of the plugin.
    pub sanitizers: Vec<(String, [u8; 32])>,
}

/// Stream the state of `reader` as JSON to `out`, verifying every chunk
/// and checking every record as [`BundleReader::read_state`] does. On error
/// `out` holds a prefix of the JSON: write to a temp file and drop it.
/// Reading and decoding run on this thread, JSON encoding on a second one.
pub fn unseal_to_json<R: Read + Seek, W: Write + Send>(
    reader: &mut BundleReader<R>,
    out: &mut W,
) -> Result<UnsealReport> {
    let n = reader.manifest().records.len();
    let mut report = UnsealReport {
        records: n,
        ..Default::default()
    };
    let (tx, rx) = sync_channel::<Decoded>(AHEAD);
    std::thread::scope(|scope| -> Result<()> {
        let json = scope.spawn(move || write_json(rx, out));
        let read = read_decoded(reader, n, &mut report, &tx);
        drop(tx);
        let written = json
            .join()
            .unwrap_or_else(|_| Err(Error::Usage("the JSON writer thread panicked".into())));
        // A read error explains a writer that stopped early; report it first.
        read?;
        report.json_bytes = written?;
        Ok(())
    })?;
    Ok(report)
}

fn read_decoded<R: Read + Seek>(
    reader: &mut BundleReader<R>,
    n: usize,
    report: &mut UnsealReport,
    tx: &SyncSender<Decoded>,
) -> Result<()> {
    let mut check = RecordCheck::default();
    let bad = |e: records::RecordError| Error::BadState(e.to_string());
    for i in 0..n {
        let rec = reader.read_record(i)?;
        report.record_bytes += rec.body.len() as u64;
        let d = check.decode(&rec).map_err(bad)?;
        match &d {
            Decoded::Meta(m) => report.name = m.meta.name.clone(),
            Decoded::Cookies(cs) => {
                report.cookie_sites += 1;
                report.cookies += cs.len();
            }
            Decoded::Origin(o) => report.origins.push(OriginSummary {
                origin: o.origin.clone(),
                local_storage_items: o.local_storage.len(),
                indexeddb_databases: o.indexed_db.len(),
                indexeddb_records: o
                    .indexed_db
                    .iter()
                    .flat_map(|d| &d.object_stores)
                    .map(|s| s.records.len())
                    .sum(),
                bytes: rec.body.len() as u64,
            }),
            Decoded::Tab(_) => report.tabs += 1,
        }
        if tx.send(d).is_err() {
            return Ok(()); // the writer failed; its error is reported
        }
    }
    check.finish().map_err(bad)
}

/// A writer that counts what passes through it.
struct Counting<'a, W: Write> {
    inner: &'a mut W,
    n: u64,
}

impl<W: Write> Write for Counting<'_, W> {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        let k = self.inner.write(b)?;
        self.n += k as u64;
        Ok(k)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn write_json<W: Write>(rx: Receiver<Decoded>, out: &mut W) -> Result<u64> {
    let mut w = Counting { inner: out, n: 0 };
    let io = |e: std::io::Error| Error::Io {
        what: "cannot write the state JSON".into(),
        source: e,
    };
    let js = |e: serde_json::Error| match e.io_error_kind() {
        Some(k) => io(std::io::Error::new(k, e.to_string())),
        None => Error::BadState(e.to_string()),
    };
    let mut section: Option<RecordKind> = None;
    let mut first = true;
    for d in rx {
        let kind = match &d {
            Decoded::Meta(m) => {
                w.write_all(b"{\n\"meta\": ").map_err(io)?;
                serde_json::to_writer_pretty(&mut w, &m.meta).map_err(js)?;
                if !m.extra.is_empty() {
                    w.write_all(b",\n\"extra\": ").map_err(io)?;
                    serde_json::to_writer_pretty(&mut w, &m.extra).map_err(js)?;
                }
                continue;
            }
            Decoded::Cookies(_) => RecordKind::Cookies,
            Decoded::Origin(_) => RecordKind::Origin,
            Decoded::Tab(_) => RecordKind::Tab,
        };
        if section != Some(kind) {
            if section.is_some() {
                w.write_all(b"\n]").map_err(io)?;
            }
            let name = match kind {
                RecordKind::Cookies => "cookies",
                RecordKind::Origin => "origins",
                _ => "tabs",
            };
            write!(w, ",\n\"{name}\": [").map_err(io)?;
            section = Some(kind);
            first = true;
        }
        let mut item = |v: &dyn erased::Json| -> Result<()> {
            w.write_all(if first { b"\n" } else { b",\n" })
                .map_err(io)?;
            first = false;
            v.write(&mut w).map_err(js)
        };
        match &d {
            Decoded::Cookies(cs) => cs.iter().try_for_each(|c| item(c))?,
            Decoded::Origin(o) => item(o)?,
            Decoded::Tab(t) => item(t)?,
            Decoded::Meta(_) => {}
        }
    }
    if section.is_some() {
        w.write_all(b"\n]").map_err(io)?;
    }
    w.write_all(b"\n}\n").map_err(io)?;
    Ok(w.n)
}

mod erased {
    pub trait Json {
        fn write(&self, w: &mut dyn std::io::Write) -> serde_json::Result<()>;
    }
    impl<T: serde::Serialize> Json for T {
        fn write(&self, w: &mut dyn std::io::Write) -> serde_json::Result<()> {
            serde_json::to_writer(w, self)
        }
    }
}

/// Count and check everything in `reader` (every chunk verified, every
/// record decoded as `import` would), without keeping or printing a value.
/// `content.json_bytes` is the exact size `host unseal` would write.
pub fn inspect<R: Read + Seek>(reader: &mut BundleReader<R>) -> Result<InspectReport> {
    let content = unseal_to_json(reader, &mut std::io::sink())?;
    let m = reader.manifest();
    Ok(InspectReport {
        content,
        sealed_ms: m.created_ms,
        chunks: m.chunks.len(),
        chunk_bytes: m.chunks.iter().map(|c| c.len as u64).sum(),
        stored_bytes: m.chunks.iter().map(|c| c.stored as u64).sum(),
        sanitizers: m
            .sanitizers
            .iter()
            .map(|s| (s.name.clone(), s.blake3.0))
            .collect(),
    })
}

/// Seal state JSON (`host seal`'s input, SPEC.md §9) with `writer`: the
/// same records as sealing the parsed [`SessionState`], without building
/// it. Parsing runs on a second thread; origins parsed before `meta`,
/// `cookies` and `extra` are all known (e.g. `extra` written last) are
/// compressed at once and kept until their turn (memory: their compressed
/// size). `path` only names the input in errors.
pub fn seal_from_json<W: Write>(
    json: &[u8],
    path: &Path,
    mut writer: BundleWriter<W>,
) -> Result<(W, SealSummary)> {
    let (tx, rx) = sync_channel::<Msg>(AHEAD);
    let mut head_done = false;
    let mut pending: Vec<PreparedRecord> = Vec::new();
    let spine = std::thread::scope(|scope| -> Result<Spine> {
        let parser = scope.spawn(move || {
            let mut de = serde_json::Deserializer::from_slice(json);
            let spine = Top { tx: &tx }.deserialize(&mut de)?;
            de.end()?;
            Ok::<_, serde_json::Error>(spine)
        });
        let mut step = Ok(());
        for msg in rx.iter() {
            step = match msg {
                Msg::Head(recs) => {
                    head_done = true;
                    add_all(&mut writer, recs, &mut pending)
                }
                Msg::Origin(r) if head_done => writer.add_record(r.kind, &r.key, &r.body),
                Msg::Origin(r) => writer
                    .prepare_record(r.kind, r.key, &r.body)
                    .map(|p| pending.push(p)),
            };
            if step.is_err() {
                break;
            }
        }
        drop(rx); // stops the parser at its next record
        let parsed = parser
            .join()
            .unwrap_or_else(|_| Err(de::Error::custom("the JSON parser thread panicked")));
        step?;
        parsed.map_err(|e| Error::StateJson {
            path: path.into(),
            why: format!("{e} (see format-spec/SPEC.md §9 for the fields)"),
        })
    })?;
    let state = spine.state;
    let jobs = records::jobs(&state);
    let (head, tail): (Vec<&Job>, Vec<&Job>) = jobs.iter().partition(|j| !matches!(j, Job::Tab(_)));
    if !head_done {
        let recs = head
            .iter()
            .map(|j| records::job_record(&state, j))
            .collect();
        add_all(&mut writer, recs, &mut pending)?;
    }
    for j in tail {
        let r = records::job_record(&state, j);
        writer.add_record(r.kind, &r.key, &r.body)?;
    }
    writer.finish()
}

fn add_all<W: Write>(
    w: &mut BundleWriter<W>,
    recs: Vec<Record>,
    pending: &mut Vec<PreparedRecord>,
) -> Result<()> {
    for r in recs {
        w.add_record(r.kind, &r.key, &r.body)?;
    }
    pending.drain(..).try_for_each(|p| w.add_prepared_record(p))
}

enum Msg {
    /// The meta and cookie records, once known.
    Head(Vec<Record>),
    Origin(Record),
}

/// Everything of the state but its origins (which went to the channel).
struct Spine {
    state: SessionState,
}

const FIELDS: &[&str] = &["meta", "cookies", "origins", "tabs", "extra"];

/// The top-level object, parsed with `SessionState`'s rules (same fields,
/// unknown and duplicate fields refused with serde's own messages).
struct Top<'a> {
    tx: &'a SyncSender<Msg>,
}

impl<'de> DeserializeSeed<'de> for Top<'_> {
    type Value = Spine;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Spine, D::Error> {
        d.deserialize_struct("SessionState", FIELDS, self)
    }
}

type Extra = BTreeMap<String, BTreeMap<String, String>>;

impl Top<'_> {
    fn head(&self, meta: &Meta, extra: &Extra, cookies: &[Cookie]) -> Msg {
        let state = SessionState {
            meta: meta.clone(),
            extra: extra.clone(),
            cookies: cookies.to_vec(),
            ..Default::default()
        };
        Msg::Head(records::split(&state))
    }
}

impl<'de> Visitor<'de> for Top<'_> {
    type Value = Spine;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("struct SessionState")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Spine, A::Error> {
        let mut meta: Option<Meta> = None;
        let mut cookies: Option<Vec<Cookie>> = None;
        let mut tabs: Option<Vec<Tab>> = None;
        let mut extra: Option<Extra> = None;
        let mut origins_seen = false;
        while let Some(k) = map.next_key::<String>()? {
            match k.as_str() {
                "meta" if meta.is_some() => return Err(de::Error::duplicate_field("meta")),
                "meta" => meta = Some(map.next_value()?),
                "cookies" if cookies.is_some() => {
                    return Err(de::Error::duplicate_field("cookies"));
                }
                "cookies" => cookies = Some(map.next_value()?),
                "tabs" if tabs.is_some() => return Err(de::Error::duplicate_field("tabs")),
                "tabs" => tabs = Some(map.next_value()?),
                "extra" if extra.is_some() => return Err(de::Error::duplicate_field("extra")),
                "extra" => extra = Some(map.next_value()?),
                "origins" if origins_seen => return Err(de::Error::duplicate_field("origins")),
                "origins" => {
                    origins_seen = true;
                    if let (Some(m), Some(c), Some(e)) = (&meta, &cookies, &extra) {
                        self.send(self.head(m, e, c))?;
                    }
                    map.next_value_seed(Origins { tx: self.tx })?;
                }
                other => return Err(de::Error::unknown_field(other, FIELDS)),
            }
        }
        let meta = meta.ok_or_else(|| de::Error::missing_field("meta"))?;
        Ok(Spine {
            state: SessionState {
                meta,
                cookies: cookies.unwrap_or_default(),
                origins: Vec::new(),
                tabs: tabs.unwrap_or_default(),
                extra: extra.unwrap_or_default(),
            },
        })
    }

    /// `SessionState` also reads a JSON array of its fields in order.
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Spine, A::Error> {
        let meta: Meta = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(0, &self))?;
        let cookies: Vec<Cookie> = seq.next_element()?.unwrap_or_default();
        seq.next_element_seed(Origins { tx: self.tx })?;
        let tabs: Vec<Tab> = seq.next_element()?.unwrap_or_default();
        let extra: Extra = seq.next_element()?.unwrap_or_default();
        Ok(Spine {
            state: SessionState {
                meta,
                cookies,
                origins: Vec::new(),
                tabs,
                extra,
            },
        })
    }
}

impl Top<'_> {
    fn send<E: de::Error>(&self, m: Msg) -> Result<(), E> {
        send(self.tx, m)
    }
}

fn send<E: de::Error>(tx: &SyncSender<Msg>, m: Msg) -> Result<(), E> {
    tx.send(m)
        .map_err(|_| E::custom("sealing stopped (see the error above)"))
}

/// The `origins` array: each origin becomes a record as soon as it parsed.
struct Origins<'a> {
    tx: &'a SyncSender<Msg>,
}

impl<'de> DeserializeSeed<'de> for Origins<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Origins<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a sequence")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(o) = seq.next_element::<OriginState>()? {
            let r = Record {
                kind: RecordKind::Origin,
                key: o.origin.clone(),
                body: to_msgpack(&o),
            };
            drop(o);
            send(self.tx, Msg::Origin(r))?;
        }
        Ok(())
    }
}
