//! How the CLI shows stored sessions: tables, `show`, history, times and
//! sizes. Pure formatting over the store's report types.

use std::io::Write;

use sesshost_store::{SessionInfo, SnapshotInfo};

pub fn expiry_text(info: &SessionInfo, now: i64) -> String {
    match info.expires_at {
        None => "never expires".into(),
        Some(e) if e <= now => format!("expired {}", fmt_time(e)),
        Some(e) => format!("expires {} (in {})", fmt_time(e), fmt_span(e - now)),
    }
}

pub fn print_list(out: &mut dyn Write, list: &[SessionInfo], now: i64) -> std::io::Result<()> {
    writeln!(
        out,
        "{:<24} {:<17} {:<24} {:>5} {:>9} {:>7} {:>7}",
        "NAME", "UPDATED", "EXPIRES", "SNAPS", "STORED", "COOKIES", "ORIGINS"
    )?;
    for i in list {
        if let Some(p) = &i.problem {
            writeln!(out, "{:<24} DAMAGED: {p}", i.name)?;
            continue;
        }
        let (cookies, origins) = i
            .latest()
            .map_or((0, 0), |s| (s.summary.cookies, s.summary.origins));
        let expires = match i.expires_at {
            None => "never".to_owned(),
            Some(e) if e <= now => "EXPIRED".to_owned(),
            Some(e) => format!("in {}", fmt_span(e - now)),
        };
        writeln!(
            out,
            "{:<24} {:<17} {:<24} {:>5} {:>9} {:>7} {:>7}",
            i.name,
            fmt_time(i.updated_at),
            expires,
            i.snapshots.len(),
            fmt_bytes(i.stored_bytes),
            cookies,
            origins
        )?;
    }
    Ok(())
}

pub fn print_show(out: &mut dyn Write, i: &SessionInfo, now: i64) -> std::io::Result<()> {
    writeln!(out, "session     {}", i.name)?;
    writeln!(out, "created     {}", fmt_time(i.created_at))?;
    writeln!(out, "updated     {}", fmt_time(i.updated_at))?;
    writeln!(
        out,
        "last used   {}",
        i.last_used_at.map_or("never".into(), fmt_time)
    )?;
    writeln!(out, "expiry      {}", expiry_text(i, now))?;
    writeln!(out, "stored      {}", fmt_bytes(i.stored_bytes))?;
    if let Some(s) = i.latest() {
        let m = &s.summary;
        writeln!(out, "size        {}", fmt_bytes(s.logical_bytes))?;
        writeln!(out, "cookies     {} ({} site(s))", m.cookies, m.sites)?;
        writeln!(
            out,
            "origins     {} ({} localStorage item(s), {} IndexedDB database(s), {} record(s))",
            m.origins, m.local_storage_items, m.idb_databases, m.idb_records
        )?;
        writeln!(out, "tabs        {}", m.tabs)?;
        let or_default =
            |v: &Option<String>| v.clone().unwrap_or_else(|| "(browser default)".into());
        writeln!(out, "user agent  {}", or_default(&m.user_agent))?;
        writeln!(out, "viewport    {}", or_default(&m.viewport))?;
        writeln!(out, "locale      {}", or_default(&m.locale))?;
        writeln!(out, "timezone    {}", or_default(&m.timezone))?;
    }
    writeln!(
        out,
        "snapshots   {} (see `host session history {}`)",
        i.snapshots.len(),
        i.name
    )?;
    Ok(())
}

pub fn print_history(out: &mut dyn Write, h: &[SnapshotInfo]) -> std::io::Result<()> {
    writeln!(
        out,
        "{:>4}  {:<17} {:<16} {:>7} {:>7} {:>4} {:>9}",
        "SNAP", "SAVED", "WHAT", "COOKIES", "ORIGINS", "TABS", "SIZE"
    )?;
    for (n, s) in h.iter().enumerate() {
        writeln!(
            out,
            "{:>4}  {:<17} {:<16} {:>7} {:>7} {:>4} {:>9}{}",
            s.seq,
            fmt_time(s.created_at),
            s.note,
            s.summary.cookies,
            s.summary.origins,
            s.summary.tabs,
            fmt_bytes(s.logical_bytes),
            if n + 1 == h.len() { "  (current)" } else { "" }
        )?;
    }
    Ok(())
}

/// `YYYY-MM-DD HH:MM` UTC.
pub fn fmt_time(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = sessbundle::interop::civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}",
        rem / 3600,
        rem / 60 % 60
    )
}

/// A rough span, rounded to the nearest unit.
pub fn fmt_span(ms: i64) -> String {
    let s = ms / 1000;
    let round = |unit: i64| (s + unit / 2) / unit;
    if s >= 2 * 86_400 {
        format!("{}d", round(86_400))
    } else if s >= 2 * 3600 {
        format!("{}h", round(3600))
    } else if s >= 60 {
        format!("{}m", round(60))
    } else {
        format!("{s}s")
    }
}

pub fn fmt_bytes(b: u64) -> String {
    if b >= 10 * 1024 * 1024 {
        format!("{} MiB", b / (1024 * 1024))
    } else if b >= 10 * 1024 {
        format!("{} KiB", b / 1024)
    } else {
        format!("{b} B")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_sizes() {
        assert_eq!(fmt_time(0), "1970-01-01 00:00");
        assert_eq!(fmt_time(1_700_000_000_123), "2023-11-14 22:13");
        assert_eq!(fmt_span(3 * 86_400_000), "3d");
        assert_eq!(fmt_bytes(20 * 1024), "20 KiB");
    }
}
