#![no_main]
//! Sub-decoder entry point: gs1_element.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = bobbin_codes::gs1::parse_element_string(
        data,
        &bobbin_codes::Gs1Config::default().fnc1_substitutes,
    );
});
