//! Keyboard/Keypad page (0x07) usage → character, per keyboard layout.

use crate::config::KeyboardLayout;

/// Usage of Enter.
pub const ENTER: u8 = 0x28;
/// Usage of keypad Enter.
pub const KP_ENTER: u8 = 0x58;
/// Usage of Tab.
pub const TAB: u8 = 0x2B;
/// Usage reported in every slot on ErrorRollOver.
pub const ERROR_ROLLOVER: u8 = 0x01;

/// The digit of a keypad digit usage (0x59..0x61 = 1..9, 0x62 = 0), for Alt+numpad.
pub fn keypad_digit(usage: u8) -> Option<u8> {
    match usage {
        0x59..=0x61 => Some(usage - 0x58),
        0x62 => Some(0),
        _ => None,
    }
}

/// The byte a key produces under `layout`, with or without Shift; `None` for keys that
/// type nothing (arrows, F-keys, ...). Enter, Tab, Escape and Backspace give their ASCII
/// control codes. Keypad keys assume NumLock on (scanners send them for digits).
pub fn usage_to_byte(layout: KeyboardLayout, usage: u8, shift: bool) -> Option<u8> {
    match layout {
        KeyboardLayout::Us => us(usage, shift),
    }
}

fn us(usage: u8, shift: bool) -> Option<u8> {
    let pick = |plain: u8, shifted: u8| Some(if shift { shifted } else { plain });
    match usage {
        0x04..=0x1D => {
            let c = b'a' + (usage - 0x04);
            Some(if shift { c.to_ascii_uppercase() } else { c })
        }
        0x1E..=0x26 => {
            const SHIFTED: &[u8; 9] = b"!@#$%^&*(";
            let i = (usage - 0x1E) as usize;
            pick(b'1' + i as u8, SHIFTED[i])
        }
        0x27 => pick(b'0', b')'),
        0x28 | 0x58 => Some(b'\r'),
        0x29 => Some(0x1B),
        0x2A => Some(0x08),
        0x2B => Some(b'\t'),
        0x2C => Some(b' '),
        0x2D => pick(b'-', b'_'),
        0x2E => pick(b'=', b'+'),
        0x2F => pick(b'[', b'{'),
        0x30 => pick(b']', b'}'),
        // 0x32 is "Non-US # and ~"; US layouts map it like backslash.
        0x31 | 0x32 => pick(b'\\', b'|'),
        0x33 => pick(b';', b':'),
        0x34 => pick(b'\'', b'"'),
        0x35 => pick(b'`', b'~'),
        0x36 => pick(b',', b'<'),
        0x37 => pick(b'.', b'>'),
        0x38 => pick(b'/', b'?'),
        0x54 => Some(b'/'),
        0x55 => Some(b'*'),
        0x56 => Some(b'-'),
        0x57 => Some(b'+'),
        0x59..=0x61 => Some(b'1' + (usage - 0x59)),
        0x62 => Some(b'0'),
        0x63 => Some(b'.'),
        0x67 => Some(b'='),
        _ => None,
    }
}

/// The (modifier byte, usage) a US-layout scanner sends for `byte`: Left Shift (0x02) for
/// upper case and shifted symbols, Left Ctrl (0x01) for control codes (GS = Ctrl+]).
/// Used to script reports in tests and benchmarks; `None` for bytes a wedge cannot type.
pub fn us_key_for(byte: u8) -> Option<(u8, u8)> {
    if byte == b'\r' {
        return Some((0, ENTER));
    }
    for usage in 0x04..=0x38u8 {
        if us(usage, false) == Some(byte) {
            return Some((0, usage));
        }
        if us(usage, true) == Some(byte) {
            return Some((0x02, usage));
        }
    }
    // Control codes as Ctrl + the character 0x40 above them (Ctrl+] = GS).
    if byte < 0x20 {
        let c = (byte | 0x40).to_ascii_lowercase();
        for usage in 0x04..=0x38u8 {
            if us(usage, false) == Some(c) {
                return Some((0x01, usage));
            }
        }
    }
    None
}

/// Press reports (8-byte boot reports) typing `text` on a US layout, each followed by a
/// release report if `releases`. `None` if a byte cannot be typed.
pub fn us_reports(text: &[u8], releases: bool) -> Option<Vec<[u8; 8]>> {
    let mut out = Vec::with_capacity(text.len() * 2);
    for &b in text {
        let (m, u) = us_key_for(b)?;
        out.push([m, 0, u, 0, 0, 0, 0, 0]);
        if releases {
            out.push([0; 8]);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn us_table_spot_checks() {
        let l = KeyboardLayout::Us;
        assert_eq!(usage_to_byte(l, 0x04, false), Some(b'a'));
        assert_eq!(usage_to_byte(l, 0x1D, true), Some(b'Z'));
        assert_eq!(usage_to_byte(l, 0x1C, false), Some(b'y'));
        assert_eq!(usage_to_byte(l, 0x1E, true), Some(b'!'));
        assert_eq!(usage_to_byte(l, 0x27, false), Some(b'0'));
        assert_eq!(usage_to_byte(l, 0x2D, true), Some(b'_'));
        assert_eq!(usage_to_byte(l, 0x30, false), Some(b']'));
        assert_eq!(usage_to_byte(l, 0x38, true), Some(b'?'));
        assert_eq!(usage_to_byte(l, 0x62, false), Some(b'0'));
        assert_eq!(usage_to_byte(l, 0x51, false), None);
        assert_eq!(keypad_digit(0x62), Some(0));
        assert_eq!(keypad_digit(0x61), Some(9));
        assert_eq!(keypad_digit(0x1E), None);
    }

    #[test]
    fn reverse_map() {
        assert_eq!(us_key_for(b'A'), Some((0x02, 0x04)));
        assert_eq!(us_key_for(b'a'), Some((0x00, 0x04)));
        assert_eq!(us_key_for(b'!'), Some((0x02, 0x1E)));
        assert_eq!(us_key_for(0x1D), Some((0x01, 0x30)));
        assert_eq!(us_key_for(b'\r'), Some((0x00, ENTER)));
        assert_eq!(us_key_for(0x80), None);
        for b in 0x20..0x7Fu8 {
            let (m, u) = us_key_for(b).unwrap();
            assert_eq!(usage_to_byte(KeyboardLayout::Us, u, m & 0x02 != 0), Some(b));
        }
    }
}
