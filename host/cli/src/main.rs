//! `host`: the sesshost binary. Flags → plain data (`args`) → one call into
//! the session engine (`sesshost-engine`) or the format library → printing.
//! It owns no format, no crypto and no store internals.
//! - `args`: the whole command-line surface, as data (imports nothing here);
//! - `requests`: flag data → engine request data (grants, Argon2, sealing);
//! - `secrets`: passphrase / key-file / prompt handling (never argv);
//! - `session_cmd`, `open_cmd`, `transfer_cmd`, `plugin_cmd`: one engine
//!   call each, then printing; `print`: tables and times;
//! - `bundle_cmd`: keygen, seal, unseal, sign, verify, inspect, rekey on
//!   bundle files (the `sessbundle` library and the engine's `bundle_io`);
//! - `service_cmd`: `host tenant …` / `host key …` on the service's tenant
//!   registry (`sesshost-service`);
//! - `progress`: the progress bar over the engine's byte counters.
//!
//! The only async runtime is built here, in `main`, when a command needs it.
//! Exit codes: 0 ok, 1 error, 2 usage, 3 authentication or signature
//! failure. A closed stdout (`host … | head -1`) is a quiet exit 0.

mod args;
mod bundle_cmd;
mod fleet;
mod open_cmd;
mod plugin_cmd;
mod print;
mod progress;
mod requests;
mod run_cmd;
mod secrets;
mod service_cmd;
mod session_cmd;
mod transfer_cmd;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use sesshost_engine::{Engine, HomeMode};

use crate::args::session::SessionCommand;
use crate::args::{Cli, Command};

/// A request that can never work as given (exit code 2), found after
/// parsing (clap reports its own with exit code 2).
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Return a [`UsageError`] from the current function.
#[macro_export]
macro_rules! usage {
    ($($t:tt)*) => { return Err(anyhow::Error::new($crate::UsageError(format!($($t)*)))) };
}

/// `println!` that returns the write error (a closed pipe ends the command
/// quietly in [`exit_for`]) instead of panicking.
#[macro_export]
macro_rules! outln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($t)*)?;
    }};
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let service_log = match &cli.command {
        Command::Run(a) => Some(a.log_format),
        _ => None,
    };
    init_logging(cli.verbose, service_log);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => exit_for(&e),
    }
}

/// Print `e` (unless stdout was closed under us) and choose the exit code.
fn exit_for(e: &anyhow::Error) -> ExitCode {
    let mut usage = false;
    let mut auth = false;
    for c in e.chain() {
        if let Some(io) = c.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::BrokenPipe
        {
            return ExitCode::SUCCESS;
        }
        usage |= c.is::<UsageError>()
            || c.downcast_ref::<sesshost_engine::Error>()
                .is_some_and(|x| x.is_usage())
            || matches!(
                c.downcast_ref::<sessbundle::Error>(),
                Some(sessbundle::Error::Usage(_))
            );
        auth |= c
            .downcast_ref::<sessbundle::Error>()
            .is_some_and(|b| b.is_auth_failure())
            || c.downcast_ref::<sesshost_engine::Error>()
                .is_some_and(|x| x.is_auth_failure());
    }
    eprintln!("error: {e:#}");
    ExitCode::from(if auth {
        3
    } else if usage {
        2
    } else {
        1
    })
}

fn init_logging(verbose: u8, service: Option<args::run::LogFormat>) {
    let default = match verbose {
        // A service logs its requests and state changes by default.
        0 if service.is_some() => "info",
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    // wasmtime_wasi logs every raw write of a plugin at debug (a sanitiser
    // that prints a cookie would leak it); our own capped, labelled
    // `plugin NAME said:` lines replace it.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!("{default},wasmtime_wasi=info"))
    });
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if service == Some(args::run::LogFormat::Json) {
        b.json().try_init()
    } else {
        b.try_init()
    };
}

/// `--home`, else `$SESSHOST_HOME` (clap reads it), else ~/.local/share/sesshost.
pub fn home_dir(flag: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(h) = flag {
        return Ok(h);
    }
    let base = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .ok_or_else(|| {
            anyhow::anyhow!("cannot find a home directory: pass --home DIR or set SESSHOST_HOME")
        })?;
    Ok(base.join("sesshost"))
}

/// The one async runtime (two workers: the CLI runs one flow at a time).
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    use anyhow::Context;
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// The service's runtime: one worker per core (it serves many sessions).
fn service_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    use anyhow::Context;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn engine(home: Option<PathBuf>, mode: HomeMode) -> anyhow::Result<Engine> {
    Ok(Engine::open(&home_dir(home)?, mode)?)
}

/// The session a command names, for a missing home's message.
fn named_session(c: &Command) -> Option<&str> {
    use crate::args::session::SessionCommand as S;
    match c {
        Command::Session(
            S::Show { name, .. }
            | S::Extend { name, .. }
            | S::Delete { name }
            | S::History { name }
            | S::Rollback { name, .. },
        ) => Some(name),
        Command::Session(S::Open(a)) => Some(&a.name),
        Command::Export(a) => Some(&a.name),
        Command::Push(a) => Some(&a.name),
        _ => None,
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let name = named_session(&cli.command).map(str::to_owned);
    run_command(cli).map_err(
        |e| match (&name, e.downcast_ref::<sesshost_engine::Error>()) {
            (Some(n), Some(sesshost_engine::Error::NoHome(_))) => e.context(format!(
                "no session named {n:?} (run `host session list` to see the sessions a home holds)"
            )),
            _ => e,
        },
    )
}

fn run_command(cli: Cli) -> anyhow::Result<()> {
    let mode_for = |reads: bool| {
        if reads {
            HomeMode::Existing
        } else {
            HomeMode::Create
        }
    };
    match cli.command {
        Command::Session(SessionCommand::Open(a)) => {
            let rt = runtime()?;
            rt.block_on(async {
                let e = engine(cli.home, HomeMode::Existing)?;
                open_cmd::run(&e, a).await
            })
        }
        Command::Session(c) => {
            let mode = mode_for(session_cmd::reads_only(&c));
            let rt = runtime()?;
            rt.block_on(async {
                let e = engine(cli.home, mode)?;
                let stdout = std::io::stdout();
                let mut out = stdout.lock();
                session_cmd::run(&e, c, &mut out).await
            })
        }
        Command::Export(a) => runtime()?.block_on(async {
            transfer_cmd::export(&engine(cli.home, HomeMode::Existing)?, a).await
        }),
        Command::Import(a) => runtime()?.block_on(async {
            transfer_cmd::import(&engine(cli.home, HomeMode::Create)?, a).await
        }),
        Command::Push(a) => runtime()?
            .block_on(async { plugin_cmd::push(&engine(cli.home, HomeMode::Existing)?, a).await }),
        Command::Pull(a) => runtime()?
            .block_on(async { plugin_cmd::pull(&engine(cli.home, HomeMode::Create)?, a).await }),
        Command::Plugin(c) => {
            let stdout = std::io::stdout();
            plugin_cmd::run(&home_dir(cli.home)?, c, &mut stdout.lock())
        }
        Command::Keygen(a) => bundle_cmd::keygen(&a),
        Command::Seal(a) => bundle_cmd::seal(&a),
        Command::Unseal(a) => bundle_cmd::unseal(&a),
        Command::Sign(a) => bundle_cmd::sign(&a.input, &a.key, a.signer),
        Command::Verify(a) => bundle_cmd::verify(&a.input, &a.key, a.json),
        Command::Inspect(a) => bundle_cmd::inspect(&a),
        Command::Rekey(a) => bundle_cmd::rekey(&a),
        Command::Run(a) => {
            let home = home_dir(cli.home)?;
            service_runtime()?.block_on(run_cmd::run(home, a))
        }
        // With --cluster the registry is the bucket's, reached through the
        // storage plugin, whose calls run on the runtime (declared first,
        // so it outlives the registry).
        Command::Tenant(c) => {
            let rt = runtime()?;
            let reg = rt.block_on(service_cmd::open(&home_dir(cli.home)?, c.at()))?;
            service_cmd::tenant(&reg, c, &mut std::io::stdout().lock())
        }
        Command::Key(c) => {
            let rt = runtime()?;
            let reg = rt.block_on(service_cmd::open(&home_dir(cli.home)?, c.at()))?;
            service_cmd::key(&reg, c, &mut std::io::stdout().lock())
        }
    }
}
