//! The `skywire` binary: clap command tree and glue only. Every command delegates to a library
//! crate; this file owns argument parsing, logging setup, and turning errors into one message on
//! stderr plus a documented exit code (0 success, 1 failure, 2 usage error from clap).

mod config;
mod dmsg_curl;
mod dmsg_disc;
mod dmsg_http;
mod dmsg_server;
mod testnet;
mod util;

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

// Parsed once at start-up; boxing the large variants would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    /// Control and configure a visor (`skywire cli ...`).
    Cli {
        #[command(subcommand)]
        command: CliCommand,
    },
    /// dmsg network services and tools: discovery, relay server, dmsghttp client and server.
    Dmsg {
        #[command(subcommand)]
        command: DmsgCommand,
    },
    /// Run a whole dmsg network on this machine (discovery, relay servers, client nodes).
    Testnet(testnet::TestnetArgs),
}

#[derive(Debug, Subcommand)]
enum CliCommand {
    /// Generate keys and check configuration values.
    Config {
        #[command(subcommand)]
        command: config::ConfigCommand,
    },
}

#[derive(Debug, Subcommand)]
enum DmsgCommand {
    /// Run a dmsg discovery (entries of dmsg clients and servers, HTTP API on --addr).
    Disc(dmsg_disc::DiscArgs),
    /// Run a dmsg relay server from a JSON config, or generate one (`server config gen`).
    Server(dmsg_server::ServerArgs),
    /// Fetch a dmsghttp URL (`dmsg://<pk>[:<port>]/path`), like curl.
    Curl(dmsg_curl::CurlArgs),
    /// Serve HTTP over dmsg.
    Http {
        #[command(subcommand)]
        command: dmsg_http::HttpCommand,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Cli {
            command: CliCommand::Config { command },
        } => {
            init_tracing("warn");
            config::run(command)
        }
        Command::Dmsg { command } => match command {
            // The server takes its log level from its config file.
            DmsgCommand::Server(args) => dmsg_server::run(args, init_tracing),
            DmsgCommand::Disc(args) => {
                init_tracing("warn");
                dmsg_disc::run(args)
            }
            DmsgCommand::Curl(args) => {
                init_tracing("warn");
                dmsg_curl::run(args)
            }
            DmsgCommand::Http { command } => {
                init_tracing("warn");
                dmsg_http::run(command)
            }
        },
        Command::Testnet(args) => {
            init_tracing("warn");
            testnet::run(args)
        }
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

/// Logs go to stderr so that stdout stays machine-readable. `SKYWIRE_LOG` (any `tracing`
/// filter) overrides `default_level`.
fn init_tracing(default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SKYWIRE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}
