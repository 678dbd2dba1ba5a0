//! The one error type of the crate: every message says what is wrong, in words a
//! supervisor can act on ("check character mismatch: expected K, got 7").

use thiserror::Error;

/// Why an input could not be decoded (or a code could not be generated).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// Nothing left after trimming whitespace.
    #[error("empty input")]
    Empty,
    /// The input is longer than `max_len`; we refuse before doing any work.
    #[error("input too long: {len} bytes (limit {max})")]
    TooLong {
        /// Length received.
        len: usize,
        /// Configured limit.
        max: usize,
    },
    /// A text scan contained a byte that is not printable ASCII (or GS).
    #[error("byte 0x{byte:02X} at offset {offset} is not printable ASCII")]
    NonAscii {
        /// Offset of the byte in the (trimmed) input.
        offset: usize,
        /// The byte.
        byte: u8,
    },
    /// The symbology hint is neither an AIM identifier nor `epc`.
    #[error("unknown symbology hint {0:?} (expected an AIM identifier like \"]C1\" or \"epc\")")]
    UnknownHint(String),
    /// Input or hint starts with `]` but is not a well-formed AIM identifier.
    #[error("malformed AIM symbology identifier {0:?}")]
    BadAim(String),
    /// A well-formed AIM identifier whose payload we do not decode (e.g. EAN with add-on).
    #[error("symbology {0} is not supported")]
    UnsupportedSymbology(String),
    /// A symbology identifier followed by no data (`]C1` alone).
    #[error("no data after symbology identifier {0}")]
    EmptyAfterAim(String),
    /// The input matches none of the enabled schemes.
    #[error("unrecognised code: not a trace code, GS1 data, Digital Link, EPC or control code")]
    Unrecognised,
    /// ISO/IEC 7064 check character(s) do not match the body.
    #[error("check character mismatch: expected {expected}, got {got}")]
    CheckCharacter {
        /// Check character(s) computed from the body.
        expected: String,
        /// Check character(s) found in the input.
        got: String,
    },
    /// Wrong number of characters for a fixed-length thing.
    #[error("{what} has {got} characters, expected {expected}")]
    Length {
        /// What was measured ("trace code", "node", ...).
        what: &'static str,
        /// Required length.
        expected: usize,
        /// Length found.
        got: usize,
    },
    /// A character outside the allowed alphabet.
    #[error("invalid character {ch:?} at position {pos} of {what}")]
    Charset {
        /// What was being read.
        what: &'static str,
        /// 0-based position.
        pos: usize,
        /// The offending character.
        ch: char,
    },
    /// Not a real calendar date (or time).
    #[error("invalid date {value:?} in {what}: {reason}")]
    Date {
        /// Where the date was found ("trace code", "AI (17)").
        what: String,
        /// The digits as read.
        value: String,
        /// What is wrong with them.
        reason: &'static str,
    },
    /// Region field is not a GB/T 2260 administrative division code.
    #[error("invalid region code {value:?}: {reason}")]
    Region {
        /// The digits as read.
        value: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// The digits at this point are not a GS1 Application Identifier we know.
    #[error("unknown GS1 application identifier at {0:?}")]
    UnknownAi(String),
    /// An AI's value breaks its format (length, character set, date).
    #[error("AI ({ai}): {reason}")]
    AiValue {
        /// The AI.
        ai: String,
        /// What is wrong with the value.
        reason: String,
    },
    /// GS1 mod-10 check digit wrong (GTIN, SSCC, GLN, ...).
    #[error("AI ({ai}): check digit mismatch: expected {expected}, got {got}")]
    Gs1CheckDigit {
        /// The AI whose value carries the check digit.
        ai: String,
        /// Computed check digit.
        expected: char,
        /// Check digit found.
        got: char,
    },
    /// The same AI twice with different values.
    #[error("AI ({ai}) appears twice with different values")]
    DuplicateAi {
        /// The AI.
        ai: String,
    },
    /// Structure of a GS1 element string or bracketed string is wrong.
    #[error("GS1 syntax: {0}")]
    Gs1Syntax(String),
    /// A URL that is not a valid GS1 Digital Link URI.
    #[error("GS1 Digital Link: {0}")]
    DigitalLink(String),
    /// EPC binary or hex that cannot be decoded.
    #[error("EPC: {0}")]
    Epc(String),
    /// A control code whose prefix matched but whose value is wrong.
    #[error("control code: {0}")]
    Control(String),
    /// A bad argument to a generator function.
    #[error("invalid {name}: {reason}")]
    InvalidArgument {
        /// Argument name.
        name: &'static str,
        /// What is wrong.
        reason: String,
    },
}
