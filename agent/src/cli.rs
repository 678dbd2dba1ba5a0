//! The `bobbin` command line: every subcommand and its help text.

use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// Bobbin: the garment-traceability edge agent of a sewing workshop.
///
/// It reads barcode and RFID scanners, keeps every record in a local hash-chained SQLite
/// journal (so the workshop works offline for days), and uploads batches to the central
/// platform. Run `bobbin run --config FILE` as the daemon; the other subcommands inspect
/// and maintain a workshop PC.
#[derive(Debug, Parser)]
#[command(name = "bobbin", version, about, long_about, max_term_width = 100)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the agent (the daemon): open the journal, start the device, station and upload
    /// tasks, and run until SIGTERM or SIGINT, which commit everything pending and stop.
    Run {
        /// The configuration file (see config.example.toml).
        #[arg(
            long,
            short,
            env = "BOBBIN_CONFIG",
            default_value = "/etc/bobbin/config.toml"
        )]
        config: PathBuf,
    },
    /// Check a configuration file and exit: 0 when valid; otherwise 1 and one line naming
    /// the key and the problem, e.g. `stations[2].devices[0]: no device named "scan-9"`.
    CheckConfig {
        /// The configuration file to check.
        #[arg(
            long,
            short,
            env = "BOBBIN_CONFIG",
            default_value = "/etc/bobbin/config.toml"
        )]
        config: PathBuf,
    },
    /// Recompute the journal's hash chain. Intact: exit 0 and one summary line per journal
    /// (id, records, last sequence). Otherwise exit 1, naming the first sequence number
    /// that was altered or is missing. Safe on a live journal.
    Verify {
        /// The journal file (e.g. /var/lib/bobbin/journal.db).
        #[arg(long)]
        db: PathBuf,
    },
    /// Print every record carrying a trace code, oldest first, one JSON object per line.
    Trace {
        /// The trace key as decoded (e.g. a DG trace code or `(01)…(21)…` for GS1).
        code: String,
        /// The journal file.
        #[arg(long)]
        db: PathBuf,
    },
    /// Copy a live journal with SQLite's online backup API; the copy passes `verify`. The
    /// copy is written to a temporary name and renamed, so OUT is never half-written.
    Backup {
        /// The journal file to copy.
        #[arg(long)]
        db: PathBuf,
        /// Where to write the copy.
        #[arg(long)]
        out: PathBuf,
    },
    /// Append synthetic records as fast as the journal takes them, printing each
    /// `committed SEQ HASH` line only after its commit (used by the crash tests; also a
    /// quick disk check on a new PC).
    #[command(hide = true)]
    StressAppend {
        /// The journal file (created if missing).
        #[arg(long)]
        db: PathBuf,
        /// How many records; 0 means until killed.
        #[arg(long, default_value_t = 0)]
        count: u64,
        /// Appends kept in flight at once.
        #[arg(long, default_value_t = 64)]
        in_flight: usize,
    },
}
