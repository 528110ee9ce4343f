//! Turning `--passphrase-file`, `--passphrase-env`, `--key-file` or a TTY
//! prompt into unlock keys. Secrets never come from argv and never reach logs
//! or error messages.

use std::io::IsTerminal;

use anyhow::{Context, Result, bail};
use sessbundle::{Passphrase, SymmetricKey, Unlock};

use crate::args::KeyArgs;

/// Whether a prompt would ask for the passphrase twice (new secrets).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Sealing: confirm a typed passphrase.
    New,
    /// Opening: ask once.
    Existing,
}

/// All unlocks the flags name; if none and `prompt`, ask on the terminal.
pub fn unlocks(k: &KeyArgs, purpose: Purpose, prompt: bool) -> Result<Vec<Unlock>> {
    let mut out = Vec::new();
    if let Some(p) = &k.passphrase_file {
        let b = std::fs::read(p)
            .with_context(|| format!("cannot read the passphrase file {}", p.display()))?;
        let pw = Passphrase::from_file_bytes(b);
        if pw.is_empty() {
            bail!(
                "the passphrase file {} is empty: put the passphrase in it",
                p.display()
            );
        }
        out.push(Unlock::Passphrase(pw));
    }
    if let Some(var) = &k.passphrase_env {
        let v = std::env::var_os(var).with_context(|| {
            format!("the environment variable {var} (--passphrase-env) is not set: export it first")
        })?;
        let pw = Passphrase::new(v.into_encoded_bytes());
        if pw.is_empty() {
            bail!("the environment variable {var} (--passphrase-env) is empty");
        }
        out.push(Unlock::Passphrase(pw));
    }
    for f in &k.key_file {
        out.push(Unlock::Key(SymmetricKey::read(f)?));
    }
    if out.is_empty() && prompt {
        out.push(Unlock::Passphrase(prompt_passphrase(purpose)?));
    }
    Ok(out)
}

/// Exactly one unlock, for opening.
pub fn one_unlock(k: &KeyArgs) -> Result<Unlock> {
    let mut u = unlocks(k, Purpose::Existing, true)?;
    if u.len() > 1 {
        bail!("give one way to open the bundle: --passphrase-file, --passphrase-env or --key-file");
    }
    Ok(u.remove(0))
}

fn prompt_passphrase(purpose: Purpose) -> Result<Passphrase> {
    if !std::io::stdin().is_terminal() {
        bail!(
            "no passphrase or key given, and stdin is not a terminal so I will not prompt: \
             pass --passphrase-file F, --passphrase-env VAR or --key-file K"
        );
    }
    let first = rpassword::prompt_password("Passphrase: ")
        .context("cannot read the passphrase from the terminal")?;
    if first.is_empty() {
        bail!("the passphrase is empty: choose a non-empty passphrase");
    }
    if purpose == Purpose::New {
        let again = rpassword::prompt_password("Passphrase (again): ")
            .context("cannot read the passphrase from the terminal")?;
        if again != first {
            bail!("the two passphrases differ: nothing was written; try again");
        }
    }
    Ok(Passphrase::new(first))
}
