//! `bobbin-receiver`: the reference receiver for Bobbin batches.

use anyhow::Context as _;
use bobbin_sync::receiver::{self, AgentRegistry, ReceiverConfig, Store};
use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// Reference receiver of Bobbin upload batches.
///
/// Accepts signed, gzip batches from Bobbin agents on POST /v1/batches, checks tokens,
/// Ed25519 signatures and every journal's hash chain, stores records in SQLite deduplicated
/// by (journal id, seq), keeps piece-rate claims unique by (trace code, process), and serves
/// GET /v1/trace/{code}, /v1/agents, /v1/conflicts and /v1/rejects to reader tokens.
/// The protocol is in sync/PROTOCOL.md and sync/openapi.yaml.
#[derive(Parser)]
#[command(name = "bobbin-receiver", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the receiver until SIGINT or SIGTERM.
    ///
    /// Prints `listening on ADDRESS` on standard output once the port is bound (with port 0
    /// the kernel picks one; scripts can read it from there).
    Serve {
        /// Address and port to listen on. Put TLS in front of it (a reverse proxy) for
        /// anything but loopback.
        #[arg(long, default_value = "127.0.0.1:8080", env = "BOBBIN_RECEIVER_LISTEN")]
        listen: String,
        /// SQLite database file (created if missing; WAL, synchronous=FULL).
        #[arg(long, env = "BOBBIN_RECEIVER_DB")]
        db: PathBuf,
        /// TOML file of agents and readers:
        /// [[agent]] id, token or token_sha256, public_key;
        /// [[reader]] name, token or token_sha256.
        #[arg(long, env = "BOBBIN_RECEIVER_AGENTS")]
        agents: PathBuf,
        /// Largest request body in bytes (gzip); larger gets 413 and the agent splits.
        #[arg(long, default_value_t = 16 << 20)]
        max_body_bytes: usize,
        /// Largest decompressed batch document in bytes.
        #[arg(long, default_value_t = 128 << 20)]
        max_document_bytes: usize,
        /// Most records per batch.
        #[arg(long, default_value_t = 100_000)]
        max_records: usize,
    },
    /// Print the SHA-256 of a token for the agents file's `token_sha256`.
    HashToken {
        /// The token (read from standard input when omitted, so it stays out of shell history).
        token: Option<String>,
    },
    /// Check an agents file and print how many agents it registers.
    CheckAgents {
        /// The agents file.
        agents: PathBuf,
    },
    /// Print the agents, their journals, highest sequences and gaps as JSON.
    Agents {
        /// SQLite database file.
        #[arg(long, env = "BOBBIN_RECEIVER_DB")]
        db: PathBuf,
    },
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Serve {
            listen,
            db,
            agents,
            max_body_bytes,
            max_document_bytes,
            max_records,
        } => {
            let registry = AgentRegistry::load(&agents)?;
            let mut config = ReceiverConfig::new(db, registry);
            config.max_body_bytes = max_body_bytes;
            config.max_document_bytes = max_document_bytes;
            config.max_records = max_records;
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("starting the runtime")?;
            rt.block_on(async move {
                // Installed before "listening" is printed, so a SIGTERM sent on seeing it
                // is a clean shutdown rather than the default kill.
                let shutdown = shutdown_signal()?;
                let listener = tokio::net::TcpListener::bind(&listen)
                    .await
                    .with_context(|| format!("binding {listen}"))?;
                let addr = listener.local_addr()?;
                println!("listening on {addr}");
                tracing::info!("bobbin-receiver listening on {addr}");
                receiver::serve_with_shutdown(listener, config, shutdown).await?;
                anyhow::Ok(())
            })
        }
        Command::HashToken { token } => {
            let token = match token {
                Some(t) => t,
                None => {
                    let mut line = String::new();
                    std::io::stdin()
                        .read_line(&mut line)
                        .context("reading the token")?;
                    line.trim().to_string()
                }
            };
            anyhow::ensure!(!token.is_empty(), "empty token");
            println!("{}", hex::encode(receiver::token_digest(&token)));
            Ok(())
        }
        Command::CheckAgents { agents } => {
            let reg = AgentRegistry::load(&agents)?;
            println!("{}: {} agents", agents.display(), reg.agent_count());
            Ok(())
        }
        Command::Agents { db } => {
            let store = Store::open(&db)?;
            println!("{}", serde_json::to_string_pretty(&store.agents()?)?);
            Ok(())
        }
    }
}

/// Installs the SIGTERM and SIGINT handlers now; the future resolves on either.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing SIGINT handler")?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        tracing::info!("shutting down");
    })
}
