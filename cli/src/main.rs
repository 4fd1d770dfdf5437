//! The `skywire` binary: clap command tree and glue only. Every command delegates to a library
//! crate; this file owns argument parsing, logging setup, and turning errors into one message on
//! stderr plus a documented exit code (0 success, 1 failure, 2 usage error from clap).

mod app_pty;
mod app_pty_http;
mod config;
mod dmsg_curl;
mod dmsg_disc;
mod dmsg_http;
mod dmsg_server;
mod gen_docs;
mod pty_client;
mod pty_fs;
mod pty_host;
mod resolver;
mod skynet;
mod skysocks;
mod testnet;
mod util;
mod visor;
mod vpn;

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
    /// Run the visor daemon (`-c skywire-config.json`): dmsg, pty host, apps, control API.
    Visor(visor::VisorArgs),
    /// Run a whole dmsg network on this machine (discovery, relay servers, client nodes).
    Testnet(testnet::TestnetArgs),
    /// Standalone apps (`skywire app pty dmsg|tcp|exec|http`).
    App {
        #[command(subcommand)]
        command: AppCommand,
    },
    /// Write man pages and shell completions for packaging (`--out DIR`).
    #[command(hide = true)]
    GenDocs(gen_docs::GenDocsArgs),
}

#[derive(Debug, Subcommand)]
enum AppCommand {
    /// The standalone pty host.
    Pty {
        #[command(subcommand)]
        command: AppPtyCommand,
    },
    /// SOCKS5 exit over dmsg port 3 (`--passcode`).
    Skysocks(skysocks::ServerArgs),
    /// Local SOCKS5 port (and `--http` CONNECT proxy) through a skysocks server (`--srv`).
    SkysocksClient(skysocks::ClientArgs),
    /// VPN exit (dmsg port 44): per-client TUN, NAT to the exit interface, `--secure`.
    VpnServer(vpn::ServerArgs),
    /// VPN client: all IPv4 through the server `--srv <pk>`, IPv6 blocked, `--killswitch`.
    VpnClient(vpn::ClientArgs),
}

#[derive(Debug, Subcommand)]
enum AppPtyCommand {
    /// Standalone pty host over dmsg (+ optional TCP); same as `skywire dmsg pty host`.
    Dmsg(pty_host::HostArgs),
    /// Standalone pty host over direct noise-XK TCP only (`--addr`; `dmsg pty host --no-dmsg`).
    Tcp(pty_host::AppTcpArgs),
    /// Client of a local pty host's control socket: interactive shell, `exec`, `whitelist`,
    /// `whitelist-add`, `whitelist-remove` (remote hosts need its proxy, not served by the Rust
    /// host yet).
    Exec(app_pty::AppExecArgs),
    /// Browser terminal (xterm.js over a WebSocket) on a local host's control socket. NO
    /// authentication: loopback by default.
    Http(app_pty_http::HttpArgs),
}

#[derive(Debug, Subcommand)]
enum CliCommand {
    /// Generate keys and check configuration values.
    Config {
        #[command(subcommand)]
        command: config::ConfigCommand,
    },
    /// Remote shells and commands (pty).
    Pty {
        #[command(subcommand)]
        command: CliPtyCommand,
    },
    /// Resolving SOCKS5 proxies for `.dmsg` (4445) and `.skynet` (4446): `up`, `down`, `status`.
    Resolver(resolver::ResolverArgs),
    /// Port forwarding: `start`, `status`, `stop` clients; `srv start|stop|status` the server.
    Skynet {
        #[command(subcommand)]
        command: skynet::SkynetCommand,
        /// Manage the forwards of the visor with this control API (`host:port`, `unix:/path`) instead
        /// of standalone processes.
        #[arg(long, global = true, env = "SKYWIRE_RPC", value_name = "ADDR")]
        rpc: Option<String>,
    },
    /// Drive a running visor: `info`, `pk`, `version`, `app ...`, `tp ...`, `shutdown`.
    Visor {
        #[command(subcommand)]
        command: visor::VisorCommand,
        #[command(flatten)]
        rpc: visor::RpcArgs,
    },
    /// Whole-host VPN through the visor: `start <pk>`, `stop`, `status`, `list`.
    Vpn {
        #[command(subcommand)]
        command: visor::VpnCommand,
        #[command(flatten)]
        rpc: visor::RpcArgs,
    },
    /// Local SOCKS5 proxy through a skysocks server via the visor: `start --pk`, `stop`, `status`.
    Proxy {
        #[command(subcommand)]
        command: visor::ProxyCommand,
        #[command(flatten)]
        rpc: visor::RpcArgs,
    },
    /// Alias of `cli pty shell` (`cli sshd --via tcp://<pk>@<ip>:<port>`).
    #[command(hide = true)]
    Sshd(pty_client::ShellArgs),
}

#[derive(Debug, Subcommand)]
enum CliPtyCommand {
    /// Run a TCP-only pty host (sshd equivalent): visor key, `--allow` whitelist, `--listen :2022`.
    Host(pty_host::CliHostArgs),
    /// Run one command on a host and exit with its exit code (`-- cmd args...`; 124 on timeout).
    Exec(pty_client::ExecArgs),
    /// Interactive shell on `<pk>@<ip>[:<port>]` (direct TCP) or `<pk>` (dmsg); `-- cmd` runs one
    /// command.
    Shell(pty_client::ShellArgs),
    /// Interactive shell on a host by public key (dmsg, `--via` TCP, or `--cliaddr` proxy).
    Start(pty_client::StartArgs),
    /// Mount a host's filesystem through FUSE over sftp (`fs mount`, `fs umount`).
    Fs {
        #[command(subcommand)]
        command: pty_fs::FsCommand,
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
    /// dmsgpty: the standalone pty host (`dmsg pty host`, `dmsg pty host confgen`).
    Pty {
        #[command(subcommand)]
        command: DmsgPtyCommand,
    },
}

#[derive(Debug, Subcommand)]
enum DmsgPtyCommand {
    /// Run a standalone pty host (dmsg port 22, optional TCP, control socket), or `confgen`.
    Host(pty_host::HostArgs),
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
        Command::Cli {
            command: CliCommand::Pty { command },
        } => {
            // fuser warns about the unmount it retries after we already unmounted.
            init_tracing("warn,fuser=error");
            match command {
                CliPtyCommand::Host(args) => pty_host::run_cli_host(args),
                CliPtyCommand::Exec(a) => pty_client::run(pty_client::PtyCommand::Exec(a)),
                CliPtyCommand::Shell(a) => pty_client::run(pty_client::PtyCommand::Shell(a)),
                CliPtyCommand::Start(a) => pty_client::run(pty_client::PtyCommand::Start(a)),
                CliPtyCommand::Fs { command } => pty_fs::run(command),
            }
        }
        Command::Visor(args) => visor::run_daemon(args, init_tracing),
        Command::Cli {
            command: CliCommand::Visor { command, rpc },
        } => {
            init_tracing("warn");
            visor::run_visor(command, rpc)
        }
        Command::Cli {
            command: CliCommand::Vpn { command, rpc },
        } => {
            init_tracing("warn");
            visor::run_vpn(command, rpc)
        }
        Command::Cli {
            command: CliCommand::Proxy { command, rpc },
        } => {
            init_tracing("warn");
            visor::run_proxy(command, rpc)
        }
        Command::Cli {
            command: CliCommand::Resolver(args),
        } => {
            init_tracing("warn");
            resolver::run(args)
        }
        Command::Cli {
            command: CliCommand::Skynet { command, rpc },
        } => {
            init_tracing("warn");
            match rpc {
                Some(rpc) => visor::run_skynet(command, &rpc),
                None => skynet::run(command),
            }
        }
        Command::App {
            command: AppCommand::Skysocks(args),
        } => {
            init_tracing("warn");
            skysocks::run_server(args)
        }
        Command::App {
            command: AppCommand::SkysocksClient(args),
        } => {
            init_tracing("warn");
            skysocks::run_client(args)
        }
        Command::Cli {
            command: CliCommand::Sshd(args),
        } => {
            init_tracing("warn");
            pty_client::run(pty_client::PtyCommand::Shell(args))
        }
        Command::App {
            command: AppCommand::Pty { command },
        } => {
            init_tracing("warn");
            match command {
                AppPtyCommand::Dmsg(args) => pty_host::run(args),
                AppPtyCommand::Tcp(args) => pty_host::run_app_tcp(args),
                AppPtyCommand::Exec(args) => app_pty::run(args),
                AppPtyCommand::Http(args) => app_pty_http::run(args),
            }
        }
        Command::App {
            command: AppCommand::VpnServer(args),
        } => {
            init_tracing("info");
            vpn::run_server(args)
        }
        Command::App {
            command: AppCommand::VpnClient(args),
        } => {
            init_tracing("info");
            vpn::run_client(args)
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
            DmsgCommand::Pty {
                command: DmsgPtyCommand::Host(args),
            } => {
                init_tracing("warn");
                pty_host::run(args)
            }
        },
        Command::Testnet(args) => {
            init_tracing("warn");
            testnet::run(args)
        }
        Command::GenDocs(args) => gen_docs::run(&args),
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
