//! What a reader is willing to spend on one bundle (SPEC.md "Reader limits").
//!
//! The format's own caps (a 64 KiB header, 16 slots, 1 MiB chunks, Argon2id
//! m ≤ 1 GiB …) bound what any bundle may ask for; [`ReaderLimits`] lets a
//! reader ask for less, and bounds the one thing the format cannot: how much
//! plaintext a small file expands to (a manifest may list one chunk many
//! times). Every check runs before the reader allocates or derives anything
//! for the value it checks, and every refusal is an [`Error::Limit`] that
//! names the cap, the value seen and the option (and CLI flag) that raises it.

use crate::error::{Error, Result};
use crate::format::{MAX_HEADER_LEN, MAX_SLOTS};
use crate::keys::{Argon2Params, MAX_ARGON2_M_KIB, MAX_ARGON2_P, MAX_ARGON2_T};

/// Caps a reader applies to an untrusted bundle. `Default` gives the values
/// documented on each field; a service can lower them (e.g. refuse an upload
/// that asks for four 1 GiB Argon2 runs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReaderLimits {
    /// Largest plaintext of one record (its declared `len`). Default 256 MiB.
    /// Cost: a reader holds one whole record in memory while it decodes it
    /// (plus its decoded form, typically 1–3× the bytes).
    pub max_record: u64,
    /// Largest total plaintext of all records of a bundle (the sum of the
    /// declared `len`s; a chunk listed twice counts twice). Default 1 GiB.
    /// Cost: `read_state` holds the decoded state, about this much or more.
    pub max_total_plaintext: u64,
    /// Most chunk references in one record. Default 1 Mi (2^20). Cost: one
    /// chunk read (≤ 1 MiB decompressed, one segment decrypt) per reference.
    pub max_refs_per_record: u64,
    /// Most Argon2id memory a passphrase slot may ask for, KiB. Default
    /// 1,048,576 (1 GiB, the format's cap). Cost: that much RAM per try.
    pub max_argon2_m_kib: u32,
    /// Most Argon2id passes. Default 10 (the format's cap). Cost: time
    /// grows linearly with `m × t` (m = 64 MiB, t = 3 takes ~0.3 s here).
    pub max_argon2_t: u32,
    /// Most Argon2id lanes. Default 16 (the format's cap). Cost: threads.
    pub max_argon2_p: u32,
    /// Most passphrase slots tried (one Argon2id run each). Default 4.
    pub max_argon2_tries: usize,
    /// Most key slots tried of the cheap kinds (`key` with a matching id,
    /// `x25519`: two X25519 multiplications, ~70 µs measured here, each). Default 16.
    pub max_slot_tries: usize,
    /// Largest signature block read, detached `.sig` file or embedded
    /// trailer, bytes. Default 64 KiB (an embedded block is also capped at
    /// 4096 by the format). Cost: held in memory while parsing.
    pub max_sig_len: u64,
    /// Largest header (`header_len`). Default 65,536 (the format's cap).
    /// Cost: held in memory and parsed before any key is tried.
    pub max_header_len: u64,
}

impl Default for ReaderLimits {
    fn default() -> Self {
        ReaderLimits {
            max_record: 256 << 20,
            max_total_plaintext: 1 << 30,
            max_refs_per_record: 1 << 20,
            max_argon2_m_kib: MAX_ARGON2_M_KIB,
            max_argon2_t: MAX_ARGON2_T,
            max_argon2_p: MAX_ARGON2_P,
            max_argon2_tries: crate::format::MAX_ARGON2_TRIES,
            max_slot_tries: MAX_SLOTS,
            max_sig_len: 64 << 10,
            max_header_len: MAX_HEADER_LEN as u64,
        }
    }
}

/// Which cap refused a bundle: the option that raises it and its CLI flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Record,
    TotalPlaintext,
    RefsPerRecord,
    Argon2Memory,
    Argon2Time,
    Argon2Lanes,
    SignatureLen,
    HeaderLen,
}

impl Limit {
    /// `ReaderLimits::<field>`.
    pub fn option(self) -> &'static str {
        match self {
            Limit::Record => "ReaderLimits::max_record",
            Limit::TotalPlaintext => "ReaderLimits::max_total_plaintext",
            Limit::RefsPerRecord => "ReaderLimits::max_refs_per_record",
            Limit::Argon2Memory => "ReaderLimits::max_argon2_m_kib",
            Limit::Argon2Time => "ReaderLimits::max_argon2_t",
            Limit::Argon2Lanes => "ReaderLimits::max_argon2_p",
            Limit::SignatureLen => "ReaderLimits::max_sig_len",
            Limit::HeaderLen => "ReaderLimits::max_header_len",
        }
    }

    /// The `host` flag that raises it, where there is one.
    pub fn flag(self) -> Option<&'static str> {
        match self {
            Limit::Record => Some("--max-record"),
            Limit::TotalPlaintext => Some("--max-plaintext"),
            Limit::Argon2Memory => Some("--max-argon2-memory"),
            _ => None,
        }
    }

    /// How to raise it, for the error message.
    pub fn how_to_raise(self) -> &'static str {
        match self {
            Limit::Record => "raise it with `--max-record BYTES`",
            Limit::TotalPlaintext => "raise it with `--max-plaintext BYTES`",
            Limit::Argon2Memory => "raise it with `--max-argon2-memory KIB`",
            _ => "raise it in ReaderLimits",
        }
    }
}

pub(crate) fn refuse(limit: Limit, what: String, value: u64, cap: u64) -> Error {
    Error::Limit {
        limit,
        what,
        value,
        cap,
    }
}

impl ReaderLimits {
    /// Argon2id parameters against this reader's caps (the format's own
    /// caps are checked first by [`Argon2Params::check`]).
    pub(crate) fn check_argon2(&self, a: &Argon2Params) -> Result<()> {
        a.check()?;
        let over = |l, what: &str, v: u32, cap: u32| {
            Err(refuse(
                l,
                format!("a passphrase slot asks for Argon2id {what}"),
                v.into(),
                cap.into(),
            ))
        };
        if a.m_kib > self.max_argon2_m_kib {
            return over(
                Limit::Argon2Memory,
                "memory (KiB)",
                a.m_kib,
                self.max_argon2_m_kib,
            );
        }
        if a.t > self.max_argon2_t {
            return over(Limit::Argon2Time, "passes", a.t, self.max_argon2_t);
        }
        if a.p > self.max_argon2_p {
            return over(Limit::Argon2Lanes, "lanes", a.p, self.max_argon2_p);
        }
        Ok(())
    }

    /// The plaintext caps over a parsed manifest, before any chunk is read
    /// (and before [`crate::manifest::Manifest::validate`] allocates).
    pub(crate) fn check_manifest(&self, m: &crate::manifest::Manifest) -> Result<()> {
        let mut total = 0u64;
        for (n, r) in m.records.iter().enumerate() {
            let refs = r.chunks.len() as u64;
            if refs > self.max_refs_per_record {
                return Err(refuse(
                    Limit::RefsPerRecord,
                    format!("record {n} lists chunk references"),
                    refs,
                    self.max_refs_per_record,
                ));
            }
            if r.len > self.max_record {
                return Err(refuse(
                    Limit::Record,
                    format!("record {n} declares plaintext bytes"),
                    r.len,
                    self.max_record,
                ));
            }
            total = total.saturating_add(r.len);
            if total > self.max_total_plaintext {
                return Err(refuse(
                    Limit::TotalPlaintext,
                    format!("records 0..={n} declare plaintext bytes in total"),
                    total,
                    self.max_total_plaintext,
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_errors_name_cap_value_and_flag() {
        let e = refuse(
            Limit::TotalPlaintext,
            "records declare".into(),
            5 << 40,
            1 << 30,
        );
        let s = e.to_string();
        for needle in [
            "5497558138880",
            "1073741824",
            "ReaderLimits::max_total_plaintext",
            "--max-plaintext",
        ] {
            assert!(s.contains(needle), "{needle} missing in {s}");
        }
        assert!(e.is_limit() && !e.is_auth_failure());
        assert_eq!(e.outcome(), "limit_exceeded");
    }

    #[test]
    fn argon2_reader_caps_are_separate_from_the_format_caps() {
        let l = ReaderLimits {
            max_argon2_m_kib: 1024,
            ..Default::default()
        };
        let a = Argon2Params {
            m_kib: 2048,
            t: 1,
            p: 1,
        };
        assert!(ReaderLimits::default().check_argon2(&a).is_ok());
        let e = l.check_argon2(&a).unwrap_err();
        assert!(e.is_limit(), "{e}");
        assert!(e.to_string().contains("--max-argon2-memory"), "{e}");
    }
}
