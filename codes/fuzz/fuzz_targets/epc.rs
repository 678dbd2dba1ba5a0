#![no_main]
//! EPC binary and hex entry points.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = bobbin_codes::decode_epc(data);
    let _ = bobbin_codes::decode_epc_hex(data);
});
