//! Throughput of the pure decoders: frames/s through the serial framer, the HID wedge
//! decoder (reports → scans), the HID POS decoder and the M100 parser.

use std::time::Instant;

use bobbin_drivers::config::{FramingConfig, PosConfig, WedgeConfig};
use bobbin_drivers::hid::keymap::us_reports;
use bobbin_drivers::hid::pos::PosDecoder;
use bobbin_drivers::hid::wedge::WedgeDecoder;
use bobbin_drivers::rfid::m100::{self, M100Parser};
use bobbin_drivers::serial::framer::SerialFramer;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use std::hint::black_box;

const SCAN: &[u8] = b"]C10109501234567890\x1D10AB\x1D21X9";
const FRAMES: usize = 1000;

fn serial_framer(c: &mut Criterion) {
    let mut stream = Vec::new();
    for _ in 0..FRAMES {
        stream.extend_from_slice(SCAN);
        stream.extend_from_slice(b"\r\n");
    }
    let mut g = c.benchmark_group("serial_framer");
    g.throughput(Throughput::Elements(FRAMES as u64));
    g.bench_function("line_crlf_1000_frames_in_64B_reads", |b| {
        b.iter_batched(
            || {
                (
                    SerialFramer::new(FramingConfig::default()),
                    Vec::with_capacity(FRAMES),
                )
            },
            |(mut f, mut out)| {
                for chunk in stream.chunks(64) {
                    f.push_bytes(black_box(chunk), &mut out);
                }
                assert_eq!(out.len(), FRAMES);
                out
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn wedge(c: &mut Criterion) {
    let mut text = SCAN.to_vec();
    text.push(b'\r');
    let one = us_reports(&text, true).expect("typable");
    let reports: Vec<[u8; 8]> = (0..FRAMES).flat_map(|_| one.iter().copied()).collect();
    let mut g = c.benchmark_group("hid_wedge");
    g.throughput(Throughput::Elements(FRAMES as u64));
    g.bench_function(format!("1000_scans_of_{}_reports", one.len()), |b| {
        b.iter_batched(
            || {
                (
                    WedgeDecoder::new(WedgeConfig::default()),
                    Vec::with_capacity(FRAMES),
                )
            },
            |(mut d, mut out)| {
                for r in &reports {
                    d.push_report(black_box(r), &mut out);
                }
                assert_eq!(out.len(), FRAMES);
                out
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn pos(c: &mut Criterion) {
    let mut r = vec![0u8; 64];
    r[0] = 2;
    r[1] = SCAN.len() as u8;
    r[2..5].copy_from_slice(b"]C1");
    r[5..5 + SCAN.len()].copy_from_slice(SCAN);
    let mut g = c.benchmark_group("hid_pos");
    g.throughput(Throughput::Elements(FRAMES as u64));
    g.bench_function("1000_single_report_scans", |b| {
        b.iter_batched(
            || {
                (
                    PosDecoder::new(PosConfig::default()),
                    Vec::with_capacity(FRAMES),
                )
            },
            |(mut d, mut out)| {
                let now = Instant::now();
                for _ in 0..FRAMES {
                    d.push_report(black_box(&r), now, &mut out);
                }
                assert_eq!(out.len(), FRAMES);
                out
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn m100_parser(c: &mut Criterion) {
    let frame = m100::encode(
        2,
        0x22,
        &[
            0xC9, 0x34, 0x00, 0x30, 0x75, 0x1F, 0xEB, 0x70, 0x5C, 0x59, 0x04, 0xE3, 0xD5, 0x0D,
            0x70, 0x3A, 0x76,
        ],
    );
    let stream: Vec<u8> = (0..FRAMES).flat_map(|_| frame.iter().copied()).collect();
    let mut g = c.benchmark_group("m100");
    g.throughput(Throughput::Elements(FRAMES as u64));
    g.bench_function("1000_tag_notifications_in_64B_reads", |b| {
        b.iter_batched(
            || (M100Parser::new(1024), Vec::with_capacity(FRAMES)),
            |(mut p, mut out)| {
                for chunk in stream.chunks(64) {
                    p.push(black_box(chunk), &mut out);
                }
                assert_eq!(out.len(), FRAMES);
                out
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, serial_framer, wedge, pos, m100_parser);
criterion_main!(benches);
