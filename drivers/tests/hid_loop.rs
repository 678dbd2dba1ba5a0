//! The HID read loop driven by a scripted `ReportSource` (no USB bus here): readings,
//! device missing at start, a source error → status error → recovery, idle gaps.

mod common;

use std::collections::VecDeque;
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bobbin_drivers::config::{HidConfig, HidMode, WedgeTerminator};
use bobbin_drivers::hid::keymap::us_reports;
use bobbin_drivers::{
    spawn_hid_with, DeviceHandle, DeviceState, OpenError, Reading, RejectReason, ReportOpener,
    ReportSource, SourceError,
};
use common::{next_reading, wait_state, wait_until};
use tokio::sync::{mpsc, watch};

enum Step {
    Report(Vec<u8>),
    Error(&'static str),
}

struct Scripted(VecDeque<Step>);

impl ReportSource for Scripted {
    fn read_report(&mut self, buf: &mut [u8], timeout: Duration) -> Result<usize, SourceError> {
        match self.0.pop_front() {
            Some(Step::Report(r)) => {
                buf[..r.len()].copy_from_slice(&r);
                Ok(r.len())
            }
            Some(Step::Error(e)) => Err(SourceError(e.into())),
            None => {
                // Like a real device with nothing to say: wait out the timeout.
                std::thread::sleep(timeout);
                Ok(0)
            }
        }
    }
}

enum Open {
    Missing,
    Source(Vec<Step>),
    /// Blocks in `open` until the test sends on the channel, then returns the source.
    Gated(std_mpsc::Receiver<()>, Vec<Step>),
}

#[derive(Clone)]
struct Opener(Arc<Mutex<VecDeque<Open>>>);

impl Opener {
    fn new(script: Vec<Open>) -> Self {
        Opener(Arc::new(Mutex::new(script.into())))
    }
}

impl ReportOpener for Opener {
    fn open(&mut self) -> Result<Box<dyn ReportSource>, OpenError> {
        let next = self.0.lock().expect("script lock").pop_front();
        match next {
            Some(Open::Source(steps)) => Ok(Box::new(Scripted(steps.into()))),
            Some(Open::Gated(gate, steps)) => {
                let _ = gate.recv();
                Ok(Box::new(Scripted(steps.into())))
            }
            Some(Open::Missing) | None => Err(OpenError::Missing(
                "no HID device matching 0c2e:0b61".into(),
            )),
        }
    }

    fn describe(&self) -> String {
        "scripted".into()
    }
}

fn wedge_steps(text: &[u8], releases: bool) -> Vec<Step> {
    us_reports(text, releases)
        .expect("typable")
        .into_iter()
        .map(|r| Step::Report(r.to_vec()))
        .collect()
}

struct Rig {
    handle: DeviceHandle,
    rx: mpsc::Receiver<Reading>,
    stop: watch::Sender<bool>,
}

fn start(cfg: HidConfig, opener: Opener) -> Rig {
    cfg.validate().expect("valid");
    let (tx, rx) = mpsc::channel(8);
    let (stop, shutdown) = watch::channel(false);
    let handle = spawn_hid_with("hid-1".into(), cfg, opener, tx, shutdown);
    Rig { handle, rx, stop }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wedge_scans_after_device_appears() {
    let (gate_tx, gate_rx) = std_mpsc::channel();
    let mut steps = wedge_steps(b"ABC123\r", true);
    steps.extend(wedge_steps(b"]C10109501234567890\x1D10AB\r", false));
    let opener = Opener::new(vec![Open::Missing, Open::Gated(gate_rx, steps)]);
    let mut rig = start(HidConfig::with_ids(0x0c2e, 0x0b61), opener);
    wait_state(&rig.handle, DeviceState::Missing).await;
    assert!(rig
        .handle
        .status()
        .message
        .unwrap_or_default()
        .contains("0c2e:0b61"));
    gate_tx.send(()).expect("gate");
    let r = next_reading(&mut rig.rx).await;
    assert_eq!(
        (r.device.as_str(), r.bytes.as_slice(), r.hint),
        ("hid-1", &b"ABC123"[..], None)
    );
    assert_eq!(
        next_reading(&mut rig.rx).await.bytes,
        b"]C10109501234567890\x1D10AB"
    );
    let st = rig.handle.status();
    assert_eq!(
        (st.state, st.readings, st.connects),
        (DeviceState::Connected, 2, 1)
    );
    let _ = rig.stop.send(true);
    wait_until("task end", || rig.handle.is_finished()).await;
    assert_eq!(rig.handle.status().state, DeviceState::Stopped);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_error_sets_error_then_recovers() {
    let (gate_tx, gate_rx) = std_mpsc::channel();
    let mut first = wedge_steps(b"A1\r", true);
    first.push(Step::Error("unexpected poll error (device disconnected)"));
    let opener = Opener::new(vec![
        Open::Source(first),
        Open::Gated(gate_rx, wedge_steps(b"B2\r", true)),
    ]);
    let mut rig = start(HidConfig::with_ids(0x0c2e, 0x0b61), opener);
    assert_eq!(next_reading(&mut rig.rx).await.bytes, b"A1");
    wait_state(&rig.handle, DeviceState::Error).await;
    let msg = rig.handle.status().message.unwrap_or_default();
    assert!(msg.contains("device disconnected"), "{msg}");
    gate_tx.send(()).expect("gate");
    assert_eq!(next_reading(&mut rig.rx).await.bytes, b"B2");
    let st = rig.handle.status();
    assert_eq!(
        (st.state, st.connects, st.readings),
        (DeviceState::Connected, 2, 2)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wedge_without_terminator_ends_on_gap() {
    let mut cfg = HidConfig::with_ids(1, 2);
    cfg.wedge.terminator = WedgeTerminator::None;
    cfg.wedge.gap_ms = 60;
    let opener = Opener::new(vec![Open::Source(wedge_steps(b"XY-9", true))]);
    let mut rig = start(cfg, opener);
    assert_eq!(next_reading(&mut rig.rx).await.bytes, b"XY-9");
}

fn honeywell(aim: &[u8; 3], data: &[u8], code: u8, continued: bool) -> Vec<u8> {
    let mut r = vec![0u8; 64];
    r[0] = 2;
    r[1] = data.len() as u8;
    r[2..5].copy_from_slice(aim);
    r[5..5 + data.len()].copy_from_slice(data);
    r[61] = code;
    r[63] = continued as u8;
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hid_pos_reports_with_symbology_and_timeout() {
    let mut cfg = HidConfig::with_ids(0x0c2e, 0x0b87);
    cfg.mode = HidMode::Pos;
    cfg.pos.reassembly_timeout_ms = 100;
    let payload = b"https://id.example.com/01/09501234567890/21/ABC123456789012345678901234567890";
    let steps = vec![
        Step::Report(honeywell(b"]Q1", &payload[..56], b's', true)),
        Step::Report(honeywell(b"]Q1", &payload[56..], b's', false)),
        Step::Report(honeywell(b"]C1", b"0109501234567890\x1D10AB", b'I', false)),
        // A continued report whose continuation never comes: rejected after the timeout.
        Step::Report(honeywell(b"]Q1", &[b'x'; 56], b's', true)),
    ];
    let opener = Opener::new(vec![Open::Source(steps)]);
    let mut rig = start(cfg, opener);
    let r = next_reading(&mut rig.rx).await;
    assert_eq!(
        (r.bytes.as_slice(), r.hint.as_deref()),
        (&payload[..], Some("]Q1"))
    );
    let r = next_reading(&mut rig.rx).await;
    assert_eq!(
        (r.bytes.as_slice(), r.hint.as_deref()),
        (&b"0109501234567890\x1D10AB"[..], Some("]C1"))
    );
    wait_until("incomplete scan rejected", || {
        rig.handle.status().rejected_for(RejectReason::Incomplete) == 1
    })
    .await;
    assert_eq!(rig.handle.status().readings, 2);
}
