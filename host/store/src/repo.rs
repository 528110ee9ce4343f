//! A remote repository's format around the store: its `config` object and
//! the repository key derived from a passphrase or a key file (STORE.md
//! "Keys"). The bytes are those `host push` has always written, so
//! existing repositories open unchanged.
//!
//! `config` is plaintext JSON: `{"v":1, "salt":hex16, "m_kib", "t", "p",
//! "check":hex32}`. Repository key = `derive_key(CTX_REPO_KEY, X)` with X =
//! Argon2id(passphrase, salt, m_kib/t/p) or the 32 bytes of the key file;
//! `check` = BLAKE3-keyed(repository key, CTX_REPO_CHECK), so a wrong
//! passphrase is reported before any object is read.

use serde_json::{Value, json};

use crate::backend::{Backend, BackendErrorKind, Etag, Precondition};
use crate::crypto::RepoKey;
use crate::error::{Result, StoreError};

/// The key of the `config` object.
pub const REPO_CONFIG_KEY: &str = "config";
const CTX_REPO_KEY: &str = "sesshost 2026-11-22 repository key";
const CTX_REPO_CHECK: &str = "sesshost 2026-11-22 repository key check";

/// What unlocks a repository. Never printed (Debug is redacted).
#[derive(Clone, Copy)]
pub enum RepoUnlock<'a> {
    /// Run through Argon2id with the repository's salt and parameters.
    Passphrase(&'a [u8]),
    /// The 32 bytes of a key file (`host keygen --symmetric`).
    KeyFile(&'a [u8; 32]),
}

impl std::fmt::Debug for RepoUnlock<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RepoUnlock::Passphrase(_) => "RepoUnlock::Passphrase(<redacted>)",
            RepoUnlock::KeyFile(_) => "RepoUnlock::KeyFile(<redacted>)",
        })
    }
}

fn config_err(detail: impl Into<String>) -> StoreError {
    StoreError::RepoConfig {
        detail: detail.into(),
    }
}

fn backend_err(op: &'static str) -> impl FnOnce(crate::backend::BackendError) -> StoreError {
    move |source| StoreError::Backend {
        op,
        key: REPO_CONFIG_KEY.into(),
        source,
    }
}

/// The repository key of `backend`'s repository. With `create`, a backend
/// without a `config` gets one (fresh salt, default Argon2id parameters),
/// written create-only: of concurrent first pushes one wins and the others
/// use its `config`;
/// without, that is [`StoreError::NoRepository`]. A `config` without a
/// `check` (written before checks existed) gets one. A wrong passphrase or
/// key file is [`StoreError::WrongRepoKey`].
pub fn open_repo_key(
    backend: &dyn Backend,
    unlock: RepoUnlock<'_>,
    create: bool,
) -> Result<RepoKey> {
    // Two first pushes to one empty bucket race to create `config`: it is
    // written create-only, and the loser re-reads and uses the winner's
    // (STORE.md "Repository config"). A few rounds, because a racing
    // writer may also be adding the `check` field.
    for _ in 0..5 {
        let existing = backend
            .get_with_etag(REPO_CONFIG_KEY)
            .map_err(backend_err("read"))?;
        let (config, etag): (Value, Option<Etag>) = match existing {
            Some((b, etag)) => (
                serde_json::from_slice(&b)
                    .map_err(|e| config_err(format!("is not valid JSON ({e})")))?,
                Some(etag),
            ),
            None if create => {
                let mut salt = [0u8; 16];
                getrandom::fill(&mut salt)
                    .map_err(|e| StoreError::State(format!("no OS randomness: {e}")))?;
                let p = sessbundle::Argon2Params::default();
                (
                    json!({"v": 1, "salt": sessbundle::keys::hex(&salt), "m_kib": p.m_kib, "t": p.t, "p": p.p}),
                    None,
                )
            }
            None => return Err(StoreError::NoRepository),
        };
        let key = derive(&config, unlock)?;
        let check = check_value(&key);
        let pre = match (config.get("check").and_then(Value::as_str), etag) {
            (Some(c), _) if c == check => return Ok(RepoKey::from_bytes(key)),
            (Some(_), _) => return Err(StoreError::WrongRepoKey),
            (None, Some(etag)) => Precondition::IfMatch(etag),
            (None, None) => Precondition::IfAbsent,
        };
        let mut c = config;
        c["check"] = json!(check);
        let bytes = serde_json::to_vec_pretty(&c)
            .map_err(|e| StoreError::State(format!("cannot encode the repository config: {e}")))?;
        match backend.put_if(REPO_CONFIG_KEY, &bytes, pre.clone()) {
            Ok(_) => return Ok(RepoKey::from_bytes(key)),
            // Another process wrote `config` first: use its.
            Err(e) if e.kind == BackendErrorKind::PreconditionFailed => continue,
            // Conflict, or a 5xx after which the write may or may not have
            // happened: re-read and decide on what is there.
            Err(e)
                if matches!(
                    e.kind,
                    BackendErrorKind::Conflict | BackendErrorKind::UnknownOutcome
                ) =>
            {
                continue;
            }
            // A backend without conditional writes (a 0.1 storage plugin):
            // the unconditional write push always did; a concurrent first
            // push there can still race.
            Err(e) if e.kind == BackendErrorKind::Unsupported => {
                backend
                    .put(REPO_CONFIG_KEY, &bytes)
                    .map_err(backend_err("write"))?;
                return Ok(RepoKey::from_bytes(key));
            }
            Err(e) => return Err(backend_err("write")(e)),
        }
    }
    Err(config_err(
        "kept changing while it was being created (another process is writing it): retry",
    ))
}

fn derive(config: &Value, unlock: RepoUnlock<'_>) -> Result<[u8; 32]> {
    match unlock {
        RepoUnlock::KeyFile(k) => Ok(blake3::derive_key(CTX_REPO_KEY, k)),
        RepoUnlock::Passphrase(pw) => {
            let salt_hex = config
                .get("salt")
                .and_then(Value::as_str)
                .ok_or_else(|| config_err("has no salt"))?;
            let salt = sessbundle::keys::unhex::<16>(salt_hex)
                .ok_or_else(|| config_err("has a salt that is not 16 bytes of hex"))?;
            let param = |k: &str| {
                config
                    .get(k)
                    .and_then(Value::as_u64)
                    .and_then(|v| u32::try_from(v).ok())
                    .unwrap_or(0)
            };
            let p = sessbundle::Argon2Params {
                m_kib: param("m_kib"),
                t: param("t"),
                p: param("p"),
            };
            let kek = p.derive_kek(pw, &salt).map_err(|e| {
                config_err(format!("has Argon2id parameters this build refuses ({e})"))
            })?;
            Ok(blake3::derive_key(CTX_REPO_KEY, &kek))
        }
    }
}

fn check_value(key: &[u8; 32]) -> String {
    sessbundle::keys::hex(blake3::keyed_hash(key, CTX_REPO_CHECK.as_bytes()).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::LocalDirBackend;

    fn cheap_config(b: &dyn Backend, check: Option<&str>) {
        let mut c = json!({"v": 1, "salt": "000102030405060708090a0b0c0d0e0f", "m_kib": 64, "t": 1, "p": 1});
        if let Some(ch) = check {
            c["check"] = json!(ch);
        }
        b.put(REPO_CONFIG_KEY, &serde_json::to_vec_pretty(&c).unwrap())
            .unwrap();
    }

    #[test]
    fn passphrase_key_matches_the_bytes_push_always_derived() {
        let d = tempfile::tempdir().unwrap();
        let b = LocalDirBackend::new(d.path());
        cheap_config(&b, None);
        let k = open_repo_key(&b, RepoUnlock::Passphrase(b"pw"), false).unwrap();
        // The derivation written out, as host/cli/src/plugin_cmd.rs did it.
        let kek = sessbundle::Argon2Params {
            m_kib: 64,
            t: 1,
            p: 1,
        }
        .derive_kek(b"pw", &core::array::from_fn(|i| i as u8))
        .unwrap();
        assert_eq!(k.as_bytes(), &blake3::derive_key(CTX_REPO_KEY, &kek));
        // The check was added, and now guards the key.
        let c: Value = serde_json::from_slice(&b.get(REPO_CONFIG_KEY).unwrap().unwrap()).unwrap();
        assert_eq!(c["check"].as_str().unwrap(), check_value(k.as_bytes()));
        let again = open_repo_key(&b, RepoUnlock::Passphrase(b"pw"), false).unwrap();
        assert_eq!(again.as_bytes(), k.as_bytes());
        let e = open_repo_key(&b, RepoUnlock::Passphrase(b"other"), false).unwrap_err();
        assert!(matches!(e, StoreError::WrongRepoKey), "{e}");
        assert!(e.to_string().contains("another passphrase"), "{e}");
    }

    #[test]
    fn key_file_create_and_missing_repo_and_bad_config() {
        let d = tempfile::tempdir().unwrap();
        let b = LocalDirBackend::new(d.path());
        let kf = [7u8; 32];
        let e = open_repo_key(&b, RepoUnlock::KeyFile(&kf), false).unwrap_err();
        assert!(matches!(e, StoreError::NoRepository), "{e}");
        let k = open_repo_key(&b, RepoUnlock::KeyFile(&kf), true).unwrap();
        assert_eq!(k.as_bytes(), &blake3::derive_key(CTX_REPO_KEY, &kf));
        let c: Value = serde_json::from_slice(&b.get(REPO_CONFIG_KEY).unwrap().unwrap()).unwrap();
        assert_eq!(c["v"], 1);
        assert_eq!(c["m_kib"], 65536);
        assert_eq!(c["salt"].as_str().unwrap().len(), 32);
        let e = open_repo_key(&b, RepoUnlock::KeyFile(&[8u8; 32]), false).unwrap_err();
        assert!(matches!(e, StoreError::WrongRepoKey), "{e}");
        b.put(REPO_CONFIG_KEY, b"{not json").unwrap();
        let e = open_repo_key(&b, RepoUnlock::KeyFile(&kf), false).unwrap_err();
        assert!(e.to_string().contains("not valid JSON"), "{e}");
        b.put(
            REPO_CONFIG_KEY,
            br#"{"v":1,"salt":"zz","m_kib":64,"t":1,"p":1}"#,
        )
        .unwrap();
        let e = open_repo_key(&b, RepoUnlock::Passphrase(b"pw"), false).unwrap_err();
        assert!(e.to_string().contains("salt"), "{e}");
        b.put(
            REPO_CONFIG_KEY,
            br#"{"v":1,"salt":"000102030405060708090a0b0c0d0e0f","m_kib":4294967295,"t":1,"p":1}"#,
        )
        .unwrap();
        let e = open_repo_key(&b, RepoUnlock::Passphrase(b"pw"), false).unwrap_err();
        assert!(e.to_string().contains("Argon2id"), "{e}");
    }

    /// Two first pushes to one empty repository: the config is created
    /// once, and both derive the same key from it (the same salt).
    #[test]
    fn racing_first_pushes_converge_on_one_config() {
        for round in 0..3 {
            let d = tempfile::tempdir().unwrap();
            let b = LocalDirBackend::new(d.path());
            let barrier = std::sync::Barrier::new(2);
            let keys: Vec<[u8; 32]> = std::thread::scope(|s| {
                let hs: Vec<_> = (0..2)
                    .map(|_| {
                        s.spawn(|| {
                            barrier.wait();
                            *open_repo_key(&b, RepoUnlock::Passphrase(b"pw"), true)
                                .unwrap()
                                .as_bytes()
                        })
                    })
                    .collect();
                hs.into_iter().map(|h| h.join().unwrap()).collect()
            });
            assert_eq!(keys[0], keys[1], "round {round}: two configs were used");
            let again = open_repo_key(&b, RepoUnlock::Passphrase(b"pw"), false).unwrap();
            assert_eq!(again.as_bytes(), &keys[0]);
        }
    }

    /// A 500 after which the create did happen, and a spurious 409: the
    /// writer re-reads and uses what is there.
    #[test]
    fn ambiguous_config_writes_are_resolved_by_reading_back() {
        use crate::backend::memory::{Fault, MemoryBackend};
        let b = MemoryBackend::new();
        b.inject_next(Fault::ServerError { applied: true });
        let kf = [3u8; 32];
        let k = open_repo_key(&b, RepoUnlock::KeyFile(&kf), true).unwrap();
        assert_eq!(b.writes(), 1, "no second write after the applied 500");
        let c1 = b.get(REPO_CONFIG_KEY).unwrap().unwrap();
        let k2 = open_repo_key(&b, RepoUnlock::KeyFile(&kf), false).unwrap();
        assert_eq!(k.as_bytes(), k2.as_bytes());
        assert_eq!(b.get(REPO_CONFIG_KEY).unwrap().unwrap(), c1);

        let b = MemoryBackend::new();
        b.inject_next(Fault::Conflict);
        open_repo_key(&b, RepoUnlock::KeyFile(&kf), true).unwrap();
        assert_eq!(b.writes(), 2, "the 409 was retried");
        assert!(b.has(REPO_CONFIG_KEY).unwrap());
    }
}
