#![no_main]
//! Sub-decoder entry point: trace.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = bobbin_codes::decode_trace(data, &bobbin_codes::TraceLayout::default());
});
