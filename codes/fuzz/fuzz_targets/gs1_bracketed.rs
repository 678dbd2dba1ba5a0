#![no_main]
//! Sub-decoder entry point: gs1_bracketed.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = bobbin_codes::gs1::parse_bracketed(data);
});
