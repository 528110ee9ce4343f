//! Turning `--passphrase-file`, `--passphrase-env`, `--key-file` or a TTY
//! prompt into unlock keys. Secrets never come from argv and never reach logs
//! or error messages.

use std::io::IsTerminal;

use anyhow::{Context, Result, bail};
use sessbundle::{Identity, Passphrase, Recipient, SlotSpec, SymmetricKey, Unlock};

use crate::args::{KeyArgs, RecipientArgs};

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
    for f in &k.identity {
        out.push(Unlock::Identity(Identity::read(f)?));
    }
    if out.is_empty() && prompt {
        out.push(Unlock::Passphrase(prompt_passphrase(purpose)?));
    }
    Ok(out)
}

/// The recipients named by `--recipient`: a file, or the line itself.
pub fn recipients(r: &RecipientArgs) -> Result<Vec<Recipient>> {
    r.recipient
        .iter()
        .map(|v| {
            let p = std::path::Path::new(v);
            if p.exists() {
                Ok(Recipient::read(p)?)
            } else if v.contains(':') && !v.contains('/') {
                Ok(Recipient::parse_line(v.trim())?)
            } else {
                bail!("--recipient {v}: no such file, and not a recipient line (sessbundle-recipient-v1:…); give the ID.pub from `host keygen --identity`")
            }
        })
        .collect()
}

/// Key slots for a new bundle: passphrase and key files from `k`, plus the
/// recipients. Prompts on a terminal only when neither names any key.
pub fn slots(k: &KeyArgs, r: &RecipientArgs) -> Result<Vec<SlotSpec>> {
    if !k.identity.is_empty() {
        crate::usage!(
            "--identity opens bundles; to seal to someone, give their ID.pub with --recipient"
        );
    }
    let recipients = recipients(r)?;
    let mut out: Vec<SlotSpec> = unlocks(k, Purpose::New, recipients.is_empty())?
        .into_iter()
        .filter_map(|u| match u {
            Unlock::Passphrase(p) => Some(SlotSpec::Passphrase(p)),
            Unlock::Key(key) => Some(SlotSpec::Key(key)),
            Unlock::Identity(_) => None,
        })
        .collect();
    out.extend(recipients.into_iter().map(SlotSpec::Recipient));
    Ok(out)
}

/// [`one_unlock`] deferred, for an engine call that asks for the key only
/// once it knows the file is a bundle. A usage error stays one (exit 2).
pub fn unlock_later(
    k: &KeyArgs,
) -> impl FnOnce() -> sesshost_engine::Result<Unlock> + Send + 'static {
    let k = k.clone();
    move || {
        one_unlock(&k).map_err(|e| match e.downcast_ref::<crate::UsageError>() {
            Some(u) => sesshost_engine::Error::Usage(u.0.clone()),
            None => sesshost_engine::Error::Invalid(format!("{e:#}")),
        })
    }
}

/// Exactly one unlock, for opening.
pub fn one_unlock(k: &KeyArgs) -> Result<Unlock> {
    let mut u = unlocks(k, Purpose::Existing, true)?;
    if u.len() > 1 {
        crate::usage!(
            "give one way to open the bundle: --passphrase-file, --passphrase-env, --key-file or --identity"
        );
    }
    Ok(u.remove(0))
}

fn prompt_passphrase(purpose: Purpose) -> Result<Passphrase> {
    if !std::io::stdin().is_terminal() {
        bail!(
            "no passphrase or key given, and stdin is not a terminal so I will not prompt: \
             pass --passphrase-file F, --passphrase-env VAR, --key-file K or --identity ID"
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
