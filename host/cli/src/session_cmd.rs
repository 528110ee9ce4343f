//! `host session …`: the local session commands that need no browser
//! (create, list, show, extend, delete, cleanup, history, rollback).
//! `host session open` lives in `open_cmd` (it needs the browser).
//!
//! Parse then act: clap turns flags into plain values (durations, viewport)
//! first; [`run`] then opens the store in the home directory and acts.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use sessbundle::state::Viewport;
use sesshost_store::{Home, NewSession, SessionInfo, SnapshotInfo, now_ms};

#[derive(Debug, Clone, Subcommand)]
pub enum SessionCommand {
    /// Create an empty session.
    Create(CreateArgs),
    /// Restore a session into its own Chromium and keep it open; print the CDP URL; save on exit.
    Open(crate::open_cmd::OpenArgs),
    /// List the sessions in this home.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one session: times, expiry, sizes, contents, snapshots.
    Show {
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Push a session's expiry back.
    Extend {
        name: String,
        /// How much longer, e.g. `30m`, `12h`, `7d`.
        #[arg(long, value_parser = parse_duration)]
        by: Duration,
    },
    /// Delete a session and every snapshot of it.
    Delete { name: String },
    /// Remove expired sessions and damaged ones, or let a cleanup-strategy plugin decide; says what it removed and why.
    Cleanup(CleanupArgs),
    /// List the kept snapshots of a session (the last 5 saves).
    History { name: String },
    /// Make an earlier snapshot current again (as a new snapshot).
    Rollback {
        name: String,
        /// Snapshot number (see `host session history`); default: the one
        /// before the current one.
        #[arg(long)]
        to: Option<u64>,
    },
}

#[derive(Debug, Clone, Args)]
pub struct CleanupArgs {
    /// A cleanup-strategy plugin (e.g. ttl.wasm) that decides per session.
    #[arg(long, value_name = "P.wasm")]
    pub strategy: Option<std::path::PathBuf>,
    /// With --strategy: sessions unused this long are idle, e.g. `30m`.
    #[arg(long, value_parser = parse_duration, requires = "strategy")]
    pub idle_timeout: Option<Duration>,
    /// With --strategy: keep at most this many sessions.
    #[arg(long, requires = "strategy")]
    pub max_sessions: Option<u32>,
    /// With --strategy: keep at most this many stored bytes.
    #[arg(long, requires = "strategy")]
    pub max_bytes: Option<u64>,
    /// With --strategy: show the decisions without removing anything.
    #[arg(long, requires = "strategy")]
    pub dry_run: bool,
    #[command(flatten)]
    pub grants: crate::plugin_cmd::GrantArgs,
}

#[derive(Debug, Clone, Args)]
pub struct CreateArgs {
    pub name: String,
    /// Time to live, e.g. `30m`, `12h`, `7d` (default: never expires).
    #[arg(long, value_parser = parse_duration)]
    pub ttl: Option<Duration>,
    /// User agent string the browser presents.
    #[arg(long)]
    pub user_agent: Option<String>,
    /// Viewport size, `WIDTHxHEIGHT`, e.g. `1280x720`.
    #[arg(long, value_parser = parse_viewport)]
    pub viewport: Option<Viewport>,
    /// Locale, e.g. `en-GB`.
    #[arg(long, value_parser = parse_token)]
    pub locale: Option<String>,
    /// IANA time zone, e.g. `Europe/Paris`.
    #[arg(long, value_parser = parse_token)]
    pub timezone: Option<String>,
}

/// A duration like `45s`, `30m`, `12h`, `7d`, `2w`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("{s:?} has no unit: write e.g. 30m, 12h or 7d"))?;
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} does not start with a number: write e.g. 30m, 12h or 7d"))?;
    let secs_per = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        _ => {
            return Err(format!(
                "unknown unit {unit:?} in {s:?}: use s, m, h, d or w (e.g. 30m, 12h, 7d)"
            ));
        }
    };
    if n == 0 {
        return Err(format!("{s:?} is zero: give a positive duration"));
    }
    n.checked_mul(secs_per)
        .filter(|&t| t <= 100 * 365 * 86_400)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("{s:?} is too long (at most 100 years)"))
}

/// `WIDTHxHEIGHT`.
pub fn parse_viewport(s: &str) -> Result<Viewport, String> {
    let bad = || format!("{s:?} is not a viewport: write WIDTHxHEIGHT, e.g. 1280x720");
    let (w, h) = s.split_once(['x', 'X']).ok_or_else(bad)?;
    let width: u32 = w.parse().map_err(|_| bad())?;
    let height: u32 = h.parse().map_err(|_| bad())?;
    if width == 0 || height == 0 || width > 16_384 || height > 16_384 {
        return Err(format!("{s:?}: width and height must be 1-16384"));
    }
    Ok(Viewport {
        width,
        height,
        device_scale_factor: 1.0,
    })
}

fn parse_token(s: &str) -> Result<String, String> {
    if s.is_empty() || s.len() > 100 || !s.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
            "{s:?}: expected a value like en-GB or Europe/Paris"
        ));
    }
    Ok(s.to_owned())
}

/// Runs one command against the home directory `home`, printing to stdout.
pub fn run(home: &Path, cmd: SessionCommand) -> anyhow::Result<()> {
    if let SessionCommand::Open(a) = cmd {
        return crate::open_cmd::run(home, a);
    }
    if let SessionCommand::Cleanup(CleanupArgs {
        strategy: Some(p),
        idle_timeout,
        max_sessions,
        max_bytes,
        dry_run,
        grants,
    }) = &cmd
    {
        let limits = sesshost_plugin::CleanupLimits {
            idle_timeout_secs: idle_timeout.map(|d| d.as_secs()),
            max_sessions: *max_sessions,
            max_bytes: *max_bytes,
            ..Default::default()
        };
        return crate::plugin_cmd::cleanup_with_strategy(home, p, grants, limits, *dry_run);
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    run_to(home, cmd, &mut out)
}

/// [`run`], printing to `out`.
pub fn run_to(home: &Path, cmd: SessionCommand, out: &mut dyn Write) -> anyhow::Result<()> {
    let home = Home::new(home);
    let store = home.store()?;
    let now = now_ms();
    match cmd {
        SessionCommand::Open(_) => anyhow::bail!("`host session open` cannot print to a buffer"),
        SessionCommand::Create(a) => {
            let info = store.create(
                &NewSession {
                    name: a.name,
                    ttl: a.ttl,
                    user_agent: a.user_agent,
                    viewport: a.viewport,
                    locale: a.locale,
                    timezone: a.timezone,
                },
                now,
            )?;
            writeln!(
                out,
                "created session {} ({})",
                info.name,
                expiry_text(&info, now)
            )?;
        }
        SessionCommand::List { json } => {
            let list = store.list(now)?;
            if json {
                serde_json::to_writer_pretty(&mut *out, &list)?;
                writeln!(out)?;
            } else if list.is_empty() {
                writeln!(
                    out,
                    "no sessions yet: create one with `host session create NAME`"
                )?;
            } else {
                print_list(out, &list, now)?;
            }
        }
        SessionCommand::Show { name, json } => {
            let info = store.show(&name)?;
            if json {
                serde_json::to_writer_pretty(&mut *out, &info)?;
                writeln!(out)?;
            } else {
                print_show(out, &info, now)?;
            }
        }
        SessionCommand::Extend { name, by } => {
            let info = store.extend(&name, by, now)?;
            writeln!(out, "session {}: {}", info.name, expiry_text(&info, now))?;
        }
        SessionCommand::Delete { name } => {
            let gc = store.delete(&name)?;
            writeln!(
                out,
                "deleted session {name} ({} unused chunk(s) removed)",
                gc.chunks_deleted
            )?;
        }
        SessionCommand::Cleanup(_) => {
            let r = store.cleanup(now)?;
            if r.removed.is_empty() {
                writeln!(out, "nothing to clean up")?;
            }
            for x in &r.removed {
                match x.seq {
                    Some(seq) => {
                        writeln!(out, "removed snapshot {seq} of {}: {}", x.name, x.reason)?
                    }
                    None => writeln!(out, "removed session {}: {}", x.name, x.reason)?,
                }
            }
            for n in &r.skipped_open {
                writeln!(out, "skipped session {n}: it is open")?;
            }
            if r.gc.chunks_deleted > 0 {
                writeln!(out, "{} unused chunk(s) removed", r.gc.chunks_deleted)?;
            }
            if let Some(why) = &r.gc.skipped {
                writeln!(out, "unused chunks were not collected: {why}")?;
            }
        }
        SessionCommand::History { name } => {
            let h = store.history(&name)?;
            print_history(out, &h)?;
        }
        SessionCommand::Rollback { name, to } => {
            let r = store
                .rollback(&name, to, now)
                .with_context(|| format!("cannot roll back session {name}"))?;
            let from = store
                .history(&name)?
                .last()
                .map(|s| s.note.clone())
                .unwrap_or_default();
            writeln!(out, "session {name} is now at snapshot {} ({from})", r.seq)?;
        }
    }
    Ok(())
}

fn expiry_text(info: &SessionInfo, now: i64) -> String {
    match info.expires_at {
        None => "never expires".into(),
        Some(e) if e <= now => format!("expired {}", fmt_time(e)),
        Some(e) => format!("expires {} (in {})", fmt_time(e), fmt_span(e - now)),
    }
}

fn print_list(out: &mut dyn Write, list: &[SessionInfo], now: i64) -> std::io::Result<()> {
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

fn print_show(out: &mut dyn Write, i: &SessionInfo, now: i64) -> std::io::Result<()> {
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

fn print_history(out: &mut dyn Write, h: &[SnapshotInfo]) -> std::io::Result<()> {
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
fn fmt_time(ms: i64) -> String {
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
fn fmt_span(ms: i64) -> String {
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

fn fmt_bytes(b: u64) -> String {
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
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(subcommand)]
        cmd: SessionCommand,
    }

    fn parse(args: &[&str]) -> Result<SessionCommand, clap::Error> {
        T::try_parse_from(std::iter::once("session").chain(args.iter().copied())).map(|t| t.cmd)
    }

    fn exec(home: &Path, args: &[&str]) -> anyhow::Result<String> {
        let mut out = Vec::new();
        run_to(home, parse(args)?, &mut out)?;
        Ok(String::from_utf8(out).unwrap())
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_duration("12h"), Ok(Duration::from_secs(43_200)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(604_800)));
        assert_eq!(parse_duration("2w"), Ok(Duration::from_secs(1_209_600)));
        for bad in [
            "",
            "7",
            "d",
            "7x",
            "0d",
            "-1d",
            "1.5h",
            "99999999999999999999d",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert!(parse_duration("7").unwrap_err().contains("no unit"));
    }

    #[test]
    fn viewports() {
        let v = parse_viewport("1280x720").unwrap();
        assert_eq!((v.width, v.height), (1280, 720));
        for bad in ["1280", "x720", "0x1", "a x b", "1280x720x3"] {
            assert!(parse_viewport(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_surface_of_issue_3_parses() {
        assert!(
            parse(&[
                "create",
                "w",
                "--ttl",
                "7d",
                "--user-agent",
                "UA",
                "--viewport",
                "800x600",
                "--locale",
                "en-GB",
                "--timezone",
                "Europe/Paris"
            ])
            .is_ok()
        );
        assert!(parse(&["list", "--json"]).is_ok());
        assert!(parse(&["show", "w", "--json"]).is_ok());
        assert!(parse(&["extend", "w", "--by", "12h"]).is_ok());
        assert!(parse(&["extend", "w"]).is_err(), "--by is required");
        assert!(parse(&["delete", "w"]).is_ok());
        assert!(parse(&["cleanup"]).is_ok());
        assert!(parse(&["history", "w"]).is_ok());
        assert!(parse(&["rollback", "w", "--to", "3"]).is_ok());
        assert!(parse(&["create", "w", "--ttl", "7"]).is_err());
    }

    #[test]
    fn commands_end_to_end_on_a_real_home() {
        let d = tempfile::tempdir().unwrap();
        let home = d.path();
        assert!(exec(home, &["list"]).unwrap().contains("no sessions yet"));
        let out = exec(
            home,
            &[
                "create",
                "work",
                "--ttl",
                "7d",
                "--viewport",
                "1280x720",
                "--locale",
                "en-GB",
            ],
        )
        .unwrap();
        assert!(out.contains("created session work (expires"), "{out}");
        assert!(out.contains("in 7d"), "{out}");
        exec(home, &["create", "forever"]).unwrap();
        let e = exec(home, &["create", "work"]).unwrap_err().to_string();
        assert!(e.contains("already exists"), "{e}");

        let list = exec(home, &["list"]).unwrap();
        assert!(
            list.lines().nth(1).unwrap().starts_with("forever"),
            "{list}"
        );
        assert!(list.contains("never"), "{list}");
        let json: serde_json::Value =
            serde_json::from_str(&exec(home, &["list", "--json"]).unwrap()).unwrap();
        assert_eq!(json.as_array().unwrap().len(), 2);
        assert_eq!(json[1]["name"], "work");
        assert_eq!(json[1]["snapshots"][0]["summary"]["viewport"], "1280x720");

        let show = exec(home, &["show", "work"]).unwrap();
        assert!(show.contains("viewport    1280x720"), "{show}");
        assert!(show.contains("locale      en-GB"), "{show}");
        let shown: serde_json::Value =
            serde_json::from_str(&exec(home, &["show", "work", "--json"]).unwrap()).unwrap();
        let exp_before = shown["expiresAt"].as_i64().unwrap();

        exec(home, &["extend", "work", "--by", "1d"]).unwrap();
        let shown: serde_json::Value =
            serde_json::from_str(&exec(home, &["show", "work", "--json"]).unwrap()).unwrap();
        assert_eq!(
            shown["expiresAt"].as_i64().unwrap(),
            exp_before + 86_400_000
        );

        // Two saves through the store API (as `open` does), then roll back.
        let store = Home::new(home).store().unwrap();
        let mut s = store.load("work").unwrap();
        s.origins.push(sessbundle::state::OriginState {
            origin: "https://a.test".into(),
            ..Default::default()
        });
        store.save("work", &s, now_ms()).unwrap();
        let hist = exec(home, &["history", "work"]).unwrap();
        assert!(hist.contains("(current)"), "{hist}");
        assert_eq!(hist.lines().count(), 3, "{hist}");
        let rb = exec(home, &["rollback", "work"]).unwrap();
        assert!(rb.contains("now at snapshot 3 (rollback to 1)"), "{rb}");
        assert!(store.load("work").unwrap().origins.is_empty());

        for cmd in [
            &["show", "ghost"][..],
            &["delete", "ghost"],
            &["history", "ghost"],
            &["extend", "ghost", "--by", "1d"],
        ] {
            let e = exec(home, cmd).unwrap_err().to_string();
            assert!(e.contains("no session named \"ghost\""), "{e}");
            assert!(e.contains("host session list"), "{e}");
        }
        let e = exec(home, &["show", "../x"]).unwrap_err().to_string();
        assert!(e.contains("invalid session name"), "{e}");

        assert_eq!(exec(home, &["cleanup"]).unwrap(), "nothing to clean up\n");
        let del = exec(home, &["delete", "work"]).unwrap();
        assert!(del.starts_with("deleted session work"), "{del}");
        let list = exec(home, &["list"]).unwrap();
        assert!(!list.contains("work"), "{list}");
    }

    #[test]
    fn times_and_sizes() {
        assert_eq!(fmt_time(0), "1970-01-01 00:00");
        assert_eq!(fmt_time(1_700_000_000_123), "2023-11-14 22:13");
        assert_eq!(fmt_span(3 * 86_400_000), "3d");
        assert_eq!(fmt_bytes(20 * 1024), "20 KiB");
    }
}
