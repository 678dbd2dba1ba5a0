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
        #[command(flatten)]
        config: ConfigFile,
    },
    /// Run a whole workshop on this PC at accelerated speed: the agent, a simulated scanner
    /// (pseudo-terminal) per station, workers and bundle tickets, and a local reference
    /// receiver. Prints the supervisor page's URL. Needs nothing but this binary.
    Demo {
        /// Directory for the demo's config, journal and receiver database (emptied first).
        #[arg(long, default_value = "bobbin-demo")]
        dir: PathBuf,
        /// Port of the supervisor page.
        #[arg(long, default_value_t = 8088)]
        port: u16,
        /// Stop after this many seconds (default: run until Ctrl-C).
        #[arg(long)]
        duration: Option<u64>,
        /// Scans per second across the workshop.
        #[arg(long, default_value_t = 5.0)]
        rate: f64,
    },
    /// Check a configuration file and exit: 0 when valid; otherwise 1 and one line naming
    /// the key and the problem, e.g. `stations[2].devices[0]: no device named "scan-9"`.
    CheckConfig {
        #[command(flatten)]
        config: ConfigFile,
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
    /// Copy a live journal with SQLite's online backup API; the copy is verified. It is
    /// written to a temporary name and renamed, so no half-written backup ever exists.
    /// With --out-dir, the copy is named journal-<UTC time>.db and only the newest --keep
    /// are kept (what bobbin-backup.timer runs daily).
    Backup {
        /// The journal file to copy.
        #[arg(long)]
        db: PathBuf,
        /// Where to write the copy.
        #[arg(long, required_unless_present = "out_dir", conflicts_with = "out_dir")]
        out: Option<PathBuf>,
        /// A directory for timestamped, rotated copies.
        #[arg(long)]
        out_dir: Option<PathBuf>,
        /// How many copies to keep in --out-dir (the oldest are deleted).
        #[arg(long, default_value_t = 14, requires = "out_dir")]
        keep: usize,
    },
    /// Restore a journal from a backup (the agent must be stopped). The backup is verified,
    /// a journal already at --db is moved aside (never deleted), and the restored file starts
    /// a NEW journal id for new records, so records made after the backup on the lost disk
    /// can never collide with new ones (DESIGN invariant 3).
    Restore {
        /// The backup file.
        #[arg(long)]
        from: PathBuf,
        /// Where the journal goes (the agent's journal path).
        #[arg(long)]
        db: PathBuf,
    },
    /// Decode one scan as the agent would and print it as one JSON object:
    /// `{"scheme": …, "key": …, "fields": {…}}`. Exit 0 when it decodes; otherwise print
    /// `{"error": "…"}` and exit 1. Uses the `[codes]` section of --config when given.
    Decode {
        /// The scanned text, e.g. `]C1010950600013435210ABC` or a DG trace code.
        #[arg(required_unless_present = "hex", conflicts_with = "hex")]
        text: Option<String>,
        /// The raw bytes as hex instead (e.g. an EPC from an RFID reader, or GS1 with 1D).
        #[arg(long)]
        hex: Option<String>,
        /// A symbology hint: an AIM id such as `]C1`, or `epc` for binary EPC bytes.
        #[arg(long)]
        hint: Option<String>,
        /// Take decoding settings (trace layout, control prefixes) from this config file.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Print new, valid DG trace codes (DG-7.1.2), one per line; the random part comes from
    /// the operating system's CSPRNG and the check character is computed.
    GenCode {
        /// Trace node: the workshop id (8 upper-case letters or digits in the default layout).
        #[arg(long)]
        node: String,
        /// Region: GB/T 2260 division code (6 digits), e.g. 441900.
        #[arg(long)]
        region: String,
        /// Date as YYMMDD; default today (UTC).
        #[arg(long)]
        date: Option<String>,
        /// Attribute identifier (2 characters); default from the layout (`FZ`).
        #[arg(long)]
        attribute: Option<String>,
        /// How many codes.
        #[arg(long, default_value_t = 1)]
        count: usize,
        /// Take the trace layout from this config file.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Import master data from a CSV file into the journal database: all lines or none.
    /// Codes (badges, bundle tickets) are decoded as scans would be, and a bad line is named.
    /// Safe while the agent runs. Headers: workers `id,name,team,badge`; bundles
    /// `trace_code,order,style,colour,size,quantity`; processes `order,process,step`.
    /// The config gives the journal path and the decoding settings.
    Import {
        /// Which table the file fills.
        #[arg(value_enum)]
        kind: crate::masterdata::Kind,
        /// The CSV file (UTF-8, with the header line).
        file: PathBuf,
        #[command(flatten)]
        config: ConfigFile,
    },
    /// List serial ports (with USB VID/PID/serial where known) and HID devices (VID/PID,
    /// usage page, product), to help write the [[devices]] section of the config.
    Devices {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show the running agent's state as tables: stations (worker on duty, last scan,
    /// pieces today), devices, journal, upload backlog, disk. Reads the agent's status API
    /// at the config's [status] listen address (with its token when one is set).
    Status {
        #[command(flatten)]
        config: ConfigFile,
        /// Print the raw JSON instead.
        #[arg(long)]
        json: bool,
    },
    /// Show this agent's signing key: the public half to register at the platform. The key
    /// is created (mode 0600) at the path `[sync].key_file` names if it does not exist yet.
    Key {
        /// What to do with the key.
        #[command(subcommand)]
        action: KeyAction,
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

/// `bobbin key` actions.
#[derive(Debug, Subcommand)]
pub enum KeyAction {
    /// Print the public key (base64 and hex) and the key file's path (the config's
    /// [sync] section names the key file).
    Show {
        #[command(flatten)]
        config: ConfigFile,
    },
}

/// `--config`: the agent's configuration file, shared by every command that reads it.
#[derive(Debug, clap::Args)]
pub struct ConfigFile {
    /// The configuration file (see config.example.toml).
    #[arg(
        long = "config",
        short = 'c',
        value_name = "FILE",
        env = "BOBBIN_CONFIG",
        default_value = "/etc/bobbin/config.toml"
    )]
    pub path: PathBuf,
}
