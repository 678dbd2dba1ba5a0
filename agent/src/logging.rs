//! Log setup: `tracing` to stderr, filtered by `RUST_LOG` (or the config's default), as
//! plain lines or JSON.

use tracing_subscriber::EnvFilter;

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Human-readable lines.
    Plain,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Installs the global subscriber. `RUST_LOG`, when set, wins over `default_filter`.
pub fn init(format: Format, default_filter: &str) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(default_filter))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only for a terminal; journald and log files get plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    // A second init (tests, or `run` after a CLI pre-init) keeps the first subscriber.
    let _ = match format {
        Format::Plain => builder.try_init(),
        Format::Json => builder.json().flatten_event(true).try_init(),
    };
}
