//! Whole files into the reader: open with a key file, read everything, and
//! verify a signature. Must never panic, hang or allocate without bound.
#![no_main]

use std::io::Cursor;

use libfuzzer_sys::fuzz_target;
use sessbundle::{SymmetricKey, Unlock};

fuzz_target!(|data: &[u8]| {
    let key = Unlock::Key(SymmetricKey::from_bytes([7u8; 32]));
    if let Ok(mut r) = sessbundle::BundleReader::open(Cursor::new(data), &key) {
        let _ = r.read_state();
    }
    let _ = sessbundle::format::Layout::read(&mut Cursor::new(data));
});
