//! `bobbin`: parses the command line and hands off to the agent library.

use bobbin_agent::{cli::Cli, commands};
use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match commands::dispatch(cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}
