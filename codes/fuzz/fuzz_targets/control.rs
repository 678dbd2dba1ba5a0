#![no_main]
//! Sub-decoder entry point: control.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = bobbin_codes::decode_control(data, &bobbin_codes::ControlCodes::default());
});
