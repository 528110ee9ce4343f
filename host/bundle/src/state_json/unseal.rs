//! [`unseal_to_json`]: a bundle as state JSON, on several threads.
//!
//! This thread reads records in order (decrypt, decompress, verify each
//! chunk) and applies the order rules ([`RecordCheck::admit`]); workers
//! ([`par`]) decode each body ([`RecordCheck::decode_admitted`]) and print
//! it as JSON text; a writer thread writes the texts in order. Memory: a
//! few records in flight, never the state.

use std::io::{Read, Seek, Write};

use super::{AHEAD, OriginSummary, UnsealReport};
use crate::error::{Error, Result};
use crate::par;
use crate::reader::BundleReader;
use crate::records::{Admitted, Decoded, Record, RecordCheck, RecordError, RecordKind};

/// Stream the state of `reader` as JSON to `out`, verifying every chunk
/// and checking every record as [`BundleReader::read_state`] does. On error
/// `out` holds a prefix of the JSON: write to a temp file and drop it.
/// Reading runs on this thread, decoding and printing on workers (one per
/// core, at most 4), writing on one more.
pub fn unseal_to_json<R: Read + Seek, W: Write + Send>(
    reader: &mut BundleReader<R>,
    out: &mut W,
) -> Result<UnsealReport> {
    let n = reader.manifest().records.len();
    let report = std::thread::scope(|scope| {
        let (mut feed, results) = par::spawn(
            scope,
            par::workers(),
            AHEAD,
            || (),
            |_: &mut (), job: Result<(Record, Admitted)>| job.and_then(print),
        );
        let json = scope.spawn(move || write_json(results, out));
        read_records(reader, n, &mut feed);
        drop(feed);
        json.join()
            .unwrap_or_else(|_| Err(Error::Usage("the JSON writer thread panicked".into())))
    })?;
    Ok(UnsealReport {
        records: n,
        ..report
    })
}

fn bad(e: RecordError) -> Error {
    Error::BadState(e.to_string())
}

/// Feed every record, or the first error (which ends the JSON).
fn read_records<R: Read + Seek>(
    reader: &mut BundleReader<R>,
    n: usize,
    feed: &mut par::Feed<Result<(Record, Admitted)>>,
) {
    let mut check = RecordCheck::default();
    for i in 0..n {
        let job = reader.read_record(i).and_then(|rec| {
            let a = check.admit(rec.kind, &rec.key).map_err(bad)?;
            Ok((rec, a))
        });
        let failed = job.is_err();
        if !feed.send(job) || failed {
            return; // the writer failed (its error is reported), or we did
        }
    }
    if let Err(e) = check.finish() {
        feed.send(Err(bad(e)));
    }
}

/// One record as JSON text, with its counts for the report.
struct Printed {
    kind: RecordKind,
    /// Meta: the `"meta"` (and `"extra"`) members; others: the items,
    /// joined by `,\n`.
    text: Vec<u8>,
    items: usize,
    body_len: u64,
    name: Option<String>,
    origin: Option<OriginSummary>,
}

fn js(e: serde_json::Error) -> Error {
    Error::BadState(e.to_string())
}

fn print((rec, a): (Record, Admitted)) -> Result<Printed> {
    let mut p = Printed {
        kind: rec.kind,
        text: Vec::with_capacity(rec.body.len() + rec.body.len() / 2 + 64),
        items: 1,
        body_len: rec.body.len() as u64,
        name: None,
        origin: None,
    };
    if rec.kind == RecordKind::Origin {
        if let Some(c) = super::fast::origin_to_json(&rec.body, &rec.key, &mut p.text) {
            p.origin = Some(OriginSummary {
                origin: rec.key,
                local_storage_items: c.local_storage_items,
                indexeddb_databases: c.indexeddb_databases,
                indexeddb_records: c.indexeddb_records,
                bytes: p.body_len,
            });
            return Ok(p);
        }
        p.text.clear(); // serde decides
    }
    let d = RecordCheck::decode_admitted(&rec, a).map_err(bad)?;
    let w = &mut p.text;
    match &d {
        Decoded::Meta(m) => {
            w.extend_from_slice(b"{\n\"meta\": ");
            serde_json::to_writer_pretty(&mut *w, &m.meta).map_err(js)?;
            if !m.extra.is_empty() {
                w.extend_from_slice(b",\n\"extra\": ");
                serde_json::to_writer_pretty(&mut *w, &m.extra).map_err(js)?;
            }
            p.name = Some(m.meta.name.clone());
        }
        Decoded::Cookies(cs) => {
            for (i, c) in cs.iter().enumerate() {
                if i > 0 {
                    w.extend_from_slice(b",\n");
                }
                serde_json::to_writer(&mut *w, c).map_err(js)?;
            }
            p.items = cs.len();
        }
        Decoded::Origin(o) => {
            serde_json::to_writer(&mut *w, o).map_err(js)?;
            p.origin = Some(OriginSummary {
                origin: o.origin.clone(),
                local_storage_items: o.local_storage.len(),
                indexeddb_databases: o.indexed_db.len(),
                indexeddb_records: o
                    .indexed_db
                    .iter()
                    .flat_map(|d| &d.object_stores)
                    .map(|s| s.records.len())
                    .sum(),
                bytes: p.body_len,
            });
        }
        Decoded::Tab(t) => serde_json::to_writer(&mut *w, t).map_err(js)?,
    }
    Ok(p)
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

/// Write the printed records in order: the layout of the module doc.
fn write_json<W: Write>(
    printed: impl Iterator<Item = Result<Printed>>,
    out: &mut W,
) -> Result<UnsealReport> {
    let mut w = Counting { inner: out, n: 0 };
    let io = |e: std::io::Error| Error::Io {
        what: "cannot write the state JSON".into(),
        source: e,
    };
    let mut report = UnsealReport::default();
    let mut section: Option<RecordKind> = None;
    let mut first = true;
    for p in printed {
        let p = p?;
        report.record_bytes += p.body_len;
        match p.kind {
            RecordKind::Meta => report.name = p.name.unwrap_or_default(),
            RecordKind::Cookies => {
                report.cookie_sites += 1;
                report.cookies += p.items;
            }
            RecordKind::Origin => report.origins.extend(p.origin),
            RecordKind::Tab => report.tabs += 1,
        }
        if p.kind == RecordKind::Meta {
            w.write_all(&p.text).map_err(io)?;
            continue;
        }
        if section != Some(p.kind) {
            if section.is_some() {
                w.write_all(b"\n]").map_err(io)?;
            }
            let name = match p.kind {
                RecordKind::Cookies => "cookies",
                RecordKind::Origin => "origins",
                _ => "tabs",
            };
            write!(w, ",\n\"{name}\": [").map_err(io)?;
            section = Some(p.kind);
            first = true;
        }
        if p.items > 0 {
            w.write_all(if first { b"\n" } else { b",\n" })
                .map_err(io)?;
            w.write_all(&p.text).map_err(io)?;
            first = false;
        }
    }
    if section.is_some() {
        w.write_all(b"\n]").map_err(io)?;
    }
    w.write_all(b"\n}\n").map_err(io)?;
    report.json_bytes = w.n;
    Ok(report)
}
