//! Session name rules. A name becomes a path segment (lock files) and an
//! object key segment, so it must never be able to escape its directory.

use crate::error::{Result, StoreError};

pub const MAX_NAME_LEN: usize = 64;

/// 1–64 characters of `[A-Za-z0-9._-]`, not starting with `.` or `-`, no
/// `..` anywhere.
pub fn validate_name(name: &str) -> Result<()> {
    let reason = if name.is_empty() {
        Some("it is empty")
    } else if name.len() > MAX_NAME_LEN {
        Some("it is longer than 64 characters")
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        Some(
            "it holds a character that is not allowed (such as '/', a space or a non-ASCII letter)",
        )
    } else if name.starts_with('.') || name.starts_with('-') {
        Some("it starts with '.' or '-'")
    } else if name.contains("..") {
        Some("it contains '..'")
    } else {
        None
    };
    match reason {
        None => Ok(()),
        Some(reason) => Err(StoreError::InvalidName {
            name: name.to_owned(),
            reason,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["a", "work", "my.site_2-x", "A", &"x".repeat(64)] {
            validate_name(ok).unwrap();
        }
        for bad in [
            "",
            ".",
            "..",
            ".hidden",
            "-flag",
            "a/b",
            "a\\b",
            "../x",
            "a..b",
            "a b",
            "é",
            &"x".repeat(65),
            "a\0b",
        ] {
            let e = validate_name(bad).unwrap_err();
            assert!(matches!(e, StoreError::InvalidName { .. }), "{bad}");
            assert!(e.to_string().contains("invalid session name"), "{e}");
        }
    }
}
