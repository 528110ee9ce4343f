//! The optional plugin manifest (`NAME.toml` beside `NAME.wasm`) and the
//! effective grant: what the manifest requests, intersected with what the
//! operator allows. A request the operator did not allow is an error naming
//! the request and the flag that would allow it.
//!
//! ```toml
//! blake3 = "af1349b9..."          # optional pin of the .wasm
//! [requests]
//! hosts = ["s3.example.com:443"]  # --allow-host
//! dirs = ["/data"]                # guest paths; --allow-dir HOST:/data
//! env = ["AWS_REGION"]            # --plugin-env NAME
//! [limits]
//! deadline_ms = 5000              # at most the operator's limit
//! memory_mib = 256
//! ```
//!
//! Without a manifest the operator's grants apply as given.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::config::{Grants, HostGrant, Limits};
use crate::error::{Error, Result};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Hex BLAKE3 of the .wasm file; load fails if it differs.
    #[serde(default)]
    pub blake3: Option<String>,
    #[serde(default)]
    pub requests: Requests,
    #[serde(default)]
    pub limits: ManifestLimits,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Requests {
    #[serde(default)]
    pub hosts: Vec<String>,
    #[serde(default)]
    pub dirs: Vec<String>,
    #[serde(default)]
    pub env: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestLimits {
    pub deadline_ms: Option<u64>,
    pub memory_mib: Option<u64>,
}

/// Where the manifest of `wasm` would be: same stem, `.toml`.
pub fn manifest_path(wasm: &Path) -> PathBuf {
    wasm.with_extension("toml")
}

/// Reads the manifest beside `wasm`, if there is one.
pub fn read_manifest(wasm: &Path) -> Result<Option<(PathBuf, Manifest)>> {
    let path = manifest_path(wasm);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(Error::Manifest {
                path,
                detail: e.to_string(),
            });
        }
    };
    let m: Manifest = toml::from_str(&text).map_err(|e| Error::Manifest {
        path: path.clone(),
        detail: e.to_string(),
    })?;
    Ok(Some((path, m)))
}

/// The grant a plugin actually gets.
pub(crate) fn effective(
    plugin: &str,
    wasm_hash: &str,
    manifest: Option<&(PathBuf, Manifest)>,
    operator: &Grants,
    max: Limits,
) -> Result<Grants> {
    let Some((mpath, m)) = manifest else {
        let mut g = operator.clone();
        g.limits = Some(operator.limits.unwrap_or(max));
        return Ok(g);
    };
    let refused = |request: String, flag: String| Error::Refused {
        plugin: plugin.to_string(),
        request,
        flag,
        manifest: mpath.clone(),
    };
    if let Some(pin) = m
        .blake3
        .as_ref()
        .filter(|p| !p.eq_ignore_ascii_case(wasm_hash))
    {
        return Err(Error::PinMismatch {
            plugin: plugin.to_string(),
            manifest: mpath.clone(),
            pinned: pin.clone(),
            actual: wasm_hash.to_string(),
        });
    }
    let mut out = Grants {
        config: operator.config.clone(),
        ..Grants::default()
    };
    for h in &m.requests.hosts {
        let want = HostGrant::parse(h).map_err(|_| Error::Manifest {
            path: mpath.clone(),
            detail: format!("requests.hosts: `{h}` is not HOST:PORT"),
        })?;
        // A wildcard request is granted only by the same wildcard.
        if !operator.hosts.iter().any(|g| {
            *g == want || (!want.host.starts_with("*.") && g.allows(&want.host, want.port))
        }) {
            return Err(refused(
                format!("network access to {want}"),
                format!("--allow-host {want}"),
            ));
        }
        out.hosts.push(want);
    }
    for d in &m.requests.dirs {
        let g = operator
            .dirs
            .iter()
            .find(|g| g.guest == *d)
            .ok_or_else(|| {
                refused(
                    format!("the directory {d}"),
                    format!("--allow-dir HOSTDIR:{d}"),
                )
            })?;
        out.dirs.push(g.clone());
    }
    for n in &m.requests.env {
        let v = operator.env.iter().find(|(k, _)| k == n).ok_or_else(|| {
            refused(
                format!("the environment variable {n}"),
                format!("--plugin-env {n}"),
            )
        })?;
        out.env.push(v.clone());
    }
    let op = operator.limits.unwrap_or(max);
    let mut limits = op;
    if let Some(ms) = m.limits.deadline_ms {
        if Duration::from_millis(ms) > op.deadline {
            return Err(refused(
                format!("a deadline of {ms} ms"),
                format!("--plugin-deadline-ms {ms}"),
            ));
        }
        limits.deadline = Duration::from_millis(ms);
    }
    if let Some(mib) = m.limits.memory_mib {
        if mib << 20 > op.memory_bytes {
            return Err(refused(
                format!("{mib} MiB of memory"),
                format!("--plugin-memory-mib {mib}"),
            ));
        }
        limits.memory_bytes = mib << 20;
    }
    out.limits = Some(limits);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DirGrant;

    fn manifest(text: &str) -> (PathBuf, Manifest) {
        (PathBuf::from("s3.toml"), toml::from_str(text).unwrap())
    }

    #[test]
    fn request_outside_the_operator_grant_is_refused_by_name() {
        let m = manifest("[requests]\nhosts = [\"x.example:443\"]\n");
        let op = Grants::default().with_hosts(["y.example:443"]).unwrap();
        let e = effective("s3.wasm", "00", Some(&m), &op, Limits::default())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("s3.wasm asked for network access to x.example:443"),
            "{e}"
        );
        assert!(e.contains("--allow-host x.example:443"), "{e}");
    }

    #[test]
    fn effective_grant_is_the_intersection() {
        let m = manifest(
            "[requests]\nhosts = [\"x.example:443\"]\ndirs = [\"/data\"]\n[limits]\nmemory_mib = 64\n",
        );
        let op = Grants::default()
            .with_hosts(["x.example:443", "other.example:443"])
            .unwrap()
            .with_dir(DirGrant::parse("/tmp:/data").unwrap())
            .with_dir(DirGrant::parse("/etc:/etc").unwrap());
        let g = effective("s3.wasm", "00", Some(&m), &op, Limits::default()).unwrap();
        assert_eq!(g.hosts, vec![HostGrant::parse("x.example:443").unwrap()]);
        assert_eq!(g.dirs.len(), 1);
        assert_eq!(g.limits.unwrap().memory_bytes, 64 << 20);
        let greedy = manifest("[limits]\nmemory_mib = 4096\n");
        let e = effective("s3.wasm", "00", Some(&greedy), &op, Limits::default())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("4096 MiB") && e.contains("--plugin-memory-mib 4096"),
            "{e}"
        );
    }

    #[test]
    fn pin_mismatch_names_both_hashes() {
        let m = manifest("blake3 = \"aa\"\n");
        let e = effective(
            "s3.wasm",
            "bb",
            Some(&m),
            &Grants::default(),
            Limits::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("pins aa") && e.contains("BLAKE3 bb"), "{e}");
    }
}
