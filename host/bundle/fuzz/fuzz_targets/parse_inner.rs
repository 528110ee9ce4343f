//! The parsers behind the MACs (a fuzzer cannot forge a tag, so these are
//! reached directly): header, manifest, signature block, record bodies,
//! state JSON. The first byte picks the parser.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else { return };
    sessbundle::fuzzing::parse(sel, rest);
});
