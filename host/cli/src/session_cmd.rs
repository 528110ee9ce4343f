//! `host session …`: flags → one engine call → printing. `open` is in
//! `open_cmd` (it stays running).

use std::io::Write;

use anyhow::Result;
use sesshost_engine::{DecisionOutcome, Engine, StrategyCleanup};
use sesshost_store::{NewSession, now_ms};

use crate::args::session::{CleanupArgs, SessionCommand};
use crate::print::{expiry_text, print_history, print_list, print_show};

/// Whether `cmd` only reads (so a missing home is an error, not created).
pub fn reads_only(cmd: &SessionCommand) -> bool {
    matches!(
        cmd,
        SessionCommand::List {
            fleet: crate::args::session::FleetArgs { cluster: false, .. },
            ..
        } | SessionCommand::Show { .. }
            | SessionCommand::History { .. }
            | SessionCommand::Open(_)
            | SessionCommand::Extend { .. }
            | SessionCommand::Delete { .. }
            | SessionCommand::Rollback { .. }
            | SessionCommand::Cleanup(_)
    )
}

/// Run one session command (not `open`), printing to `out`.
pub async fn run(engine: &Engine, cmd: SessionCommand, out: &mut dyn Write) -> Result<()> {
    let now = now_ms();
    match cmd {
        SessionCommand::Open(_) => anyhow::bail!("`host session open` is run by open_cmd"),
        SessionCommand::Create(a) => {
            let info = engine
                .create(NewSession {
                    name: a.name,
                    ttl: a.ttl,
                    user_agent: a.user_agent,
                    viewport: a.viewport,
                    locale: a.locale,
                    timezone: a.timezone,
                })
                .await?;
            writeln!(
                out,
                "created session {} ({})",
                info.name,
                expiry_text(&info, now)
            )?;
        }
        SessionCommand::List { json, fleet } if fleet.cluster => {
            crate::fleet::list(engine, &fleet, json, out).await?;
        }
        SessionCommand::List { json, fleet } => {
            if fleet.storage.plugin.is_some() {
                crate::usage!(
                    "--plugin works with --cluster here (the fleet in the cluster's bucket): add --cluster, or drop --plugin to list this home"
                );
            }
            let list = engine.list().await?;
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
            let info = engine.show(&name).await?;
            if json {
                serde_json::to_writer_pretty(&mut *out, &info)?;
                writeln!(out)?;
            } else {
                print_show(out, &info, now)?;
            }
        }
        SessionCommand::Extend { name, by } => {
            let info = engine.extend(&name, by).await?;
            writeln!(out, "session {}: {}", info.name, expiry_text(&info, now))?;
        }
        SessionCommand::Delete { name } => {
            engine.delete(&name).await?;
            writeln!(
                out,
                "deleted session {name} (chunks no other session uses are freed by `host session cleanup`)"
            )?;
        }
        SessionCommand::Cleanup(a) if a.strategy.is_some() => {
            cleanup_with_strategy(engine, a, out).await?;
        }
        SessionCommand::Cleanup(_) => {
            let r = engine.cleanup().await?;
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
            let h = engine.history(&name).await?;
            print_history(out, &h)?;
        }
        SessionCommand::Rollback { name, to } => {
            let (r, from) = engine.rollback(&name, to).await?;
            writeln!(out, "session {name} is now at snapshot {} ({from})", r.seq)?;
        }
    }
    Ok(())
}

/// `host session cleanup --strategy P.wasm`: the plugin decides, the
/// engine acts, this says what was done and why.
async fn cleanup_with_strategy(engine: &Engine, a: CleanupArgs, out: &mut dyn Write) -> Result<()> {
    let Some(strategy) = a.strategy else {
        return Ok(());
    };
    let req = StrategyCleanup {
        strategy,
        grants: crate::requests::grants(&a.grants)?,
        limits: sesshost_plugin::CleanupLimits {
            idle_timeout_secs: a.idle_timeout.map(|d| d.as_secs()),
            max_sessions: a.max_sessions,
            max_bytes: a.max_bytes,
            ..Default::default()
        },
        dry_run: a.dry_run,
    };
    for d in engine.cleanup_with_strategy(req).await? {
        let verb = match d.outcome {
            DecisionOutcome::Kept => "kept",
            DecisionOutcome::KeptAtRest => "kept (hibernate: a stored session is already at rest)",
            DecisionOutcome::WouldRemove => "would remove",
            DecisionOutcome::Removed => "removed",
            DecisionOutcome::NotRemoved(e) => {
                eprintln!("{}: not removed: {e}", d.name);
                continue;
            }
        };
        writeln!(out, "{}: {verb} ({:?}: {})", d.name, d.action, d.reason)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use clap::Parser;
    use sesshost_engine::HomeMode;
    use sesshost_store::Home;

    use super::*;

    #[derive(Parser)]
    struct T {
        #[command(subcommand)]
        cmd: SessionCommand,
    }

    fn parse(args: &[&str]) -> Result<SessionCommand, clap::Error> {
        T::try_parse_from(std::iter::once("session").chain(args.iter().copied())).map(|t| t.cmd)
    }

    async fn exec(home: &Path, args: &[&str]) -> anyhow::Result<String> {
        let engine = Engine::open(home, HomeMode::Create)?;
        let mut out = Vec::new();
        run(&engine, parse(args)?, &mut out).await?;
        Ok(String::from_utf8(out)?)
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

    #[tokio::test]
    async fn commands_end_to_end_on_a_real_home() {
        let d = tempfile::tempdir().unwrap();
        let home = d.path();
        assert!(
            exec(home, &["list"])
                .await
                .unwrap()
                .contains("no sessions yet")
        );
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
        .await
        .unwrap();
        assert!(out.contains("created session work (expires"), "{out}");
        assert!(out.contains("in 7d"), "{out}");
        exec(home, &["create", "forever"]).await.unwrap();
        let e = exec(home, &["create", "work"])
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("already exists"), "{e}");

        let list = exec(home, &["list"]).await.unwrap();
        assert!(
            list.lines().nth(1).unwrap().starts_with("forever"),
            "{list}"
        );
        assert!(list.contains("never"), "{list}");
        let json: serde_json::Value =
            serde_json::from_str(&exec(home, &["list", "--json"]).await.unwrap()).unwrap();
        assert_eq!(json.as_array().unwrap().len(), 2);
        assert_eq!(json[1]["name"], "work");
        assert_eq!(json[1]["snapshots"][0]["summary"]["viewport"], "1280x720");

        let show = exec(home, &["show", "work"]).await.unwrap();
        assert!(show.contains("viewport    1280x720"), "{show}");
        assert!(show.contains("locale      en-GB"), "{show}");
        let shown: serde_json::Value =
            serde_json::from_str(&exec(home, &["show", "work", "--json"]).await.unwrap()).unwrap();
        let exp_before = shown["expiresAt"].as_i64().unwrap();

        exec(home, &["extend", "work", "--by", "1d"]).await.unwrap();
        let shown: serde_json::Value =
            serde_json::from_str(&exec(home, &["show", "work", "--json"]).await.unwrap()).unwrap();
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
        let hist = exec(home, &["history", "work"]).await.unwrap();
        assert!(hist.contains("(current)"), "{hist}");
        assert_eq!(hist.lines().count(), 3, "{hist}");
        let rb = exec(home, &["rollback", "work"]).await.unwrap();
        assert!(rb.contains("now at snapshot 3 (rollback to 1)"), "{rb}");
        assert!(store.load("work").unwrap().origins.is_empty());

        for cmd in [
            &["show", "ghost"][..],
            &["delete", "ghost"],
            &["history", "ghost"],
            &["extend", "ghost", "--by", "1d"],
        ] {
            let e = exec(home, cmd).await.unwrap_err().to_string();
            assert!(e.contains("no session named \"ghost\""), "{e}");
            assert!(e.contains("host session list"), "{e}");
        }
        let e = exec(home, &["show", "../x"]).await.unwrap_err().to_string();
        assert!(e.contains("invalid session name"), "{e}");

        assert_eq!(
            exec(home, &["cleanup"]).await.unwrap(),
            "nothing to clean up\n"
        );
        let del = exec(home, &["delete", "work"]).await.unwrap();
        assert!(del.starts_with("deleted session work"), "{del}");
        let list = exec(home, &["list"]).await.unwrap();
        assert!(!list.contains("work"), "{list}");
    }
}
