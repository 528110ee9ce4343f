//! Playwright storageState files into the interop reader, and what it
//! reads back out. Must never panic, hang or allocate without bound.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((s, _)) = sessbundle::interop::from_playwright_bytes(
        data,
        "f",
        0,
        &sessbundle::interop::InteropLimits::default(),
    ) {
        let _ = sessbundle::interop::to_playwright(&s);
        let _ = sessbundle::interop::to_cookies_txt(&s);
    }
    let _ = sessbundle::interop::detect(data);
});
