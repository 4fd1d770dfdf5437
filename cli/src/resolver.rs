//! `skywire cli resolver [status] | up | down` (apps.md 5.2): the resolving SOCKS5 proxies as
//! one detached standalone process (instance `resolver`, see `skynet.rs` for the state files):
//! `.dmsg` on `<bind>:4445` and `.skynet` on `<bind>:4446`. With both enabled 4445 chains to
//! 4446 (unless `--no-chain`), which chains to `--upstream` (e.g. a skysocks-client on 1080),
//! so one browser proxy entry covers `.dmsg`, `.skynet` and everything else.
//! `.skynet` names go over the direct noise-XK path for keys with a `--peer` entry and to the
//! key's forwarding service over dmsg otherwise.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use skywire_cipher::PubKey;
use skywire_proxy::net::parse_peer;
use skywire_proxy::{Dialer, Network, ResolverConfig, serve_resolver};

use crate::skynet::{Instance, StateOpts, WireOpts, detach, foreground, list, stop};
use crate::skysocks::DmsgOpts;

/// Instance name.
pub const NAME: &str = "resolver";

/// `skywire cli resolver`.
#[derive(Debug, Args)]
pub struct ResolverArgs {
    #[command(subcommand)]
    pub command: Option<ResolverCommand>,
    #[command(flatten)]
    pub state: StateOpts,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum ResolverCommand {
    /// Start the resolving proxies (detached).
    Up(UpArgs),
    /// Stop them.
    Down {
        #[command(flatten)]
        state: StateOpts,
    },
    /// Show them (also the default).
    Status {
        #[command(flatten)]
        state: StateOpts,
    },
}

/// `skywire cli resolver up`.
#[derive(Debug, Args)]
pub struct UpArgs {
    /// Only the `.dmsg` proxy.
    #[arg(long, conflicts_with = "skynet_only")]
    pub dmsg_only: bool,
    /// Only the `.skynet` proxy.
    #[arg(long)]
    pub skynet_only: bool,
    /// Upstream SOCKS5 for other names (e.g. a skysocks-client `127.0.0.1:1080`).
    #[arg(long, value_name = "ADDR")]
    pub upstream: Option<SocketAddr>,
    /// Address to bind the proxies on.
    #[arg(long, default_value = "127.0.0.1", value_name = "HOST")]
    pub bind: IpAddr,
    /// Do not chain the `.dmsg` proxy to the `.skynet` proxy.
    #[arg(long)]
    pub no_chain: bool,
    /// Port of the `.dmsg` proxy (0 picks one).
    #[arg(long, default_value_t = 4445, value_name = "PORT")]
    pub dmsg_port: u16,
    /// Port of the `.skynet` proxy (0 picks one).
    #[arg(long, default_value_t = 4446, value_name = "PORT")]
    pub skynet_port: u16,
    /// Direct-path address book entry `<pk>@<ip>:<port>` for `.skynet` (repeatable).
    #[arg(long = "peer", value_parser = parse_peer, value_name = "PK@IP:PORT")]
    pub peers: Vec<(PubKey, SocketAddr)>,
    #[command(flatten)]
    pub wire: WireOpts,
    #[command(flatten)]
    pub dmsg: DmsgOpts,
    #[command(flatten)]
    pub state: StateOpts,
    /// Run in this process instead of detaching.
    #[arg(long)]
    pub foreground: bool,
}

/// Runs `skywire cli resolver ...`.
pub fn run(args: ResolverArgs) -> Result<()> {
    match args.command {
        None => status(&args.state),
        Some(ResolverCommand::Status { state }) => status(&state),
        Some(ResolverCommand::Down { state }) => {
            let dir = state.dir()?;
            let Some(i) = list(&dir, NAME).into_iter().find(|i| i.name == NAME) else {
                bail!("the resolver is not running");
            };
            stop(&dir, &i)?;
            println!("resolver stopped");
            Ok(())
        }
        Some(ResolverCommand::Up(a)) => {
            let dir = a.state.dir()?;
            if let Some(i) = list(&dir, NAME).into_iter().find(|i| i.name == NAME) {
                bail!("the resolver is already running (pid {})", i.pid);
            }
            if a.foreground {
                crate::util::block_on(up_fg(a, dir))?
            } else {
                let inst = detach(&dir, NAME)?;
                println!("resolver up (pid {}): {}", inst.pid, inst.detail);
                Ok(())
            }
        }
    }
}

fn status(state: &StateOpts) -> Result<()> {
    let dir = state.dir()?;
    match list(&dir, NAME).into_iter().find(|i| i.name == NAME) {
        Some(i) => {
            println!("resolver running (pid {})", i.pid);
            for (k, v) in &i.addrs {
                println!("  {k:<9} {v}");
            }
        }
        None => println!("resolver not running"),
    }
    Ok(())
}

async fn up_fg(mut a: UpArgs, dir: PathBuf) -> Result<()> {
    let want_dmsg = !a.skynet_only;
    let want_skynet = !a.dmsg_only;
    let dmsg_l = if want_dmsg {
        Some(
            tokio::net::TcpListener::bind((a.bind, a.dmsg_port))
                .await
                .with_context(|| format!("listening on {}:{}", a.bind, a.dmsg_port))?,
        )
    } else {
        None
    };
    let skynet_l = if want_skynet {
        Some(
            tokio::net::TcpListener::bind((a.bind, a.skynet_port))
                .await
                .with_context(|| format!("listening on {}:{}", a.bind, a.skynet_port))?,
        )
    } else {
        None
    };
    let book: HashMap<PubKey, SocketAddr> = a.peers.iter().copied().collect();
    // A dmsg client is needed for .dmsg, and for .skynet keys without a direct address.
    let client = if want_dmsg || want_skynet {
        Some(a.dmsg.client().await?)
    } else {
        None
    };
    let timeout = Duration::from_secs(30);
    let mk = |network| Dialer {
        variant: a.wire.handshake,
        forward_port: a
            .wire
            .forward_port
            .unwrap_or(a.wire.handshake.default_port()),
        timeout,
        ..Dialer::new(network)
    };
    let mut addrs = BTreeMap::new();
    let mut tasks = tokio::task::JoinSet::new();
    let skynet_addr = match &skynet_l {
        Some(l) => Some(l.local_addr()?),
        None => None,
    };
    if let Some(l) = skynet_l {
        addrs.insert("skynet".to_owned(), l.local_addr()?.to_string());
        tasks.spawn(serve_resolver(
            l,
            ResolverConfig {
                dmsg: None,
                skynet: Some(mk(Network::Direct {
                    sk: a.dmsg.secret(),
                    book: book.clone(),
                    fallback: client.clone(),
                })),
                upstream: a.upstream,
                timeout,
            },
        ));
    }
    if let Some(l) = dmsg_l {
        addrs.insert("dmsg".to_owned(), l.local_addr()?.to_string());
        let upstream = match (skynet_addr, a.no_chain) {
            (Some(s), false) => Some(crate::util::dialable(s)),
            _ => a.upstream,
        };
        tasks.spawn(serve_resolver(
            l,
            ResolverConfig {
                dmsg: client.clone().map(|c| mk(Network::Dmsg(c))),
                skynet: None,
                upstream,
                timeout,
            },
        ));
    }
    if let Some(u) = a.upstream {
        addrs.insert("upstream".to_owned(), u.to_string());
    }
    let inst = Instance {
        name: NAME.to_owned(),
        pid: std::process::id(),
        pk: a.dmsg.secret().pub_key(),
        detail: addrs
            .iter()
            .map(|(k, v)| format!("{k} socks5://{v}"))
            .collect::<Vec<_>>()
            .join(" "),
        addrs,
    };
    let r = foreground(&dir, inst, async {
        tasks.join_next().await;
        bail!("a resolver listener stopped")
    })
    .await;
    if let Some(c) = client {
        let _ = tokio::time::timeout(Duration::from_secs(5), c.close()).await;
    }
    r
}
