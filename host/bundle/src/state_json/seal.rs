//! [`seal_from_json`]: state JSON straight into records, on several
//! threads.
//!
//! A scan thread ([`scan`]) splits the top level; the small fields (meta,
//! cookies, tabs, extra) are parsed there, each origin goes to a worker
//! ([`par`]) that parses, encodes, chunks, hashes and compresses it; this
//! thread encrypts and writes in order. When anything in the input is
//! wrong, the input is parsed again by serde alone ([`Top`]), so the error
//! is serde's own, exactly as parsing a [`SessionState`] reports it. A top
//! level that is not an object (a state as a JSON array) is sealed by that
//! serial parser.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

use super::AHEAD;
use super::scan::{self, Event, Stop};
use crate::error::{Error, Result};
use crate::format::to_msgpack;
use crate::par;
use crate::records::{self, Job, Record, RecordKind};
use crate::state::{Cookie, Meta, OriginState, SessionState, Tab};
use crate::writer::{BundleWriter, Compressor, Prepared, Preparer, SealSummary};

/// Seal state JSON (`host seal`'s input, SPEC.md §9) with `writer`: the
/// same records as sealing the parsed [`SessionState`], without building
/// it. Origins are parsed and compressed on worker threads, as many as
/// there are cores (at most 4), while this thread encrypts and writes;
/// origins parsed before `meta`, `cookies` and `extra` are all known (e.g.
/// `extra` written last) are kept compressed until their turn (memory:
/// their compressed size). `path` only names the input in errors.
pub fn seal_from_json<W: Write>(
    json: &[u8],
    path: &Path,
    mut writer: BundleWriter<W>,
) -> Result<(W, SealSummary)> {
    let prep = writer.preparer();
    let mut head_done = false;
    let mut pending: Vec<Prepared> = Vec::new();
    let (written, scanned) = std::thread::scope(|scope| {
        let (feed, results) = par::spawn(
            scope,
            par::workers(),
            AHEAD,
            || prep.compressor(),
            |c: &mut Result<Compressor>, job: Work<'_>| work(&prep, c, job),
        );
        let scanner = scope.spawn(move || split(json, feed));
        let mut results = results;
        let mut step: std::result::Result<(), Fail> = Ok(());
        for out in results.by_ref() {
            step = out.and_then(|done| match done {
                Done::Head(recs) => {
                    head_done = true;
                    add_all(&mut writer, recs, &mut pending).map_err(Fail::Err)
                }
                Done::Origin(p) if head_done => writer.add_prepared(p).map_err(Fail::Err),
                Done::Origin(p) => {
                    pending.push(p);
                    Ok(())
                }
            });
            if step.is_err() {
                break;
            }
        }
        drop(results); // stops the workers and so the scan
        let scanned = scanner
            .join()
            .unwrap_or_else(|_| Err(Fail::Err(panicked("scan"))));
        (step, scanned)
    });
    // An input error explains a pipeline that stopped early: report it first.
    let spine = match (scanned, written) {
        (Err(Fail::NotAnObject), _) => return seal_serial(json, path, writer),
        (Err(Fail::Json), _) | (_, Err(Fail::Json)) => return Err(json_error(json, path)),
        (Err(Fail::Err(e)), _) | (_, Err(Fail::Err(e))) => return Err(e),
        (Ok(spine), Ok(())) => spine,
        // The workers stopped without a result: one of them died.
        (Err(Fail::Stopped), _) | (_, Err(Fail::Stopped | Fail::NotAnObject)) => {
            return Err(panicked("worker"));
        }
    };
    finish(writer, spine, head_done, pending, &prep)
}

/// Why the parallel seal stopped.
enum Fail {
    /// The input is not a valid state: [`json_error`] names the problem.
    Json,
    /// Not an object at the top level: seal it with [`seal_serial`].
    NotAnObject,
    /// The scan could not hand on its work (the writer stopped first).
    Stopped,
    Err(Error),
}

fn panicked(what: &str) -> Error {
    Error::Usage(format!("the JSON {what} thread panicked"))
}

/// Work for a worker.
enum Work<'a> {
    /// The meta and cookie records, once known.
    Head(Vec<Record>),
    /// One element of `origins`, unparsed.
    Origin(&'a [u8]),
}

enum Done {
    Head(Vec<Prepared>),
    Origin(Prepared),
}

fn work(
    prep: &Preparer,
    c: &mut Result<Compressor>,
    job: Work<'_>,
) -> std::result::Result<Done, Fail> {
    let c = match c {
        Ok(c) => c,
        Err(e) => return Err(Fail::Err(Error::Usage(format!("{e}")))),
    };
    match job {
        Work::Head(recs) => recs
            .into_iter()
            .map(|r| prep.prepare(c, r.kind, r.key, &r.body))
            .collect::<Result<Vec<_>>>()
            .map(Done::Head)
            .map_err(Fail::Err),
        Work::Origin(text) => {
            let mut body = Vec::with_capacity(text.len());
            let origin = match super::fast::origin_to_msgpack(text, &mut body) {
                Some(origin) => origin,
                None => {
                    let o: OriginState = serde_json::from_slice(text).map_err(|_| Fail::Json)?;
                    body = to_msgpack(&o);
                    o.origin
                }
            };
            prep.prepare(c, RecordKind::Origin, origin, &body)
                .map(Done::Origin)
                .map_err(Fail::Err)
        }
    }
}

/// The scan thread: the small fields parsed here, origins fed to workers.
/// Same rules as [`Top`] (which has serde's messages for them).
fn split<'a>(json: &'a [u8], mut feed: par::Feed<Work<'a>>) -> std::result::Result<Spine, Fail> {
    let mut meta: Option<Meta> = None;
    let mut cookies: Option<Vec<Cookie>> = None;
    let mut tabs: Option<Vec<Tab>> = None;
    let mut extra: Option<Extra> = None;
    let mut origins_seen = false;
    let (mut bad, mut stopped) = (false, false);
    fn parse<'a, T: serde::Deserialize<'a>>(slot: &mut Option<T>, v: &'a [u8]) -> bool {
        if slot.is_some() {
            return false; // duplicate field
        }
        *slot = serde_json::from_slice(v).ok();
        slot.is_some()
    }
    let scanned = scan::scan(json, |ev| {
        let ok = match ev {
            Event::Field(k, v) => match k.as_str() {
                "meta" => parse(&mut meta, v),
                "cookies" => parse(&mut cookies, v),
                "tabs" => parse(&mut tabs, v),
                "extra" => parse(&mut extra, v),
                _ => false, // unknown, or `origins` that is not an array
            },
            Event::OriginsStart if origins_seen => false,
            Event::OriginsStart => {
                origins_seen = true;
                match (&meta, &cookies, &extra) {
                    (Some(m), Some(c), Some(e)) => {
                        stopped = !feed.send(Work::Head(head(m, e, c)));
                        !stopped
                    }
                    _ => true,
                }
            }
            Event::Origin(v) => {
                stopped = !feed.send(Work::Origin(v));
                !stopped
            }
        };
        bad |= !ok && !stopped;
        ok
    });
    match scanned {
        Err(Stop::NotAnObject) => return Err(Fail::NotAnObject),
        // A refused send means the writer stopped; it reports why.
        Err(Stop::Handler) if stopped => return Err(Fail::Stopped),
        Err(Stop::Invalid | Stop::Handler) => return Err(Fail::Json),
        Ok(()) if bad => return Err(Fail::Json),
        Ok(()) => {}
    }
    Ok(Spine {
        state: SessionState {
            meta: meta.ok_or(Fail::Json)?,
            cookies: cookies.unwrap_or_default(),
            origins: Vec::new(),
            tabs: tabs.unwrap_or_default(),
            extra: extra.unwrap_or_default(),
        },
    })
}

/// serde's error for `json` (parsed the serial way, values dropped).
fn json_error(json: &[u8], path: &Path) -> Error {
    let mut de = serde_json::Deserializer::from_slice(json);
    let r = Top {
        sink: &mut |_: Msg| true,
    }
    .deserialize(&mut de)
    .and_then(|_| de.end());
    match r {
        Err(e) => state_json_error(path, e),
        // The parallel path refused what serde accepts: a bug here.
        Ok(()) => Error::Usage(format!(
            "{}: the parallel parser refused a state serde accepts (a bug in sessbundle's state_json::scan; please report it)",
            path.display()
        )),
    }
}

fn state_json_error(path: &Path, e: serde_json::Error) -> Error {
    Error::StateJson {
        path: path.into(),
        why: format!("{e} (see format-spec/SPEC.md §9 for the fields)"),
    }
}

/// Seal by serde alone, on this thread: for a state given as a JSON array.
fn seal_serial<W: Write>(
    json: &[u8],
    path: &Path,
    mut writer: BundleWriter<W>,
) -> Result<(W, SealSummary)> {
    let prep = writer.preparer();
    let mut c = prep.compressor()?;
    let mut head_done = false;
    let mut pending: Vec<Prepared> = Vec::new();
    let mut failed: Option<Error> = None;
    let mut sink = |m: Msg| {
        let step = match m {
            Msg::Head(recs) => {
                head_done = true;
                recs.into_iter()
                    .map(|r| prep.prepare(&mut c, r.kind, r.key, &r.body))
                    .collect::<Result<Vec<_>>>()
                    .and_then(|recs| add_all(&mut writer, recs, &mut pending))
            }
            Msg::Origin(o) => {
                let body = to_msgpack(&o);
                prep.prepare(&mut c, RecordKind::Origin, o.origin, &body)
                    .and_then(|p| {
                        if head_done {
                            writer.add_prepared(p)
                        } else {
                            pending.push(p);
                            Ok(())
                        }
                    })
            }
        };
        step.map_err(|e| failed = Some(e)).is_ok()
    };
    let mut de = serde_json::Deserializer::from_slice(json);
    let parsed = Top { sink: &mut sink }.deserialize(&mut de);
    let parsed = parsed.and_then(|spine| de.end().map(|()| spine));
    if let Some(e) = failed {
        return Err(e);
    }
    let spine = parsed.map_err(|e| state_json_error(path, e))?;
    finish(writer, spine, head_done, pending, &prep)
}

/// The records after the origins (tabs), and the head when it was not
/// known before the origins.
fn finish<W: Write>(
    mut writer: BundleWriter<W>,
    spine: Spine,
    head_done: bool,
    mut pending: Vec<Prepared>,
    prep: &Preparer,
) -> Result<(W, SealSummary)> {
    let state = spine.state;
    let jobs = records::jobs(&state);
    let (head, tail): (Vec<&Job>, Vec<&Job>) = jobs.iter().partition(|j| !matches!(j, Job::Tab(_)));
    let mut c = prep.compressor()?;
    if !head_done {
        let recs = head
            .iter()
            .map(|j| {
                let r = records::job_record(&state, j);
                prep.prepare(&mut c, r.kind, r.key, &r.body)
            })
            .collect::<Result<Vec<_>>>()?;
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
    recs: Vec<Prepared>,
    pending: &mut Vec<Prepared>,
) -> Result<()> {
    recs.into_iter()
        .chain(pending.drain(..))
        .try_for_each(|p| w.add_prepared(p))
}

fn head(meta: &Meta, extra: &Extra, cookies: &[Cookie]) -> Vec<Record> {
    let state = SessionState {
        meta: meta.clone(),
        extra: extra.clone(),
        cookies: cookies.to_vec(),
        ..Default::default()
    };
    records::split(&state)
}

/// What the serial parser hands on.
enum Msg {
    /// The meta and cookie records, once known.
    Head(Vec<Record>),
    Origin(OriginState),
}

/// Everything of the state but its origins.
struct Spine {
    state: SessionState,
}

const FIELDS: &[&str] = &["meta", "cookies", "origins", "tabs", "extra"];

type Extra = BTreeMap<String, BTreeMap<String, String>>;

/// The serial parser: the top-level object with `SessionState`'s rules
/// (same fields, unknown and duplicate fields refused with serde's own
/// messages), each origin handed to `sink` as it is parsed (false: stop).
struct Top<'a> {
    sink: &'a mut dyn FnMut(Msg) -> bool,
}

impl<'de> DeserializeSeed<'de> for Top<'_> {
    type Value = Spine;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Spine, D::Error> {
        d.deserialize_struct("SessionState", FIELDS, self)
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
                        send(self.sink, Msg::Head(head(m, e, c)))?;
                    }
                    map.next_value_seed(Origins {
                        sink: &mut *self.sink,
                    })?;
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
        seq.next_element_seed(Origins {
            sink: &mut *self.sink,
        })?;
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

fn send<E: de::Error>(sink: &mut dyn FnMut(Msg) -> bool, m: Msg) -> Result<(), E> {
    if sink(m) {
        Ok(())
    } else {
        Err(E::custom("sealing stopped (see the error above)"))
    }
}

/// The `origins` array: each origin handed on as soon as it parsed.
struct Origins<'a> {
    sink: &'a mut dyn FnMut(Msg) -> bool,
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
            send(self.sink, Msg::Origin(o))?;
        }
        Ok(())
    }
}
