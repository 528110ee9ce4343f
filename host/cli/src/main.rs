//! `host`: the sesshost binary. Parses flags into plain data (`args`), then
//! acts. It wires the crates together and owns nothing of the formats:
//! - `args`: the whole command-line surface, as data;
//! - `secrets`: passphrase / key-file / prompt handling (never argv);
//! - `bundle_cmd`: keygen, seal, unseal, sign, verify, inspect, rekey;
//! - `session_cmd`: local sessions in the home's store (`sesshost-store`);
//! - `open_cmd`: `host session open`, a stored session live in Chromium
//!   (`sesshost-browser`), autosaved, saved on exit;
//! - `transfer_cmd`: `host export` / `host import` (bundle, Playwright, cookies.txt);
//! - `plugin_cmd`: wasm plugins (`sesshost-plugin`): inspect, sanitisers for
//!   export, storage backends for push/pull, cleanup strategies.
//!
//! Exit codes: 0 ok, 1 error, 2 usage, 3 authentication or signature failure.

mod args;
mod bundle_cmd;
mod open_cmd;
mod plugin_cmd;
mod progress;
mod secrets;
mod session_cmd;
mod transfer_cmd;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use crate::args::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            let auth = e.chain().any(|c| {
                c.downcast_ref::<sessbundle::Error>()
                    .is_some_and(|b| b.is_auth_failure())
            });
            ExitCode::from(if auth { 3 } else { 1 })
        }
    }
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
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

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Session(c) => session_cmd::run(&home_dir(cli.home)?, c),
        Command::Export(a) => transfer_cmd::export(&home_dir(cli.home)?, a),
        Command::Import(a) => transfer_cmd::import(&home_dir(cli.home)?, a),
        Command::Push(a) => plugin_cmd::push(&home_dir(cli.home)?, a),
        Command::Pull(a) => plugin_cmd::pull(&home_dir(cli.home)?, a),
        Command::Plugin(c) => plugin_cmd::run(&home_dir(cli.home)?, c),
        Command::Keygen {
            output,
            symmetric,
            force,
        } => bundle_cmd::keygen(&output, symmetric, force),
        Command::Seal {
            input,
            output,
            sign,
            signer,
            keys,
            kdf,
            force,
        } => bundle_cmd::seal(&input, &output, sign.as_deref(), signer, &keys, &kdf, force),
        Command::Unseal {
            input,
            output,
            keys,
            force,
        } => bundle_cmd::unseal(&input, &output, &keys, force),
        Command::Sign { input, key, signer } => bundle_cmd::sign(&input, &key, signer),
        Command::Verify { input, key, json } => bundle_cmd::verify(&input, &key, json),
        Command::Inspect {
            input,
            json,
            decrypt,
            keys,
        } => bundle_cmd::inspect(&input, json, decrypt, &keys),
        Command::Rekey {
            input,
            output,
            keys,
            new_passphrase_file,
            new_passphrase_env,
            new_key_file,
            kdf,
            force,
        } => bundle_cmd::rekey(
            &input,
            &output,
            &keys,
            new_passphrase_file,
            new_passphrase_env,
            new_key_file,
            &kdf,
            force,
        ),
    }
}
