//! Splitting a [`SessionState`] into records and joining records back.
//!
//! A record is the unit of compression and of deduplication: one per site of
//! cookies, one per origin of storage, one per tab, and one for the session's
//! meta data. Records never mix two sites' attacker-influenced data with a
//! compressor (see SPEC.md §Records, "no cross-origin compression oracle").
//! The bundle writer and the session store both use this split, so a store
//! snapshot and a bundle of the same state hold the same record bodies.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::format::to_msgpack;
use crate::state::{Cookie, Meta, OriginState, SessionState, Tab};

/// What a record holds. The numeric value is part of the format (chunk ids
/// and AAD include it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum RecordKind {
    /// `{meta, extra}`; exactly one per state, first.
    Meta = 1,
    /// The cookies of one site (`key` = the site), as an array.
    Cookies = 2,
    /// One [`OriginState`] (`key` = the origin).
    Origin = 3,
    /// One [`Tab`] (`key` = its position, decimal).
    Tab = 4,
}

impl RecordKind {
    pub fn from_u8(b: u8) -> Option<Self> {
        Some(match b {
            1 => RecordKind::Meta,
            2 => RecordKind::Cookies,
            3 => RecordKind::Origin,
            4 => RecordKind::Tab,
            _ => return None,
        })
    }

    /// Whether bodies of this kind may be compressed. Tabs are stored raw:
    /// one tab's history and sessionStorage mix origins, and compressing them
    /// together would let one site learn another's secrets from sizes.
    pub fn compressible(self) -> bool {
        !matches!(self, RecordKind::Tab)
    }

    pub fn name(self) -> &'static str {
        match self {
            RecordKind::Meta => "meta",
            RecordKind::Cookies => "cookies",
            RecordKind::Origin => "origin",
            RecordKind::Tab => "tab",
        }
    }

    /// The record-order rule: meta comes first and only first, and kinds
    /// never decrease. `first` says whether this record is the first one;
    /// `last_kind` is the previous record's kind (0 when there is none).
    pub(crate) fn may_follow(self, first: bool, last_kind: u8) -> bool {
        first == (self == RecordKind::Meta) && self as u8 >= last_kind
    }
}

/// A record: its kind, its key, and its MessagePack body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub kind: RecordKind,
    pub key: String,
    pub body: Vec<u8>,
}

/// The body of the [`RecordKind::Meta`] record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetaRecord {
    pub meta: Meta,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, BTreeMap<String, String>>,
}

/// Why records could not be joined into a state.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("record {kind} {key:?} does not decode: {source}")]
    Decode {
        kind: &'static str,
        key: String,
        #[source]
        source: rmp_serde::decode::Error,
    },
    #[error("the records hold no meta record, or more than one")]
    Meta,
    #[error("record {kind} {key:?} is out of order or its key does not match its body")]
    Order { kind: &'static str, key: String },
}

/// Split a state into records, in the order the format requires: meta,
/// cookies by site (first appearance order), origins, tabs.
pub fn split(state: &SessionState) -> Vec<Record> {
    jobs(state).iter().map(|j| job_record(state, j)).collect()
}

/// One unit of [`split`] work, so records can be serialised in parallel
/// and in order: see [`jobs`] and [`job_record`].
#[derive(Debug, Clone)]
pub enum Job {
    Meta,
    Cookies(String, Vec<usize>),
    Origin(usize),
    Tab(usize),
}

/// The records of `state` as jobs, in [`split`] order.
pub fn jobs(state: &SessionState) -> Vec<Job> {
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    let mut groups: Vec<(String, Vec<usize>)> = Vec::new();
    for (n, c) in state.cookies.iter().enumerate() {
        let site = c.site();
        let i = *index.entry(site.clone()).or_insert_with(|| {
            groups.push((site, Vec::new()));
            groups.len() - 1
        });
        groups[i].1.push(n);
    }
    std::iter::once(Job::Meta)
        .chain(groups.into_iter().map(|(s, v)| Job::Cookies(s, v)))
        .chain((0..state.origins.len()).map(Job::Origin))
        .chain((0..state.tabs.len()).map(Job::Tab))
        .collect()
}

/// Serialise one job's record.
pub fn job_record(state: &SessionState, job: &Job) -> Record {
    match job {
        Job::Meta => Record {
            kind: RecordKind::Meta,
            key: String::new(),
            body: to_msgpack(&MetaRecord {
                meta: state.meta.clone(),
                extra: state.extra.clone(),
            }),
        },
        Job::Cookies(site, idx) => Record {
            kind: RecordKind::Cookies,
            key: site.clone(),
            body: to_msgpack(&idx.iter().map(|&i| &state.cookies[i]).collect::<Vec<_>>()),
        },
        Job::Origin(i) => {
            let o = &state.origins[*i];
            Record {
                kind: RecordKind::Origin,
                key: o.origin.clone(),
                body: to_msgpack(o),
            }
        }
        Job::Tab(i) => Record {
            kind: RecordKind::Tab,
            key: i.to_string(),
            body: to_msgpack(&state.tabs[*i]),
        },
    }
}

/// Put a state's cookies in the order [`split`]+[`join`] gives them (grouped
/// by site). Cookie order carries no meaning; this makes round trips exact.
pub fn normalize_cookie_order(state: &mut SessionState) {
    let grouped: Vec<Cookie> = jobs(state)
        .into_iter()
        .filter_map(|j| {
            if let Job::Cookies(_, idx) = j {
                Some(idx)
            } else {
                None
            }
        })
        .flatten()
        .map(|i| state.cookies[i].clone())
        .collect();
    state.cookies = grouped;
}

/// One record's body, decoded and checked by [`RecordCheck`].
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded {
    Meta(MetaRecord),
    Cookies(Vec<Cookie>),
    Origin(OriginState),
    Tab(Tab),
}

/// The per-record rules of joining, without keeping the state: order (meta
/// first and once, kinds never decrease), each body decodes as its kind, and
/// each key matches its body (cookie sites, origin, tab position). [`Joiner`]
/// and streaming readers (`state_json`) share it, so they accept the same
/// records. Memory: one record.
#[derive(Default)]
pub struct RecordCheck {
    seen_meta: bool,
    last_kind: u8,
    tabs: usize,
}

/// What [`RecordCheck::admit`] learnt of a record from its place, for
/// [`RecordCheck::decode_admitted`].
#[derive(Debug, Clone, Copy)]
pub struct Admitted {
    /// A tab record whose key is its position (other kinds: true).
    position_ok: bool,
}

impl RecordCheck {
    /// Check `r` and decode its body: [`RecordCheck::admit`] then
    /// [`RecordCheck::decode_admitted`].
    pub fn decode(&mut self, r: &Record) -> Result<Decoded, RecordError> {
        let a = self.admit(r.kind, &r.key)?;
        Self::decode_admitted(r, a)
    }

    /// The rules that depend on the records before this one (order, tab
    /// positions), without its body: records may then be decoded on
    /// several threads with [`RecordCheck::decode_admitted`]. After an
    /// error, stop: the check's state is not rolled back.
    pub fn admit(&mut self, kind: RecordKind, key: &str) -> Result<Admitted, RecordError> {
        if !kind.may_follow(!self.seen_meta, self.last_kind) {
            return Err(if kind == RecordKind::Meta || !self.seen_meta {
                RecordError::Meta
            } else {
                RecordError::Order {
                    kind: kind.name(),
                    key: key.to_string(),
                }
            });
        }
        self.last_kind = kind as u8;
        let mut position_ok = true;
        match kind {
            RecordKind::Meta => self.seen_meta = true,
            RecordKind::Tab => {
                position_ok = key == self.tabs.to_string();
                self.tabs += 1;
            }
            _ => {}
        }
        Ok(Admitted { position_ok })
    }

    /// Decode the body of a record [`RecordCheck::admit`] let in, and check
    /// its key against its body.
    pub fn decode_admitted(r: &Record, a: Admitted) -> Result<Decoded, RecordError> {
        let kind = r.kind;
        let order = || RecordError::Order {
            kind: kind.name(),
            key: r.key.clone(),
        };
        let dec = |e| RecordError::Decode {
            kind: kind.name(),
            key: r.key.clone(),
            source: e,
        };
        Ok(match kind {
            RecordKind::Meta => Decoded::Meta(rmp_serde::from_slice(&r.body).map_err(dec)?),
            RecordKind::Cookies => {
                let cs: Vec<Cookie> = rmp_serde::from_slice(&r.body).map_err(dec)?;
                if cs.iter().any(|c| c.site() != r.key) {
                    return Err(order());
                }
                Decoded::Cookies(cs)
            }
            RecordKind::Origin => {
                let o: OriginState = rmp_serde::from_slice(&r.body).map_err(dec)?;
                if o.origin != r.key {
                    return Err(order());
                }
                Decoded::Origin(o)
            }
            RecordKind::Tab => {
                let t: Tab = rmp_serde::from_slice(&r.body).map_err(dec)?;
                if !a.position_ok {
                    return Err(order());
                }
                Decoded::Tab(t)
            }
        })
    }

    /// Whether the meta record was seen (a state needs it).
    pub fn finish(&self) -> Result<(), RecordError> {
        if self.seen_meta {
            Ok(())
        } else {
            Err(RecordError::Meta)
        }
    }
}

/// Assembles a state from records in [`split`] order.
#[derive(Default)]
pub struct Joiner {
    check: RecordCheck,
    meta: Option<MetaRecord>,
    state: SessionState,
}

impl Joiner {
    pub fn push(&mut self, r: &Record) -> Result<(), RecordError> {
        match self.check.decode(r)? {
            Decoded::Meta(m) => self.meta = Some(m),
            Decoded::Cookies(cs) => self.state.cookies.extend(cs),
            Decoded::Origin(o) => self.state.origins.push(o),
            Decoded::Tab(t) => self.state.tabs.push(t),
        }
        Ok(())
    }

    pub fn finish(mut self) -> Result<SessionState, RecordError> {
        let m = self.meta.ok_or(RecordError::Meta)?;
        self.state.meta = m.meta;
        self.state.extra = m.extra;
        Ok(self.state)
    }
}

/// Join records (in [`split`] order) back into a state.
pub fn join<'a>(
    records: impl IntoIterator<Item = &'a Record>,
) -> Result<SessionState, RecordError> {
    let mut j = Joiner::default();
    for r in records {
        j.push(r)?;
    }
    j.finish()
}

/// Content-defined chunking of a record body, so that an unchanged part of a
/// large record (a big IndexedDB) keeps its chunk ids across versions.
///
/// Bodies up to [`CDC_THRESHOLD`] are one chunk. Larger ones are cut with
/// FastCDC 2020 (fastcdc 5.0.0, normalisation level 2, unseeded gear table)
/// at min 16 KiB / average 64 KiB / max 256 KiB. Cost: ~1 GB/s of hashing,
/// paid only on bodies over the threshold.
pub fn chunk_bounds(body: &[u8]) -> Vec<std::ops::Range<usize>> {
    if body.len() <= CDC_THRESHOLD {
        return std::iter::once(0..body.len()).collect();
    }
    fastcdc::v2020::FastCDC::with_level(
        body,
        CDC_MIN,
        CDC_AVG,
        CDC_MAX,
        fastcdc::v2020::Normalization::Level2,
    )
    .map(|c| c.offset..c.offset + c.length)
    .collect()
}

/// Bodies up to this size are never split.
pub const CDC_THRESHOLD: usize = 256 * 1024;
pub const CDC_MIN: usize = 16 * 1024;
pub const CDC_AVG: usize = 64 * 1024;
/// Largest chunk plaintext a writer produces; readers accept up to
/// [`crate::format::MAX_CHUNK_LEN`].
pub const CDC_MAX: usize = 256 * 1024;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::*;

    fn cookie(name: &str, domain: &str) -> Cookie {
        Cookie {
            name: name.into(),
            value: "v".into(),
            domain: domain.into(),
            path: "/".into(),
            ..Default::default()
        }
    }

    #[test]
    fn split_join_round_trip_groups_cookies_by_site() {
        let mut s = SessionState::new("x", 1);
        s.cookies = vec![
            cookie("a", ".a.com"),
            cookie("b", "b.com"),
            cookie("c", "a.com"),
        ];
        s.origins.push(OriginState {
            origin: "https://a.com".into(),
            ..Default::default()
        });
        s.tabs.push(Tab {
            url: "https://a.com/".into(),
            ..Default::default()
        });
        let recs = split(&s);
        assert_eq!(
            recs.iter().map(|r| r.kind).collect::<Vec<_>>(),
            vec![
                RecordKind::Meta,
                RecordKind::Cookies,
                RecordKind::Cookies,
                RecordKind::Origin,
                RecordKind::Tab
            ]
        );
        let back = join(&recs).unwrap();
        normalize_cookie_order(&mut s);
        assert_eq!(back, s);
        assert_eq!(
            back.cookies
                .iter()
                .map(|c| c.name.as_str())
                .collect::<String>(),
            "acb"
        );
    }

    #[test]
    fn join_rejects_misplaced_records() {
        let s = SessionState::new("x", 1);
        let mut recs = split(&s);
        recs.push(recs[0].clone());
        assert!(matches!(join(&recs), Err(RecordError::Meta)));
        let mut o = split(&s);
        o.push(Record {
            kind: RecordKind::Origin,
            key: "https://b".into(),
            body: to_msgpack(&OriginState {
                origin: "https://c".into(),
                ..Default::default()
            }),
        });
        assert!(matches!(join(&o), Err(RecordError::Order { .. })));
    }

    #[test]
    fn large_bodies_are_cut_within_bounds() {
        let mut body = vec![0u8; 2 * 1024 * 1024];
        let mut x = 1u32;
        for b in &mut body {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            *b = x as u8;
        }
        let cuts = chunk_bounds(&body);
        assert!(cuts.len() > 4);
        assert_eq!(cuts.last().unwrap().end, body.len());
        for w in cuts.windows(2) {
            assert_eq!(w[0].end, w[1].start);
        }
        assert!(cuts.iter().all(|c| c.len() <= CDC_MAX));
    }
}
