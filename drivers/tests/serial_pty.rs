//! Serial and RFID drivers end to end over pseudo-terminals, through the real
//! tokio-serial open/read/write path.

mod common;

use std::time::Duration;

use bobbin_drivers::config::{
    DeviceConfig, DeviceKind, FramingMode, RfidProtocol, RfidSerialConfig, SerialConfig, Terminator,
};
use bobbin_drivers::hex::{parse_hex, HexBytes};
use bobbin_drivers::{spawn_device, DeviceHandle, DeviceState, Feedback, Reading, RejectReason};
use common::{next_reading, wait_state, wait_until, Pty};
use tokio::sync::{mpsc, watch};

const TV_RF_01: &str = "BB 02 22 00 11 C9 34 00 30 75 1F EB 70 5C 59 04 E3 D5 0D 70 3A 76 EF 7E";
const M7: &str = "BB 02 22 00 11 C4 30 00 E2 00 00 1D 73 15 01 65 21 40 8F C6 B8 3E C2 7E";

struct Rig {
    handle: DeviceHandle,
    rx: mpsc::Receiver<Reading>,
    stop: watch::Sender<bool>,
}

fn start(id: &str, kind: DeviceKind, capacity: usize) -> Rig {
    let cfg = DeviceConfig {
        id: id.into(),
        kind,
    };
    cfg.validate().expect("valid config");
    let (tx, rx) = mpsc::channel(capacity);
    let (stop, shutdown) = watch::channel(false);
    let handle = spawn_device(cfg, tx, shutdown);
    Rig { handle, rx, stop }
}

fn serial(path: &std::path::Path, f: impl FnOnce(&mut SerialConfig)) -> DeviceKind {
    let mut c = SerialConfig::with_path(&path.to_string_lossy());
    f(&mut c);
    DeviceKind::Serial(c)
}

fn rfid(
    path: &std::path::Path,
    protocol: RfidProtocol,
    f: impl FnOnce(&mut RfidSerialConfig),
) -> DeviceKind {
    let mut c = RfidSerialConfig::with_path(&path.to_string_lossy(), protocol);
    f(&mut c);
    DeviceKind::RfidSerial(c)
}

#[tokio::test]
async fn cr_lf_scans() {
    let mut pty = Pty::open();
    let mut rig = start("s-crlf", serial(&pty.slave_path, |_| {}), 16);
    wait_state(&rig.handle, DeviceState::Connected).await;
    assert_eq!(
        rig.handle.status().port.as_deref(),
        Some(&*pty.slave_path.to_string_lossy())
    );
    pty.write(b"ABC123\r\nXY\r\n");
    let r = next_reading(&mut rig.rx).await;
    assert_eq!(
        (r.device.as_str(), r.bytes.as_slice(), r.hint.as_deref()),
        ("s-crlf", &b"ABC123"[..], None)
    );
    assert_eq!(next_reading(&mut rig.rx).await.bytes, b"XY");

    // CR-only terminator on a second port.
    let mut pty2 = Pty::open();
    let mut rig2 = start(
        "s-cr",
        serial(&pty2.slave_path, |c| c.framing.terminator = Terminator::Cr),
        16,
    );
    wait_state(&rig2.handle, DeviceState::Connected).await;
    pty2.write(b"ABC123\rXY\r");
    assert_eq!(next_reading(&mut rig2.rx).await.bytes, b"ABC123");
    assert_eq!(next_reading(&mut rig2.rx).await.bytes, b"XY");
    let st = rig.handle.status();
    assert_eq!((st.readings, st.rejected), (2, 0));
    assert!(st.last_reading_utc.is_some());
}

#[tokio::test]
async fn stx_etx_frames_with_garbage_between() {
    let mut pty = Pty::open();
    let mut rig = start(
        "s-stx",
        serial(&pty.slave_path, |c| c.framing.mode = FramingMode::StxEtx),
        16,
    );
    wait_state(&rig.handle, DeviceState::Connected).await;
    // SR-3: STX ]C101<GS>2 ETX CR, then noise, then another frame.
    pty.write(&[0x02, 0x5D, 0x43, 0x31, 0x30, 0x31, 0x1D, 0x32, 0x03, 0x0D]);
    pty.write(b"noise\xFF\x00");
    pty.write(b"\x02XY\x03\r\n");
    assert_eq!(next_reading(&mut rig.rx).await.bytes, b"]C101\x1D2");
    assert_eq!(next_reading(&mut rig.rx).await.bytes, b"XY");
    wait_until("one unframed reject", || {
        rig.handle.status().rejected_for(RejectReason::Unframed) == 1
    })
    .await;
    let st = rig.handle.status();
    assert_eq!(st.rejected, 1);
    let last = st.last_reject.expect("last reject kept");
    assert_eq!(last.bytes_hex, "6E 6F 69 73 65 FF 00");
}

#[tokio::test]
async fn oversized_frame_rejected_counted_and_next_frame_read() {
    let mut pty = Pty::open();
    let mut rig = start(
        "s-big",
        serial(&pty.slave_path, |c| c.framing.max_len = 64),
        16,
    );
    wait_state(&rig.handle, DeviceState::Connected).await;
    let mut big = vec![b'A'; 1000];
    big.extend_from_slice(b"\r\nGOOD-1\r\n");
    pty.write(&big);
    assert_eq!(next_reading(&mut rig.rx).await.bytes, b"GOOD-1");
    let st = rig.handle.status();
    assert_eq!(st.rejected_for(RejectReason::Oversize), 1);
    assert_eq!(st.readings, 1);
}

#[tokio::test]
async fn one_frame_split_over_many_small_writes() {
    let mut pty = Pty::open();
    let mut rig = start("s-split", serial(&pty.slave_path, |_| {}), 16);
    wait_state(&rig.handle, DeviceState::Connected).await;
    let frame = b"]C10109501234567890\x1D10AB\r\n";
    for chunk in frame.chunks(1) {
        pty.write(chunk);
        // Let the driver see each byte in its own read.
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert_eq!(
        next_reading(&mut rig.rx).await.bytes,
        b"]C10109501234567890\x1D10AB"
    );
    for chunk in b"XY".chunks(1).chain([&b"Z\r"[..]]) {
        pty.write(chunk);
    }
    assert_eq!(next_reading(&mut rig.rx).await.bytes, b"XYZ");
}

#[tokio::test]
async fn port_vanishes_and_comes_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let link = dir.path().join("scanner");
    let pty = Pty::open();
    std::os::unix::fs::symlink(&pty.slave_path, &link).expect("symlink");
    let mut rig = start("s-hotplug", serial(&link, |_| {}), 16);
    wait_state(&rig.handle, DeviceState::Connected).await;
    let mut pty = pty;
    pty.write(b"before\r");
    assert_eq!(next_reading(&mut rig.rx).await.bytes, b"before");

    // Unplug: the master closes and the by-id style link disappears.
    drop(pty);
    std::fs::remove_file(&link).expect("remove link");
    wait_state(&rig.handle, DeviceState::Missing).await;
    let st = rig.handle.status();
    assert!(
        st.message.as_deref().unwrap_or("").contains("not found"),
        "{:?}",
        st.message
    );
    assert_eq!(st.port, None);

    // Replug: a new pty behind the same link.
    let mut pty = Pty::open();
    std::os::unix::fs::symlink(&pty.slave_path, &link).expect("symlink again");
    wait_state(&rig.handle, DeviceState::Connected).await;
    pty.write(b"after\r");
    assert_eq!(next_reading(&mut rig.rx).await.bytes, b"after");
    let st = rig.handle.status();
    assert_eq!(st.connects, 2);
    assert_eq!(st.readings, 2);
}

#[tokio::test]
async fn missing_at_start_then_appears() {
    let dir = tempfile::tempdir().expect("tempdir");
    let link = dir.path().join("late");
    let mut rig = start("s-late", serial(&link, |_| {}), 16);
    wait_state(&rig.handle, DeviceState::Missing).await;
    let mut pty = Pty::open();
    std::os::unix::fs::symlink(&pty.slave_path, &link).expect("symlink");
    wait_state(&rig.handle, DeviceState::Connected).await;
    pty.write(b"hello\n");
    assert_eq!(next_reading(&mut rig.rx).await.bytes, b"hello");
}

#[tokio::test]
async fn usb_match_without_device_is_missing() {
    let mut c = SerialConfig::with_path("/dev/null");
    c.path = None;
    c.usb = Some("dead:beef".parse().expect("usb match"));
    let rig = start("s-usb", DeviceKind::Serial(c), 4);
    wait_state(&rig.handle, DeviceState::Missing).await;
    let msg = rig.handle.status().message.unwrap_or_default();
    assert!(msg.contains("dead:beef"), "{msg}");
}

#[tokio::test]
async fn m100_good_and_bad_checksum() {
    let mut pty = Pty::open();
    let mut rig = start(
        "r-m100",
        rfid(&pty.slave_path, RfidProtocol::M100, |_| {}),
        16,
    );
    wait_state(&rig.handle, DeviceState::Connected).await;
    let mut bad = parse_hex(TV_RF_01).expect("hex");
    bad[22] = 0xEE;
    pty.write(&bad);
    pty.write(&parse_hex("BB 01 FF 00 01 15 16 7E").expect("hex")); // "no tag": not a reading
    pty.write(&parse_hex(TV_RF_01).expect("hex"));
    let r = next_reading(&mut rig.rx).await;
    assert_eq!(r.bytes, parse_hex("30751FEB705C5904E3D50D70").expect("hex"));
    assert_eq!(r.hint.as_deref(), Some("epc"));
    let st = rig.handle.status();
    assert_eq!(st.rejected_for(RejectReason::Checksum), 1);
    assert_eq!(st.rejected, 1);
    assert!(st
        .last_reject
        .expect("kept")
        .detail
        .contains("expected EF, got EE"));
}

#[tokio::test]
async fn repeated_tag_reads_collapse() {
    let mut pty = Pty::open();
    let mut rig = start(
        "r-repeat",
        rfid(&pty.slave_path, RfidProtocol::M100, |_| {}),
        16,
    );
    wait_state(&rig.handle, DeviceState::Connected).await;
    let f1 = parse_hex(TV_RF_01).expect("hex");
    for _ in 0..10 {
        pty.write(&f1);
    }
    pty.write(&parse_hex(M7).expect("hex"));
    pty.write(&f1);
    assert_eq!(
        next_reading(&mut rig.rx).await.bytes,
        parse_hex("30751FEB705C5904E3D50D70").expect("hex")
    );
    // The next reading is the other tag: the nine repeats and the late repeat were collapsed.
    assert_eq!(
        next_reading(&mut rig.rx).await.bytes,
        parse_hex("E200001D7315016521408FC6").expect("hex")
    );
    // A third tag proves the stream is still flowing and nothing else was queued before it.
    let mut f3 = parse_hex(TV_RF_01).expect("hex");
    f3[19] = 0x71; // change the EPC, then fix both checks
    let crc = bobbin_drivers::rfid::m100::gen2_crc16(&f3[6..20]);
    f3[20..22].copy_from_slice(&crc.to_be_bytes());
    f3[22] = bobbin_drivers::rfid::m100::checksum(&f3[1..22]);
    pty.write(&f3);
    assert_eq!(next_reading(&mut rig.rx).await.bytes, f3[8..20].to_vec());
    assert_eq!(rig.handle.status().readings, 3);
}

#[tokio::test]
async fn ascii_rfid_reader() {
    let mut pty = Pty::open();
    let mut rig = start(
        "r-ascii",
        rfid(&pty.slave_path, RfidProtocol::Ascii, |_| {}),
        16,
    );
    wait_state(&rig.handle, DeviceState::Connected).await;
    pty.write(b"30751FEB705C5904E3D50D70\r\n30751FEB705C5904E3D50D70\r\nzz\r\nE200001D7315016521408FC6\r\n");
    let r = next_reading(&mut rig.rx).await;
    assert_eq!((r.bytes.len(), r.hint.as_deref()), (12, Some("epc")));
    assert_eq!(next_reading(&mut rig.rx).await.bytes[0], 0xE2);
    assert_eq!(rig.handle.status().rejected_for(RejectReason::BadHex), 1);
}

#[tokio::test]
async fn feedback_bytes_arrive_at_the_scanner() {
    let mut pty = Pty::open();
    let rig = start(
        "s-fb",
        serial(&pty.slave_path, |c| {
            c.feedback.good = Some(HexBytes(vec![0x07]));
            c.feedback.bad = Some(HexBytes(vec![0x1B, 0x07, 0x07]));
        }),
        16,
    );
    wait_state(&rig.handle, DeviceState::Connected).await;
    rig.handle.feedback(Feedback::Good);
    assert_eq!(pty.read_exact_within(1, common::DEADLINE).await, vec![0x07]);
    rig.handle.feedback(Feedback::Bad);
    assert_eq!(
        pty.read_exact_within(3, common::DEADLINE).await,
        vec![0x1B, 0x07, 0x07]
    );
}

#[tokio::test]
async fn rfid_start_command_is_sent_on_connect() {
    let mut pty = Pty::open();
    let cmd = parse_hex("BB 00 27 00 03 22 27 10 83 7E").expect("hex");
    let c = cmd.clone();
    let rig = start(
        "r-start",
        rfid(&pty.slave_path, RfidProtocol::M100, move |r| {
            r.start_command = Some(HexBytes(c))
        }),
        4,
    );
    wait_state(&rig.handle, DeviceState::Connected).await;
    assert_eq!(
        pty.read_exact_within(cmd.len(), common::DEADLINE).await,
        cmd
    );
}

#[tokio::test]
async fn back_pressure_loses_nothing_and_shutdown_stops() {
    let mut pty = Pty::open();
    let mut rig = start("s-bp", serial(&pty.slave_path, |_| {}), 1);
    wait_state(&rig.handle, DeviceState::Connected).await;
    for i in 0..20 {
        pty.write(format!("scan-{i}\r").as_bytes());
    }
    for i in 0..20 {
        assert_eq!(
            next_reading(&mut rig.rx).await.bytes,
            format!("scan-{i}").into_bytes()
        );
    }
    let _ = rig.stop.send(true);
    wait_until("task to end", || rig.handle.is_finished()).await;
    assert_eq!(rig.handle.status().state, DeviceState::Stopped);
    rig.handle.join().await;
}
