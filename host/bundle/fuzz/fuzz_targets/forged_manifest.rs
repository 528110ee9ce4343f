//! Bundles sealed with a known key around fuzzer-controlled manifest and
//! record bytes (see `sessbundle::fuzzing::forged_bundle`), so the fuzzer
//! gets past authentication. Must never panic, hang or allocate without bound.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| sessbundle::fuzzing::open_forged(data));
