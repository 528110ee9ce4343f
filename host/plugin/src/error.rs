//! The crate's one public error type. Every message says what failed and
//! what to do next; none contains a secret (config values are never
//! printed, only their keys) or anything the plugin printed (its
//! stdout/stderr is logged at debug level only, see `host`). Text a plugin
//! *returns* (a rejection reason, a storage error detail) is shown, capped
//! and with control characters escaped by [`untrusted`].

use std::path::PathBuf;

/// Everything that can go wrong loading or calling a plugin.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The plugin file could not be read.
    #[error("cannot read plugin {path}: {source}; check the path and its permissions")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The file does not start with the WebAssembly magic bytes `\0asm`:
    /// a text file, a script, a passphrase file given by mistake. Nothing
    /// of its content is shown (it may be a secret).
    #[error(
        "{path} is not a WebAssembly component (it does not start with the \\0asm magic bytes); give the path of a plugin's .wasm file, e.g. one built with `bash plugins/build.sh` (plugins/target/wasm32-wasip2/release/NAME.wasm)"
    )]
    NotWasm { path: PathBuf },

    /// The file is not a valid WebAssembly component.
    #[error(
        "{plugin} is not a valid WebAssembly component: {detail}; build it with `cargo build --target wasm32-wasip2` (core modules are not accepted)"
    )]
    Invalid { plugin: String, detail: String },

    /// The component implements another world or contract version.
    #[error(
        "{plugin} implements {found}, but {expected} was expected; use a plugin built for {expected} (this host supports sesshost:plugin@{supported})"
    )]
    WorldMismatch {
        plugin: String,
        found: String,
        expected: String,
        supported: String,
    },

    /// The component imports something this host does not provide.
    #[error(
        "{plugin} imports {import}, which this host does not provide; plugins may use only sesshost:plugin types and WASI 0.2 (filesystem, clocks, random, cli, wasi:http)"
    )]
    UnsupportedImport { plugin: String, import: String },

    /// The plugin's manifest requested a capability the operator did not
    /// grant.
    #[error("{plugin} asked for {request}; allow it with {flag}, or remove it from {manifest}")]
    Refused {
        plugin: String,
        request: String,
        flag: String,
        manifest: PathBuf,
    },

    /// The plugin tried to reach a host the operator did not allow.
    #[error(
        "{plugin} tried to connect to {target}, which is not allowed; allow it with --allow-host {allow}"
    )]
    HostDenied {
        plugin: String,
        target: String,
        allow: String,
    },

    /// The manifest's BLAKE3 pin does not match the wasm file.
    #[error(
        "{plugin} has BLAKE3 {actual} but its manifest {manifest} pins {pinned}: the file changed; rebuild it or update the pin if the change is trusted"
    )]
    PinMismatch {
        plugin: String,
        manifest: PathBuf,
        pinned: String,
        actual: String,
    },

    /// The manifest TOML is malformed.
    #[error("cannot parse plugin manifest {path}: {detail}; fix the file or remove it")]
    Manifest { path: PathBuf, detail: String },

    /// Operator configuration (grants, `--plugin-config`) is invalid.
    #[error("{0}")]
    Config(String),

    /// A `--plugin-config` value with `env:` or `file:` could not be
    /// resolved. Only the key is named, never the value.
    #[error("config key `{key}`: {detail}")]
    ConfigValue { key: String, detail: String },

    /// The plugin exceeded its wall-clock deadline.
    #[error(
        "{plugin} did not finish {call} within {deadline_ms} ms and was stopped; raise the deadline in the plugin's limits if it legitimately needs longer"
    )]
    Timeout {
        plugin: String,
        call: String,
        deadline_ms: u64,
    },

    /// The plugin tried to grow its memory beyond the cap.
    #[error(
        "{plugin} ran out of memory in {call} (cap {cap_mib} MiB per memory) and was stopped; raise memory_mib in its limits if the input is legitimately that large"
    )]
    OutOfMemory {
        plugin: String,
        call: String,
        cap_mib: u64,
    },

    /// The plugin trapped (panicked, hit `unreachable`, ...).
    #[error(
        "{plugin} crashed in {call}: {detail}; the instance was discarded, the host is unaffected; report this to the plugin's author"
    )]
    Trap {
        plugin: String,
        call: String,
        detail: String,
    },

    /// The plugin returned data the host cannot accept.
    #[error(
        "{plugin} returned a malformed result from {call}: {detail}; the result was discarded; report this to the plugin's author"
    )]
    Malformed {
        plugin: String,
        call: String,
        detail: String,
    },

    /// A sanitiser refused the export.
    #[error("{plugin} refused the export: {reason}")]
    Rejected { plugin: String, reason: String },

    /// A storage backend reported a typed error.
    #[error("{plugin}: {kind}: {detail}")]
    Storage {
        plugin: String,
        kind: StorageErrorKind,
        detail: String,
    },

    /// A cleanup strategy reported an error.
    #[error("{plugin} could not decide: {reason}")]
    Cleanup { plugin: String, reason: String },

    /// The engine could not be built (should not happen on a supported
    /// platform).
    #[error("cannot start the wasm engine: {0}; this is a bug or an unsupported platform")]
    Engine(String),

    /// Local I/O done by the host on the plugin's behalf (reading a blob to
    /// upload, writing a downloaded one).
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

/// The kind of a storage backend error (mirrors the WIT `storage-error`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageErrorKind {
    /// The key does not exist.
    NotFound,
    /// Credentials or permissions refused the operation: check them.
    Denied,
    /// The backend could not be reached: retry later.
    Unavailable,
    /// The configuration or request is invalid: fix the config.
    Invalid,
    /// Anything else.
    Other,
    /// A write's precondition did not hold (nothing was written).
    PreconditionFailed,
    /// A concurrent conditional write won (nothing was written): retry.
    Conflict,
    /// The write may or may not have happened: re-read to find out.
    UnknownOutcome,
    /// The plugin's contract version (0.1.0) has no such call.
    Unsupported,
}

impl std::fmt::Display for StorageErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            StorageErrorKind::NotFound => "not found",
            StorageErrorKind::Denied => "access denied",
            StorageErrorKind::Unavailable => "backend unavailable",
            StorageErrorKind::Invalid => "invalid request or configuration",
            StorageErrorKind::Other => "storage error",
            StorageErrorKind::PreconditionFailed => "precondition failed",
            StorageErrorKind::Conflict => "conflicting concurrent write",
            StorageErrorKind::UnknownOutcome => "outcome unknown (the write may have happened)",
            StorageErrorKind::Unsupported => "not supported by this plugin",
        })
    }
}

impl Error {
    /// The storage error kind, if this is a storage backend error.
    pub fn storage_kind(&self) -> Option<StorageErrorKind> {
        match self {
            Error::Storage { kind, .. } => Some(*kind),
            _ => None,
        }
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Bytes of plugin-returned text kept in an error (a rejection reason, a
/// storage error's detail); the rest is cut, so a plugin cannot fill a
/// terminal or a log with one error.
const UNTRUSTED_MAX: usize = 1024;

/// Plugin-controlled text made safe to show: at most [`UNTRUSTED_MAX`]
/// bytes, control characters (terminal escapes, newlines) escaped as
/// `\u{1b}`, so it cannot forge log lines or drive a terminal.
pub(crate) fn untrusted(s: &str) -> String {
    let mut out = String::with_capacity(s.len().min(UNTRUSTED_MAX) + 16);
    for (i, c) in s.char_indices() {
        if out.len() >= UNTRUSTED_MAX {
            out.push_str(&format!("… ({} more bytes)", s.len() - i));
            break;
        }
        if c.is_control() {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn untrusted_text_is_capped_and_escaped() {
        assert_eq!(untrusted("cannot read: x"), "cannot read: x");
        assert_eq!(untrusted("a\nb\u{1b}[31m"), "a\\u{a}b\\u{1b}[31m");
        let long = "é".repeat(2000);
        let cut = untrusted(&long);
        assert!(cut.len() < UNTRUSTED_MAX + 32, "{}", cut.len());
        assert!(
            cut.ends_with(&format!("… ({} more bytes)", 4000 - 1024)),
            "{cut}"
        );
    }
}
