//! The bucket probe: does this backend really apply conditional writes,
//! and atomically? Several `host run` processes may share a bucket only if
//! it does (STORE.md "Conditional writes").
//!
//! A backend's declared [`Capability`] is not trusted: s3s-fs 0.14 and moto
//! answer every single conditional request correctly and still let two
//! concurrent create-only writers both win. So the probe, under
//! `probe/<random>/`:
//! 1. `declared`: the backend declares [`Capability::AtomicConditionalWrites`];
//! 2. `create`: create-only on a new key succeeds and returns an ETag;
//! 3. `if-none-match`: create-only on the now existing key fails;
//! 4. `if-match-wrong`: compare-and-swap with a wrong ETag fails;
//! 5. `if-match-right`: compare-and-swap with the current ETag succeeds, and
//!    a read returns the new bytes under the returned ETag (the plugin's
//!    `etag_quotes=auto` deals with RGW's unquoted If-Match);
//! 6. `if-match-stale`: compare-and-swap with the replaced ETag fails;
//! 7. `create-race` and `cas-race`: [`ROUNDS`] rounds of two threads,
//!    released together by a barrier, racing a create-only write on a fresh
//!    key, then a compare-and-swap on it from the same ETag: no round may
//!    have two winners. Ambiguous answers (5xx, timeout) are resolved by
//!    reading the key back.
//!
//! It then deletes its keys (best effort) and returns a [`ProbeReport`]
//! with timings, or a [`ProbeError`] naming the failed check.

use std::sync::Barrier;
use std::time::{Duration, Instant};

use crate::backend::{Backend, BackendError, BackendErrorKind, Capability, Etag, Precondition};

/// Race rounds of each kind.
pub const ROUNDS: usize = 20;

/// One check that passed, and how long it took.
#[derive(Debug, Clone)]
pub struct CheckTiming {
    pub check: &'static str,
    pub took: Duration,
}

/// What the probe saw on a backend that passed.
#[derive(Debug, Clone)]
pub struct ProbeReport {
    pub checks: Vec<CheckTiming>,
    /// Race rounds of each kind run.
    pub rounds: usize,
    /// Rounds in which both create-only writers succeeded (0 on a pass).
    pub create_double_wins: usize,
    /// Rounds in which both compare-and-swap writers succeeded (0 on a pass).
    pub cas_double_wins: usize,
    /// Race writes answered "outcome unknown" or "conflict" (resolved by
    /// reading back; RGW answers 500 to many losers).
    pub ambiguous: usize,
    pub total: Duration,
}

/// Why a backend is unfit for sharing between processes.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "the storage backend failed the conditional-write check `{check}`: {detail}; several `host run` processes can share a bucket only with atomic conditional writes: use AWS S3, Ceph RGW or a local directory (s3s-fs 0.14, moto, Garage and s3rver are not fit)"
)]
pub struct ProbeError {
    /// The check that failed (see the module docs).
    pub check: &'static str,
    pub detail: String,
}

fn fail(check: &'static str, detail: impl Into<String>) -> ProbeError {
    ProbeError {
        check,
        detail: detail.into(),
    }
}

fn backend_fail(check: &'static str, what: &str, e: &BackendError) -> ProbeError {
    fail(check, format!("{what} failed: {e}"))
}

/// Retries a single-request check over transient answers (conflict,
/// unavailable) a few times; outcome-unknown is returned to the caller.
fn retrying<T>(mut f: impl FnMut() -> Result<T, BackendError>) -> Result<T, BackendError> {
    let mut tries = 0;
    loop {
        match f() {
            Err(e)
                if tries < 3
                    && matches!(
                        e.kind,
                        BackendErrorKind::Conflict | BackendErrorKind::Unavailable
                    ) =>
            {
                tries += 1;
                std::thread::sleep(Duration::from_millis(20 * tries));
            }
            r => return r,
        }
    }
}

/// A write that must be refused: precondition-failed passes; so does an
/// ambiguous answer (5xx, a connection cut by a server that answered
/// before reading the body) after which the key still holds `unchanged`.
fn must_refuse(
    backend: &dyn Backend,
    check: &'static str,
    key: &str,
    unchanged: &[u8],
    r: Result<Etag, BackendError>,
    applied: &str,
) -> Result<(), ProbeError> {
    match r {
        Err(e) if e.kind == BackendErrorKind::PreconditionFailed => Ok(()),
        Err(e) if e.kind == BackendErrorKind::UnknownOutcome => match backend.get(key) {
            Ok(Some(b)) if b == unchanged => Ok(()),
            Ok(_) => Err(fail(check, format!("{applied} (answered: {e})"))),
            Err(e) => Err(backend_fail(check, "reading the key back", &e)),
        },
        Ok(_) => Err(fail(check, applied)),
        Err(e) => Err(backend_fail(check, "the write", &e)),
    }
}

/// Runs the probe (see the module docs) on `backend`.
pub fn conditional_writes(backend: &dyn Backend) -> Result<ProbeReport, ProbeError> {
    let mut r = [0u8; 8];
    getrandom::fill(&mut r).map_err(|e| fail("setup", format!("no OS randomness: {e}")))?;
    let dir = format!("probe/{}", sessbundle::keys::hex(&r));
    let result = run(backend, &dir);
    // Best-effort cleanup of everything the probe wrote.
    if let Ok(keys) = backend.list(&format!("{dir}/")) {
        for k in keys {
            let _ = backend.delete(&k);
        }
    }
    result
}

fn run(backend: &dyn Backend, dir: &str) -> Result<ProbeReport, ProbeError> {
    let start = Instant::now();
    let mut checks = Vec::new();
    let mut timed = |check: &'static str, t: Instant| {
        checks.push(CheckTiming {
            check,
            took: t.elapsed(),
        })
    };

    let t = Instant::now();
    if !backend
        .capabilities()
        .contains(&Capability::AtomicConditionalWrites)
    {
        return Err(fail(
            "declared",
            "the backend does not declare atomic conditional writes (or could not be asked; a storage plugin built against sesshost:plugin/storage@0.1.0 has none: rebuild it against 0.2.0)",
        ));
    }
    timed("declared", t);

    let key = format!("{dir}/k");
    let t = Instant::now();
    let e1 = retrying(|| backend.put_if(&key, b"probe 1", Precondition::IfAbsent))
        .map_err(|e| backend_fail("create", "a create-only write of a new key", &e))?;
    timed("create", t);

    let t = Instant::now();
    must_refuse(
        backend,
        "if-none-match",
        &key,
        b"probe 1",
        retrying(|| backend.put_if(&key, b"probe 2", Precondition::IfAbsent)),
        "a create-only write (If-None-Match: *) of an existing key succeeded: the server ignores If-None-Match",
    )?;
    timed("if-none-match", t);

    let t = Instant::now();
    let wrong = Etag("0123456789abcdef0123456789abcdef".into());
    must_refuse(
        backend,
        "if-match-wrong",
        &key,
        b"probe 1",
        retrying(|| backend.put_if(&key, b"probe 3", Precondition::IfMatch(wrong.clone()))),
        "a write with If-Match and a wrong ETag succeeded: the server ignores If-Match",
    )?;
    timed("if-match-wrong", t);

    let t = Instant::now();
    let e2 = retrying(|| backend.put_if(&key, b"probe 4", Precondition::IfMatch(e1.clone())))
        .map_err(|e| {
            backend_fail(
                "if-match-right",
                &format!("a write with If-Match and the current ETag {e1} (for Ceph RGW set etag_quotes=unquoted or auto)"),
                &e,
            )
        })?;
    match backend.get_with_etag(&key) {
        Ok(Some((bytes, etag))) if bytes == b"probe 4" && etag == e2 => {}
        Ok(Some((bytes, etag))) => {
            return Err(fail(
                "if-match-right",
                format!(
                    "after a successful If-Match write the key reads back {} bytes under ETag {etag}, not the written bytes under the returned ETag {e2}",
                    bytes.len()
                ),
            ));
        }
        Ok(None) => {
            return Err(fail(
                "if-match-right",
                "the key vanished after an If-Match write",
            ));
        }
        Err(e) => return Err(backend_fail("if-match-right", "reading the key back", &e)),
    }
    timed("if-match-right", t);

    let t = Instant::now();
    must_refuse(
        backend,
        "if-match-stale",
        &key,
        b"probe 4",
        retrying(|| backend.put_if(&key, b"probe 5", Precondition::IfMatch(e1.clone()))),
        "a write with If-Match and a replaced ETag succeeded",
    )?;
    timed("if-match-stale", t);

    let t = Instant::now();
    let (create_double_wins, cas_double_wins, ambiguous) = races(backend, dir)?;
    if create_double_wins > 0 {
        return Err(fail(
            "create-race",
            format!(
                "in {create_double_wins} of {ROUNDS} rounds two concurrent create-only writes of one key both succeeded: the server applies If-None-Match non-atomically (as s3s-fs 0.14 and moto do)"
            ),
        ));
    }
    if cas_double_wins > 0 {
        return Err(fail(
            "cas-race",
            format!(
                "in {cas_double_wins} of {ROUNDS} rounds two concurrent If-Match writes from the same ETag both succeeded: the server applies If-Match non-atomically (an update is lost)"
            ),
        ));
    }
    timed("races", t);

    Ok(ProbeReport {
        checks,
        rounds: ROUNDS,
        create_double_wins,
        cas_double_wins,
        ambiguous,
        total: start.elapsed(),
    })
}

/// One writer's answer in a race round.
enum Outcome {
    Won,
    Lost,
    /// Ambiguous (5xx, timeout, 409): resolved by reading back.
    Unknown,
}

fn classify(r: Result<Etag, BackendError>) -> Result<Outcome, BackendError> {
    match r {
        Ok(_) => Ok(Outcome::Won),
        Err(e) if e.kind == BackendErrorKind::PreconditionFailed => Ok(Outcome::Lost),
        Err(e)
            if matches!(
                e.kind,
                BackendErrorKind::UnknownOutcome | BackendErrorKind::Conflict
            ) =>
        {
            Ok(Outcome::Unknown)
        }
        Err(e) => Err(e),
    }
}

/// Runs both race kinds; returns (create double wins, CAS double wins,
/// ambiguous answers).
fn races(backend: &dyn Backend, dir: &str) -> Result<(usize, usize, usize), ProbeError> {
    let barrier = Barrier::new(2);
    let mut create_double = 0;
    let mut cas_double = 0;
    let mut ambiguous = 0;
    for round in 0..ROUNDS {
        let key = format!("{dir}/race-{round}");
        // Create race.
        let bodies = [format!("a{round}"), format!("b{round}")];
        let outcomes = race_pair(&barrier, |i| {
            backend.put_if(&key, bodies[i].as_bytes(), Precondition::IfAbsent)
        })
        .map_err(|e| backend_fail("create-race", "a racing create-only write", &e))?;
        let (current, etag) = match backend.get_with_etag(&key) {
            Ok(Some(x)) => x,
            Ok(None) => {
                // Both lost or failed ambiguously without applying: the
                // round proves nothing but is no double win.
                continue;
            }
            Err(e) => return Err(backend_fail("create-race", "reading the raced key", &e)),
        };
        let (won, unknown) = tally(&outcomes, &bodies, &current);
        ambiguous += unknown;
        if won > 1 {
            create_double += 1;
        }

        // CAS race from the same ETag.
        let bodies = [format!("c{round}"), format!("d{round}")];
        let outcomes = race_pair(&barrier, |i| {
            backend.put_if(
                &key,
                bodies[i].as_bytes(),
                Precondition::IfMatch(etag.clone()),
            )
        })
        .map_err(|e| backend_fail("cas-race", "a racing If-Match write", &e))?;
        let current = match backend.get(&key) {
            Ok(Some(b)) => b,
            Ok(None) => return Err(fail("cas-race", "the raced key vanished")),
            Err(e) => return Err(backend_fail("cas-race", "reading the raced key", &e)),
        };
        let (won, unknown) = tally(&outcomes, &bodies, &current);
        ambiguous += unknown;
        if won > 1 {
            cas_double += 1;
        }
    }
    Ok((create_double, cas_double, ambiguous))
}

/// Two threads, released together, each running `write(i)`.
fn race_pair(
    barrier: &Barrier,
    write: impl Fn(usize) -> Result<Etag, BackendError> + Sync,
) -> Result<[Outcome; 2], BackendError> {
    std::thread::scope(|s| {
        let handles = [0, 1].map(|i| {
            let write = &write;
            s.spawn(move || {
                barrier.wait();
                classify(write(i))
            })
        });
        let [a, b] = handles.map(|h| {
            h.join().unwrap_or_else(|_| {
                Err(BackendError::new(
                    BackendErrorKind::Other,
                    "a probe thread panicked",
                ))
            })
        });
        Ok([a?, b?])
    })
}

/// Winners (acknowledged wins; an ambiguous answer counts as a win only if
/// the key holds that writer's bytes, and then the acknowledged win of the
/// other writer was overwritten: two winners) and the number of ambiguous
/// answers.
fn tally(outcomes: &[Outcome; 2], bodies: &[String; 2], current: &[u8]) -> (usize, usize) {
    let mut won = 0;
    let mut unknown = 0;
    for (o, body) in outcomes.iter().zip(bodies) {
        match o {
            Outcome::Won => won += 1,
            Outcome::Lost => {}
            Outcome::Unknown => {
                unknown += 1;
                if current == body.as_bytes() {
                    won += 1;
                }
            }
        }
    }
    (won, unknown)
}
