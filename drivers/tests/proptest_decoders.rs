//! Random frame and report bytes never panic the pure decoders, and a few round-trip
//! properties hold.

use std::time::{Duration, Instant};

use bobbin_drivers::config::{
    FramingConfig, FramingMode, IdleAction, PosConfig, PosLayout, Terminator, WedgeConfig,
    WedgeTerminator,
};
use bobbin_drivers::hid::keymap::us_reports;
use bobbin_drivers::hid::pos::PosDecoder;
use bobbin_drivers::hid::wedge::WedgeDecoder;
use bobbin_drivers::rfid::m100::{self, M100Item, M100Parser};
use bobbin_drivers::serial::framer::SerialFramer;
use bobbin_drivers::DecodeEvent;
use proptest::prelude::*;

fn framing() -> impl Strategy<Value = FramingConfig> {
    (
        prop_oneof![
            Just(FramingMode::Line),
            Just(FramingMode::StxEtx),
            Just(FramingMode::Fixed),
            Just(FramingMode::Idle)
        ],
        prop_oneof![
            Just(Terminator::Cr),
            Just(Terminator::Lf),
            Just(Terminator::Crlf),
            Just(Terminator::Any)
        ],
        1usize..64,
        prop::option::of(prop_oneof![
            Just(IdleAction::Emit),
            Just(IdleAction::Reject)
        ]),
    )
        .prop_map(|(mode, terminator, max_len, idle)| FramingConfig {
            mode,
            terminator,
            length: max_len.div_ceil(2),
            idle_gap_ms: 10,
            partial_on_idle: idle,
            max_len,
            ..FramingConfig::default()
        })
}

/// Random bytes biased towards the interesting ones (terminators, STX/ETX, BB/7E).
fn stream() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            4 => any::<u8>(),
            1 => prop::sample::select(vec![0x0D, 0x0A, 0x02, 0x03, 0xBB, 0x7E, 0x00]),
        ],
        0..600,
    )
}

fn data_len(ev: &[DecodeEvent]) -> usize {
    ev.iter()
        .map(|e| match e {
            DecodeEvent::Data { bytes, .. } => bytes.len(),
            _ => 0,
        })
        .sum()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn serial_framer_never_panics(cfg in framing(), bytes in stream(), cut in 1usize..50, idle_every in 1usize..20) {
        let max = cfg.max_len;
        let mut f = SerialFramer::new(cfg);
        let mut out = Vec::new();
        for (i, chunk) in bytes.chunks(cut).enumerate() {
            f.push_bytes(chunk, &mut out);
            if i % idle_every == 0 {
                f.idle(&mut out);
            }
        }
        f.idle(&mut out);
        prop_assert!(!f.pending());
        for e in &out {
            if let DecodeEvent::Data { bytes, .. } = e {
                prop_assert!(!bytes.is_empty() && bytes.len() <= max);
            }
        }
        prop_assert!(data_len(&out) <= bytes.len());
    }

    #[test]
    fn line_framer_round_trips(lines in prop::collection::vec(prop::collection::vec(0x20u8..0x7F, 1..40), 0..20), cut in 1usize..17) {
        let mut stream = Vec::new();
        for l in &lines {
            stream.extend_from_slice(l);
            stream.extend_from_slice(b"\r\n");
        }
        let mut f = SerialFramer::new(FramingConfig { terminator: Terminator::Crlf, ..FramingConfig::default() });
        let mut out = Vec::new();
        for c in stream.chunks(cut) {
            f.push_bytes(c, &mut out);
        }
        let got: Vec<Vec<u8>> = out.into_iter().map(|e| match e {
            DecodeEvent::Data { bytes, .. } => bytes,
            other => panic!("unexpected {other:?}"),
        }).collect();
        prop_assert_eq!(got, lines);
    }

    #[test]
    fn m100_parser_never_panics(bytes in stream(), max_len in 7usize..300, cut in 1usize..40) {
        let mut p = M100Parser::new(max_len);
        let mut out = Vec::new();
        for c in bytes.chunks(cut) {
            p.push(c, &mut out);
        }
        p.idle(&mut out);
        prop_assert!(!p.pending());
        for item in &out {
            if let M100Item::Frame(f) = item {
                let _ = f.tag(true);
                let _ = f.error_code();
            }
        }
        let _ = m100::check_frame(&bytes);
    }

    #[test]
    fn m100_frames_survive_noise(frames in prop::collection::vec((0u8..3, any::<u8>(), prop::collection::vec(any::<u8>(), 0..40)), 1..8),
                                 noise in prop::collection::vec(0u8..0xBB, 0..20)) {
        // Noise without 0xBB between valid frames: every frame is recovered intact.
        let mut stream = Vec::new();
        for (t, c, p) in &frames {
            stream.extend_from_slice(&noise);
            stream.extend(m100::encode(*t, *c, p));
        }
        let mut parser = M100Parser::new(1024);
        let mut out = Vec::new();
        parser.push(&stream, &mut out);
        let got: Vec<_> = out.iter().filter_map(|i| match i {
            M100Item::Frame(f) => Some((f.frame_type, f.command, f.params.clone())),
            _ => None,
        }).collect();
        prop_assert_eq!(got, frames);
    }

    #[test]
    fn wedge_decoder_never_panics(reports in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..20), 0..200),
                                  term in prop_oneof![Just(WedgeTerminator::Enter), Just(WedgeTerminator::Tab), Just(WedgeTerminator::None)],
                                  report_id in prop::option::of(0u8..4), max_len in 1usize..100) {
        let mut d = WedgeDecoder::new(WedgeConfig { terminator: term, report_id, max_len, ..WedgeConfig::default() });
        let mut out = Vec::new();
        for r in &reports {
            d.push_report(r, &mut out);
        }
        d.idle(&mut out);
        for e in &out {
            if let DecodeEvent::Data { bytes, .. } = e {
                prop_assert!(bytes.len() <= max_len);
            }
        }
    }

    #[test]
    fn wedge_types_any_printable_text(text in prop::collection::vec(0x20u8..0x7F, 1..60)) {
        let mut typed = text.clone();
        typed.push(b'\r');
        let reports = us_reports(&typed, true).expect("printable ASCII is typable");
        let mut d = WedgeDecoder::new(WedgeConfig::default());
        let mut out = Vec::new();
        for r in &reports {
            d.push_report(r, &mut out);
        }
        prop_assert_eq!(out, vec![DecodeEvent::data(text)]);
    }

    #[test]
    fn pos_decoder_never_panics(reports in prop::collection::vec(
                                    prop_oneof![
                                        prop::collection::vec(any::<u8>(), 0..80),
                                        (any::<u8>(), any::<[u8; 62]>(), any::<bool>()).prop_map(|(len, body, cont)| {
                                            let mut r = vec![2u8, len % 60];
                                            r.extend_from_slice(&body);
                                            r[63] = cont as u8;
                                            r
                                        }),
                                    ], 0..50),
                                layout in prop_oneof![Just(PosLayout::Honeywell), Just(PosLayout::Newland)],
                                max_len in 1usize..200, step_ms in 0u64..300) {
        let mut d = PosDecoder::new(PosConfig { layout, max_len, reassembly_timeout_ms: 100, ..PosConfig::default() });
        let t0 = Instant::now();
        let mut out = Vec::new();
        for (i, r) in reports.iter().enumerate() {
            d.push_report(r, t0 + Duration::from_millis(step_ms * i as u64), &mut out);
        }
        d.poll(t0 + Duration::from_secs(3600), &mut out);
        prop_assert!(!d.pending());
        for e in &out {
            if let DecodeEvent::Data { bytes, .. } = e {
                prop_assert!(bytes.len() <= max_len);
            }
        }
    }
}
