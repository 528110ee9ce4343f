//! The key format (`shk_<id>_<secret>`), [`ApiKey`], the stored
//! [`KeyRecord`], the tenant naming rule, and the random and clock helpers
//! both storages use.

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::KeyInfo;
use crate::error::{Result, ServiceError};
use sessbundle::interop::dates::{format_rfc3339, now_unix_secs};

pub(super) const KEY_PREFIX: &str = "shk_";
pub(super) const ID_HEX: usize = 12;
const SECRET_B64: usize = 43; // 32 bytes, base64url, no padding
pub(super) const KEY_LEN: usize = KEY_PREFIX.len() + ID_HEX + 1 + SECRET_B64;

/// A whole API key, held only to be shown once. Its bytes are overwritten
/// on drop; it has no `Display`, and its `Debug` shows the key id only.
pub struct ApiKey {
    key: String,
    id: String,
}

impl ApiKey {
    /// A fresh key with id `id` (32 random bytes of secret).
    pub(super) fn generate(id: String) -> Result<ApiKey> {
        let secret = random_bytes::<32>()?;
        Ok(ApiKey {
            key: format!(
                "{KEY_PREFIX}{id}_{}",
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret)
            ),
            id,
        })
    }

    /// The key text (`shk_<id>_<secret>`), to print once.
    pub fn expose(&self) -> &str {
        &self.key
    }

    /// The key's id (safe to show).
    pub fn id(&self) -> &str {
        &self.id
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Drop for ApiKey {
    fn drop(&mut self) {
        let mut bytes = std::mem::take(&mut self.key).into_bytes();
        for b in bytes.iter_mut() {
            *b = 0;
        }
        std::hint::black_box(&bytes);
        std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
    }
}

/// The stored form of a key (the file `keys/<id>.json`; the bucket's
/// object adds `v` and `nonce`, see `bucket.rs`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct KeyRecord {
    pub id: String,
    pub tenant: String,
    pub sha256: String,
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
}

impl KeyRecord {
    pub fn info(&self) -> KeyInfo {
        KeyInfo {
            id: self.id.clone(),
            tenant: self.tenant.clone(),
            created_at: self.created_at.clone(),
            revoked_at: self.revoked_at.clone(),
        }
    }
}

/// Checks the tenant naming rule: 1-64 characters from `a-z0-9_-`.
pub fn validate_tenant_name(name: &str) -> Result<()> {
    let bad = |rule| {
        Err(ServiceError::InvalidTenantName {
            name: name.chars().take(80).collect(),
            rule,
        })
    };
    if name.is_empty() {
        return bad("it is empty");
    }
    if name.len() > 64 {
        return bad("it is longer than 64 characters");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    {
        return bad("it has a character outside a-z, 0-9, '_' and '-'");
    }
    Ok(())
}

pub(super) fn valid_key_id(id: &str) -> bool {
    id.len() == ID_HEX
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The id of a presented key of the right shape, else `None`.
pub(super) fn parse_key_id(presented: &str) -> Option<&str> {
    if presented.len() != KEY_LEN || !presented.is_ascii() {
        return None;
    }
    let rest = presented.strip_prefix(KEY_PREFIX)?;
    let id = rest.get(..ID_HEX)?;
    if !valid_key_id(id) || rest.as_bytes().get(ID_HEX) != Some(&b'_') {
        return None;
    }
    let secret = rest.get(ID_HEX + 1..)?;
    if !secret
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return None;
    }
    Some(id)
}

fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 15)]));
    }
    out
}

pub(super) fn sha256_hex(s: &str) -> String {
    hex(&Sha256::digest(s.as_bytes()))
}

pub(super) fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|e| ServiceError::Random(e.to_string()))?;
    Ok(b)
}

/// A fresh key id: 12 lowercase hex digits.
pub(super) fn random_key_id() -> Result<String> {
    Ok(hex(&random_bytes::<6>()?))
}

/// A fresh write nonce: 32 lowercase hex digits (STORE.md, cluster objects).
pub(super) fn nonce() -> Result<String> {
    Ok(hex(&random_bytes::<16>()?))
}

pub(super) fn now_rfc3339() -> String {
    format_rfc3339(now_unix_secs()).unwrap_or_else(|| "1970-01-01T00:00:00Z".into())
}
