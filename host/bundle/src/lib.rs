//! `sessbundle`: the portable, encrypted, signed session format.
//!
//! This crate owns the bytes of a `.sessbundle` file (normative spec:
//! `format-spec/SPEC.md`) and the session state model they carry. It must
//! not touch a browser, an async runtime or wasm: a verifier in CI or a
//! second tool can depend on it alone.
//!
//! # Layout (follow the data)
//! - [`state`]: `SessionState`, the one typed model of a browser session
//!   (cookies, storage, IndexedDB with typed values, tabs, meta).
//! - [`records`]: split a state into per-site/origin/tab records and join
//!   them back; content-defined chunk bounds. Shared with the session store.
//! - [`keys`]: randomness, Argon2id and key-file slots, key file formats,
//!   [`keys::SlotSpec`] (whom a bundle is sealed for).
//! - [`recipient`]: X25519 identities and recipients (`x25519` slots).
//! - [`limits`]: [`ReaderLimits`], what a reader spends on one bundle.
//! - [`format`]: magic, version, the strict canonical header, header tag,
//!   and the on-disk layout (payload range, signature trailer).
//! - [`stream`]: the AES-256-GCM STREAM of 64 KiB segments.
//! - [`manifest`]: the authenticated chunk and record table.
//! - [`writer`] / [`reader`]: sealing and opening, one pass, bounded memory;
//!   [`BundleReader::open_verified`] verifies and reads through one handle.
//! - [`state_json`]: state JSON ⇄ bundle, streaming (`host seal`,
//!   `unseal`, `inspect`), with `import`'s record checks, on several
//!   threads through `par` (an ordered parallel map on std threads).
//! - [`sign`]: Ed25519 signatures, detached or embedded; verification
//!   against one or more trusted keys (SPEC.md §8.4).
//! - [`interop`]: Playwright `storageState` JSON (with its typed
//!   `SerializedValue`s) and Netscape cookies.txt, both ways, with warnings
//!   for what the other format cannot hold, within [`interop::InteropLimits`];
//!   [`interop::detect`] tells the formats apart; [`interop::dates`] is the
//!   workspace's one date module.
//! - [`rekey`]: add or remove key slots without re-encrypting the payload.
//! - [`atomic`]: temp file + fsync + rename + directory fsync for every file
//!   we write ([`atomic::write_atomic`], [`atomic::AtomicFile`]).
//! - [`error`]: the one public [`Error`]; each message says what to do next.

pub mod atomic;
pub mod error;
pub mod format;
#[doc(hidden)]
pub mod fuzzing;
pub mod interop;
pub mod keys;
pub mod limits;
pub mod manifest;
mod par;
pub mod reader;
pub mod recipient;
pub mod records;
pub mod rekey;
#[doc(hidden)]
pub mod sample;
pub mod sign;
pub mod state;
pub mod state_json;
pub mod stream;
pub mod writer;

#[cfg(test)]
mod vectors;

pub use error::{Error, Result};
pub use keys::{
    Argon2Params, Identity, Passphrase, PublicKey, Recipient, SigningKey, SlotSpec, SymmetricKey,
    ToSlotSpec, Unlock,
};
pub use limits::ReaderLimits;
pub use reader::{BundleReader, VerifiedSigner, unseal, unseal_with};
pub use state::SessionState;
pub use writer::{BundleWriter, SealOptions, SealSummary, seal, seal_with};
