//! A real Mosquitto broker on a loopback port, for the MQTT tests and the MQTT benchmark.
//!
//! Standard library only: the drivers crate's tests include this file by path, because
//! depending on this crate from there would build a second copy of `bobbin-drivers`.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The mosquitto binary, if installed (PATH, then /usr/sbin).
pub fn mosquitto_bin() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin")])
        .map(|d| d.join("mosquitto"))
        .find(|p| p.is_file())
}

/// A Mosquitto broker on a loopback port, killed on drop.
pub struct Mosquitto {
    child: Child,
    /// Its port.
    pub port: u16,
}

impl Mosquitto {
    /// Starts Mosquitto on a free port with queue limits raised (as in
    /// `systemd/mosquitto-bobbin.conf`); None when it is not installed.
    pub fn start(dir: &Path) -> Option<Mosquitto> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        Mosquitto::start_on(dir, port)
    }

    /// As [`Mosquitto::start`], on a given port (to restart a broker where clients expect it).
    /// Persistence is off: a restarted broker has forgotten every client session.
    ///
    /// With `BOBBIN_REQUIRE_MOSQUITTO=1` (CI installs Mosquitto and sets it) a missing
    /// Mosquitto is a failure, so its tests cannot skip silently.
    pub fn start_on(dir: &Path, port: u16) -> Option<Mosquitto> {
        let Some(bin) = mosquitto_bin() else {
            assert!(
                std::env::var("BOBBIN_REQUIRE_MOSQUITTO").as_deref() != Ok("1"),
                "BOBBIN_REQUIRE_MOSQUITTO=1 but mosquitto is not installed"
            );
            return None;
        };
        let conf = dir.join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n\
                 max_queued_messages 1000000\nmax_inflight_messages 4000\n\
                 queue_qos0_messages true\nmax_packet_size 1048576\nlog_dest none\n"
            ),
        )
        .expect("write mosquitto.conf");
        let child = Command::new(bin)
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn mosquitto");
        let m = Mosquitto { child, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "mosquitto did not listen on {port} within 10 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(m)
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
