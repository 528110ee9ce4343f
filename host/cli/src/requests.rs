//! Plain flag data → the engine's request data (the ripgrep `hiargs` step):
//! grants a plugin gets, Argon2id cost, how to seal. Reads the files and
//! variables the flags name; prints nothing.

use anyhow::{Context, Result};
use sessbundle::Argon2Params;
use sesshost_engine::bundle_io::SealSpec;
use sesshost_plugin::{DirGrant, Grants, read_config_file};

use crate::args::plugin::GrantArgs;
use crate::args::{KdfArgs, SealFlags};
use crate::secrets;

/// What the operator grants a plugin (nothing by default).
pub fn grants(a: &GrantArgs) -> Result<Grants> {
    let mut g = Grants::default();
    if let Some(f) = &a.plugin_config_file {
        g.config.extend(read_config_file(f)?);
    }
    g = g.with_config(a.plugin_config.iter().map(String::as_str))?;
    g = g.with_hosts(a.allow_host.iter().map(String::as_str))?;
    for d in &a.allow_dir {
        g = g.with_dir(DirGrant::parse(d)?);
    }
    for name in &a.plugin_env {
        let v = std::env::var(name)
            .with_context(|| format!("--plugin-env {name}: the variable is not set"))?;
        g.env.push((name.clone(), v));
    }
    if a.plugin_deadline_ms.is_some() || a.plugin_memory_mib.is_some() {
        let mut l = sesshost_plugin::Limits::default();
        if let Some(ms) = a.plugin_deadline_ms {
            l.deadline = std::time::Duration::from_millis(ms);
        }
        if let Some(m) = a.plugin_memory_mib {
            l.memory_bytes = m << 20;
        }
        g.limits = Some(l);
    }
    Ok(g)
}

/// Argon2id cost for new passphrase slots, checked against reader caps.
pub fn argon2(k: &KdfArgs) -> Result<Argon2Params> {
    let p = Argon2Params {
        m_kib: k.argon2_memory.saturating_mul(1024),
        t: k.argon2_time,
        p: k.argon2_parallelism,
    };
    p.check()?;
    Ok(p)
}

/// The trusted comment's signer: `--signer`, else `$USER`.
pub fn signer_name(s: Option<String>) -> String {
    s.or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "unknown".into())
}

/// How to seal a new bundle: key slots (prompting on a terminal if none
/// given), cost, optional signing key.
pub fn seal_spec(f: &SealFlags) -> Result<SealSpec> {
    let sign = f
        .sign
        .as_deref()
        .map(sessbundle::SigningKey::read)
        .transpose()?;
    Ok(SealSpec {
        slots: secrets::slots(&f.keys, &f.recipients)?,
        argon2: argon2(&f.kdf)?,
        sign,
        signer: signer_name(f.signer.clone()),
    })
}
