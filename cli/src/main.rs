//! The `skywire` binary: clap command tree and glue only. Every command delegates to a library
//! crate; this file owns argument parsing, logging setup, and turning errors into one message on
//! stderr plus a documented exit code (0 success, 1 failure, 2 usage error from clap).

mod config;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Skywire's networking toolkit: identities, dmsg relays, remote shells and filesystems, VPN and
/// proxies, all addressed by secp256k1 public keys.
#[derive(Debug, Parser)]
#[command(name = "skywire", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Control and configure a visor (`skywire cli ...`).
    Cli {
        #[command(subcommand)]
        command: CliCommand,
    },
}

#[derive(Debug, Subcommand)]
enum CliCommand {
    /// Generate keys and check configuration values.
    Config {
        #[command(subcommand)]
        command: config::ConfigCommand,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let result = match cli.command {
        Command::Cli {
            command: CliCommand::Config { command },
        } => config::run(command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // `{:#}` prints the whole cause chain on one line, once.
            eprintln!("Error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SKYWIRE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    // Logs go to stderr so that stdout stays machine-readable.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
