//! Decodes per second per scheme through the single entry point `decode`.
//! Target: ≥ 1,000,000/s per core for DG codes and GS1 element strings.

use std::hint::black_box;

use bobbin_codes::{decode, DecodeConfig};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn bench(c: &mut Criterion) {
    let cfg = DecodeConfig::default();
    let cases: &[(&str, &[u8], Option<&str>)] = &[
        ("dg-trace", b"FZ44190001241015441900A7K9Q2Q", None),
        (
            "gs1-element-string",
            b"]C10109506000134352\x1d10ABC123\x1d2112345",
            None,
        ),
        (
            "gs1-bracketed",
            b"(01)09506000134352(10)ABC123(21)12345",
            None,
        ),
        (
            "digital-link",
            b"https://id.gs1.org/01/09520123456788/10/ABC1/21/12345?17=180426",
            None,
        ),
        ("epc-sgtin96-hex", b"3074257BF7194E4000001A85", None),
        (
            "epc-sgtin96-binary",
            &[
                0x30, 0x74, 0x25, 0x7B, 0xF7, 0x19, 0x4E, 0x40, 0x00, 0x00, 0x1A, 0x85,
            ],
            Some("epc"),
        ),
        ("control-badge", b"W:E1042", None),
    ];
    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Elements(1));
    for (name, input, hint) in cases {
        assert!(decode(input, *hint, &cfg).is_ok(), "{name}");
        g.bench_function(*name, |b| {
            b.iter(|| decode(black_box(input), black_box(*hint), &cfg))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
