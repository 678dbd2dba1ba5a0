#![no_main]
//! Sub-decoder entry point: digital_link.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = bobbin_codes::decode_digital_link(data, &bobbin_codes::Gs1Config::default());
});
