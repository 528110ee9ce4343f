//! Playwright `SerializedValue` JSON (IndexedDB `valueEncoded`) through the
//! decoder and the encoder. Must never panic or allocate past the limits.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| sessbundle::fuzzing::serialized(data));
