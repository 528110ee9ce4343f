//! The audit log: one JSON line per event (who, what, which session, the
//! result; counts in `detail`, never values), appended with `O_APPEND` in
//! one `write` per line so concurrent writers never interleave a line.
//! Past [`ROTATE_BYTES`] the log is renamed to `audit.log.1` (replacing the
//! previous one) and a new one is started.
//!
//! Events are not synced one by one: measured on this machine (debug build,
//! a virtual disk) an append costs 7-17 µs without `fdatasync` and
//! 2.7-3.6 ms with it (~200x) (`cargo test -p sesshost-service append_cost --
//! --nocapture` prints both). The page cache keeps events across a crash
//! of the service; a power cut may lose the last seconds. Shutdown calls
//! [`Audit::flush`].

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::error::{Result, ServiceError};
use sessbundle::interop::dates::{format_rfc3339, now_ms};

/// The log is rotated once it grows past this size (64 MiB).
pub const ROTATE_BYTES: u64 = 64 * 1024 * 1024;
/// Lines longer than this are skipped by [`Audit::query`] as corrupt.
pub const MAX_LINE_BYTES: usize = 1024 * 1024;

/// One audited action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// RFC 3339 UTC with milliseconds, e.g. `2026-12-02T01:02:03.456Z`.
    pub ts: String,
    /// The same instant in ms since the epoch.
    pub ts_ms: i64,
    pub tenant: String,
    pub key_id: Option<String>,
    /// e.g. `session.create`.
    pub action: String,
    pub session: Option<String>,
    /// `"ok"` or an error code.
    pub result: String,
    /// Counts only (e.g. `{"cookies": 3}`), never values.
    #[serde(default)]
    pub detail: serde_json::Value,
}

/// RFC 3339 UTC with milliseconds of a ms timestamp.
pub fn format_ts_ms(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let frac = ms.rem_euclid(1000);
    match format_rfc3339(secs) {
        Some(s) => format!("{}.{frac:03}Z", s.trim_end_matches('Z')),
        None => "1970-01-01T00:00:00.000Z".to_string(),
    }
}

impl AuditEvent {
    /// An event stamped now.
    pub fn now(
        tenant: &str,
        key_id: Option<&str>,
        action: &str,
        session: Option<&str>,
        result: &str,
        detail: serde_json::Value,
    ) -> AuditEvent {
        let ts_ms = now_ms();
        AuditEvent {
            ts: format_ts_ms(ts_ms),
            ts_ms,
            tenant: tenant.to_string(),
            key_id: key_id.map(str::to_string),
            action: action.to_string(),
            session: session.map(str::to_string),
            result: result.to_string(),
            detail,
        }
    }
}

/// What a query read: the events and how many lines were skipped.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryResult {
    pub events: Vec<AuditEvent>,
    /// Lines that were not a valid event (or too long), skipped.
    pub corrupt: usize,
}

struct Writer {
    file: File,
    len: u64,
}

/// An append-only audit log file.
pub struct Audit {
    path: PathBuf,
    writer: Mutex<Writer>,
}

impl std::fmt::Debug for Audit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Audit")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn open_append(path: &Path) -> Result<Writer> {
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .map_err(ServiceError::io(format!(
            "cannot open audit log {}",
            path.display()
        )))?;
    let len = file
        .metadata()
        .map_err(ServiceError::io(format!(
            "cannot stat audit log {}",
            path.display()
        )))?
        .len();
    Ok(Writer { file, len })
}

impl Audit {
    /// Opens (creating, mode 0600) the log at `path`.
    pub fn open(path: &Path) -> Result<Audit> {
        Ok(Audit {
            path: path.to_path_buf(),
            writer: Mutex::new(open_append(path)?),
        })
    }

    /// The rotated log's path (`audit.log.1` beside `audit.log`).
    pub fn rotated_path(&self) -> PathBuf {
        let mut s = self.path.clone().into_os_string();
        s.push(".1");
        PathBuf::from(s)
    }

    /// Appends one event as one line (one `write`), rotating first when the
    /// log is past [`ROTATE_BYTES`].
    pub fn append(&self, ev: &AuditEvent) -> Result<()> {
        let mut line = serde_json::to_vec(ev).map_err(|e| ServiceError::Io {
            what: "cannot encode an audit event".into(),
            source: std::io::Error::other(e),
        })?;
        line.push(b'\n');
        let mut w = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        if w.len >= ROTATE_BYTES {
            let rotated = self.rotated_path();
            std::fs::rename(&self.path, &rotated).map_err(ServiceError::io(format!(
                "cannot rotate audit log {} to {}",
                self.path.display(),
                rotated.display()
            )))?;
            *w = open_append(&self.path)?;
        }
        w.file.write_all(&line).map_err(ServiceError::io(format!(
            "cannot append to audit log {}",
            self.path.display()
        )))?;
        w.len += line.len() as u64;
        Ok(())
    }

    /// Pushes appended events to disk (`fdatasync`); errors are ignored
    /// (called at shutdown, when nothing better can be done).
    pub fn flush(&self) {
        let w = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let _ = w.file.sync_data();
    }

    /// The last `limit` events of `tenant` (optionally of one session, at
    /// or after `since_ms`), oldest first, read from `audit.log.1` then
    /// `audit.log`. Memory is bounded by `limit` and [`MAX_LINE_BYTES`].
    pub fn query(
        &self,
        tenant: &str,
        session: Option<&str>,
        since_ms: Option<i64>,
        limit: usize,
    ) -> Result<Vec<AuditEvent>> {
        Ok(self.query_counted(tenant, session, since_ms, limit)?.events)
    }

    /// [`Audit::query`] also counting the corrupt lines it skipped.
    pub fn query_counted(
        &self,
        tenant: &str,
        session: Option<&str>,
        since_ms: Option<i64>,
        limit: usize,
    ) -> Result<QueryResult> {
        let mut keep: VecDeque<AuditEvent> = VecDeque::with_capacity(limit.min(4096));
        let mut corrupt = 0;
        for path in [self.rotated_path(), self.path.clone()] {
            let file = match File::open(&path) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    return Err(ServiceError::io(format!(
                        "cannot read audit log {}",
                        path.display()
                    ))(e));
                }
            };
            let mut reader = BufReader::new(file);
            let mut line = Vec::new();
            loop {
                match read_line_capped(&mut reader, &mut line) {
                    Err(e) => {
                        return Err(ServiceError::io(format!(
                            "cannot read audit log {}",
                            path.display()
                        ))(e));
                    }
                    Ok(Line::Eof) => break,
                    Ok(Line::TooLong) => corrupt += 1,
                    Ok(Line::Full) => {
                        if line.iter().all(u8::is_ascii_whitespace) {
                            continue;
                        }
                        let Ok(ev) = serde_json::from_slice::<AuditEvent>(&line) else {
                            corrupt += 1;
                            continue;
                        };
                        if ev.tenant != tenant
                            || session.is_some_and(|s| ev.session.as_deref() != Some(s))
                            || since_ms.is_some_and(|t| ev.ts_ms < t)
                            || limit == 0
                        {
                            continue;
                        }
                        if keep.len() == limit {
                            keep.pop_front();
                        }
                        keep.push_back(ev);
                    }
                }
            }
        }
        Ok(QueryResult {
            events: keep.into(),
            corrupt,
        })
    }
}

enum Line {
    Full,
    TooLong,
    Eof,
}

/// Reads one line into `buf` (without the newline), keeping at most
/// [`MAX_LINE_BYTES`]; the rest of a longer line is consumed and dropped.
fn read_line_capped(r: &mut impl BufRead, buf: &mut Vec<u8>) -> std::io::Result<Line> {
    buf.clear();
    let mut too_long = false;
    let mut any = false;
    loop {
        let avail = r.fill_buf()?;
        if avail.is_empty() {
            return Ok(match (any, too_long) {
                (false, _) => Line::Eof,
                (true, true) => Line::TooLong,
                (true, false) => Line::Full,
            });
        }
        any = true;
        let (chunk, done) = match avail.iter().position(|&b| b == b'\n') {
            Some(i) => (&avail[..i], Some(i + 1)),
            None => (avail, None),
        };
        if !too_long {
            if buf.len() + chunk.len() > MAX_LINE_BYTES {
                too_long = true;
                buf.clear();
            } else {
                buf.extend_from_slice(chunk);
            }
        }
        let used = done.unwrap_or(avail.len());
        r.consume(used);
        if done.is_some() {
            return Ok(if too_long { Line::TooLong } else { Line::Full });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ev(tenant: &str, session: Option<&str>, ms: i64) -> AuditEvent {
        AuditEvent {
            ts: format_ts_ms(ms),
            ts_ms: ms,
            tenant: tenant.into(),
            key_id: Some("0123456789ab".into()),
            action: "session.create".into(),
            session: session.map(Into::into),
            result: "ok".into(),
            detail: json!({"cookies": 2}),
        }
    }

    #[test]
    fn ts_format() {
        assert_eq!(format_ts_ms(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(format_ts_ms(5), "1970-01-01T00:00:00.005Z");
        let now = AuditEvent::now("t", None, "a", None, "ok", json!({}));
        assert!(now.ts.ends_with('Z') && now.ts.len() == 24, "{}", now.ts);
    }

    #[test]
    fn append_and_query_filters() {
        let d = tempfile::tempdir().unwrap();
        let a = Audit::open(&d.path().join("audit.log")).unwrap();
        for i in 0..10 {
            a.append(&ev(
                if i % 2 == 0 { "acme" } else { "beta" },
                Some(if i < 6 { "s1" } else { "s2" }),
                1000 + i,
            ))
            .unwrap();
        }
        let all = a.query("acme", None, None, 100).unwrap();
        assert_eq!(
            all.iter().map(|e| e.ts_ms).collect::<Vec<_>>(),
            [1000, 1002, 1004, 1006, 1008]
        );
        let last2 = a.query("acme", None, None, 2).unwrap();
        assert_eq!(
            last2.iter().map(|e| e.ts_ms).collect::<Vec<_>>(),
            [1006, 1008]
        );
        let s2 = a.query("acme", Some("s2"), None, 100).unwrap();
        assert_eq!(s2.len(), 2);
        let since = a.query("beta", None, Some(1005), 100).unwrap();
        assert_eq!(
            since.iter().map(|e| e.ts_ms).collect::<Vec<_>>(),
            [1005, 1007, 1009]
        );
        assert!(a.query("acme", None, None, 0).unwrap().is_empty());
        let text = std::fs::read_to_string(d.path().join("audit.log")).unwrap();
        assert_eq!(text.lines().count(), 10);
    }

    #[test]
    fn corrupt_lines_are_skipped_and_counted() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("audit.log");
        let a = Audit::open(&p).unwrap();
        a.append(&ev("acme", None, 1)).unwrap();
        {
            let mut f = OpenOptions::new().append(true).open(&p).unwrap();
            f.write_all(b"{garbage\n\xff\xfe\n\n").unwrap();
            f.write_all(&vec![b'x'; MAX_LINE_BYTES + 10]).unwrap();
            f.write_all(b"\n").unwrap();
        }
        a.append(&ev("acme", None, 2)).unwrap();
        {
            let mut f = OpenOptions::new().append(true).open(&p).unwrap();
            f.write_all(b"{\"truncated\":").unwrap();
        }
        let r = a.query_counted("acme", None, None, 10).unwrap();
        assert_eq!(r.events.len(), 2);
        assert_eq!(r.corrupt, 4);
    }

    #[test]
    fn rotation_keeps_history_queryable() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("audit.log");
        // A log already past the threshold (sparse file).
        {
            let f = File::create(&p).unwrap();
            f.set_len(ROTATE_BYTES).unwrap();
        }
        let a = Audit::open(&p).unwrap();
        a.append(&ev("acme", None, 7)).unwrap();
        assert!(a.rotated_path().exists());
        assert!(std::fs::metadata(&p).unwrap().len() < 1000);
        // The sparse file is zeros: one long "line" of NULs, skipped.
        std::fs::write(
            a.rotated_path(),
            format!("{}\n", serde_json::to_string(&ev("acme", None, 3)).unwrap()),
        )
        .unwrap();
        let got = a.query("acme", None, None, 10).unwrap();
        assert_eq!(got.iter().map(|e| e.ts_ms).collect::<Vec<_>>(), [3, 7]);
    }

    #[test]
    fn append_cost() {
        let d = tempfile::tempdir().unwrap();
        let a = Audit::open(&d.path().join("audit.log")).unwrap();
        let e = ev("acme", Some("s"), 1);
        let n = 200u32;
        let t = std::time::Instant::now();
        for _ in 0..n {
            a.append(&e).unwrap();
        }
        let plain = t.elapsed() / n;
        let t = std::time::Instant::now();
        for _ in 0..n / 4 {
            a.append(&e).unwrap();
            a.flush();
        }
        let synced = t.elapsed() / (n / 4);
        println!("audit append: {plain:?} without fdatasync, {synced:?} with");
        assert_eq!(
            a.query("acme", None, None, 1000).unwrap().len(),
            (n + n / 4) as usize
        );
    }
}
