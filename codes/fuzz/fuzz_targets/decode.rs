#![no_main]
//! The single entry point, with each kind of hint chosen by the first byte.
use bobbin_codes::{decode, DecodeConfig};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let cfg = DecodeConfig::default();
    let (hint, rest) = match data.split_first() {
        Some((h, rest)) => (
            match h % 6 {
                0 => Some("]C1"),
                1 => Some("]Q1"),
                2 => Some("epc"),
                3 => Some("]E0"),
                _ => None,
            },
            rest,
        ),
        None => (None, data),
    };
    if let Ok(d) = decode(rest, hint, &cfg) {
        // A successful decode always has a key and serializes.
        assert!(!d.key.is_empty() || d.scheme == bobbin_codes::Scheme::Logout);
        assert!(serde_json::to_string(&d).is_ok());
    }
});
