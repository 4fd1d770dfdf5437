//! `skywire app vpn-server` and `skywire app vpn-client`: flags, the dmsg client (key from
//! `--sk`, discovery from `--disc`), the hosts kept outside the tunnel (discovery and every relay
//! listed by discovery), the status file, and the glue to [`skywire_vpn`]'s server and client.
//! Both run until SIGINT/SIGTERM and then revert every OS change before exiting.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{ArgAction, Args};
use serde::Serialize;
use skywire_cipher::{PubKey, SecKey};
use skywire_dmsg::disc::DiscClient;
use skywire_dmsg::{Client, ClientConfig};
use skywire_vpn::{VpnClient, VpnServer};

use crate::util::{DEFAULT_DISCOVERY, shutdown_signal};

/// Default state directory (journal of applied OS changes).
const DEFAULT_STATE_DIR: &str = "/run/skywire-vpn";

/// Flags shared by both sides: identity and dmsg.
#[derive(Debug, Clone, Args)]
pub struct DmsgOpts {
    /// Secret key (64 hex characters); a random key when unset.
    #[arg(
        long = "sk",
        env = "SKYWIRE_VPN_SK",
        hide_env_values = true,
        value_name = "HEX"
    )]
    pub sk: Option<SecKey>,
    /// dmsg discovery URL.
    #[arg(long = "disc", visible_alias = "dmsg-disc", default_value = DEFAULT_DISCOVERY, value_name = "URL")]
    pub disc: String,
    /// Number of dmsg servers to keep sessions with.
    #[arg(long = "sess", default_value_t = 1, value_name = "N")]
    pub sessions: usize,
    /// Directory of the journal of applied OS changes (reverted at the next start after a
    /// crash).
    #[arg(long, default_value = DEFAULT_STATE_DIR, value_name = "DIR")]
    pub state_dir: PathBuf,
    /// Write a JSON status (state, key, addresses, bytes in/out) to this file every second;
    /// default <state-dir>/<server|client>-status.json.
    #[arg(long, value_name = "FILE")]
    pub status_file: Option<PathBuf>,
}

/// `skywire app vpn-server`.
#[derive(Debug, Args)]
pub struct ServerArgs {
    #[command(flatten)]
    pub dmsg: DmsgOpts,
    /// Passcode clients must send (empty: anyone).
    #[arg(
        long,
        default_value = "",
        env = "SKYWIRE_VPN_PASSCODE",
        hide_env_values = true
    )]
    pub passcode: String,
    /// Drop client traffic to private IPv4 ranges (`--secure=false` to allow).
    #[arg(long, default_value_t = true, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub secure: bool,
    /// Exit interface for NAT (default: the interface of the only default route).
    #[arg(long, value_name = "IFACE")]
    pub netifc: Option<String>,
    /// dmsg port to listen on.
    #[arg(long, default_value_t = skywire_vpn::proto::SERVER_PORT, value_name = "PORT")]
    pub port: u16,
}

/// `skywire app vpn-client`.
#[derive(Debug, Args)]
pub struct ClientArgs {
    #[command(flatten)]
    pub dmsg: DmsgOpts,
    /// The VPN server's public key.
    #[arg(long, value_name = "PK")]
    pub srv: PubKey,
    /// The server's dmsg port.
    #[arg(long, default_value_t = skywire_vpn::proto::SERVER_PORT, value_name = "PORT")]
    pub srv_port: u16,
    /// Passcode for the server.
    #[arg(
        long,
        default_value = "",
        env = "SKYWIRE_VPN_PASSCODE",
        hide_env_values = true
    )]
    pub passcode: String,
    /// Block all traffic outside the tunnel while the client runs (also while reconnecting).
    #[arg(long)]
    pub killswitch: bool,
    /// DNS servers to use while connected (comma-separated; written to --resolv-conf and
    /// restored on exit). Queries go through the tunnel.
    #[arg(long, value_delimiter = ',', value_name = "IP,...")]
    pub dns: Vec<Ipv4Addr>,
    /// The resolv.conf rewritten by --dns.
    #[arg(long, default_value = "/etc/resolv.conf", value_name = "FILE")]
    pub resolv_conf: PathBuf,
    /// Let IPv6 bypass the tunnel (the reference's behaviour). By default IPv6 is blocked.
    #[arg(long)]
    pub allow_ipv6_leak: bool,
    /// Client TUN device name.
    #[arg(long, default_value = "vpnc0", value_name = "NAME")]
    pub tun: String,
    /// More hosts kept outside the tunnel (comma-separated IPv4), besides discovery and relays.
    #[arg(long, value_delimiter = ',', value_name = "IP,...")]
    pub direct: Vec<Ipv4Addr>,
}

/// Runs `skywire app vpn-server`.
pub fn run_server(args: ServerArgs) -> Result<()> {
    crate::util::block_on(server_async(args))?
}

/// Runs `skywire app vpn-client`.
pub fn run_client(args: ClientArgs) -> Result<()> {
    crate::util::block_on(client_async(args))?
}

async fn start_dmsg(o: &DmsgOpts) -> Result<(Client, DiscClient)> {
    let sk = o.sk.clone().unwrap_or_else(SecKey::generate);
    let disc =
        DiscClient::new(&o.disc).with_context(|| format!("invalid discovery URL {:?}", o.disc))?;
    let mut cfg = ClientConfig::new(sk, disc.clone());
    cfg.min_sessions = o.sessions.max(1);
    let client = Client::start(cfg);
    client
        .ready(Duration::from_secs(60))
        .await
        .context("reaching the dmsg network")?;
    Ok((client, disc))
}

async fn close_dmsg(client: &Client) {
    if tokio::time::timeout(Duration::from_secs(5), client.close())
        .await
        .is_err()
    {
        tracing::debug!("closing the dmsg client took too long");
    }
}

fn write_status<T: Serialize>(path: &Path, status: &T) {
    let tmp = path.with_extension("tmp");
    let res = serde_json::to_vec_pretty(status)
        .map_err(std::io::Error::other)
        .and_then(|b| std::fs::write(&tmp, b))
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = res {
        tracing::warn!(error = %e, file = %path.display(), "writing the status file");
    }
}

#[derive(Debug, Serialize)]
struct ServerStatus {
    state: &'static str,
    pk: String,
    exit_interface: String,
    clients: Vec<ServerClientStatus>,
}

#[derive(Debug, Serialize)]
struct ServerClientStatus {
    pk: String,
    tun_ip: Ipv4Addr,
    dev: String,
    bytes_in: u64,
    bytes_out: u64,
}

async fn server_async(args: ServerArgs) -> Result<()> {
    if args.port == 0 {
        bail!("--port must be 1..=65535");
    }
    let (dmsg, _) = start_dmsg(&args.dmsg).await?;
    let cfg = skywire_vpn::ServerConfig {
        passcode: args.passcode.clone(),
        secure: args.secure,
        netifc: args.netifc.clone(),
        state_dir: args.dmsg.state_dir.clone(),
        port: args.port,
        ..Default::default()
    };
    let handle = match VpnServer::start(dmsg.clone(), cfg).await {
        Ok(h) => h,
        Err(e) => {
            close_dmsg(&dmsg).await;
            return Err(e).context("starting the VPN server");
        }
    };
    let status_path = args
        .dmsg
        .status_file
        .clone()
        .unwrap_or_else(|| args.dmsg.state_dir.join("server-status.json"));
    let snapshot = |state| ServerStatus {
        state,
        pk: dmsg.pk().to_string(),
        exit_interface: handle.exit_ifc().to_string(),
        clients: handle
            .clients()
            .into_iter()
            .map(|c| {
                let (i, o) = c.counters.get();
                ServerClientStatus {
                    pk: c.pk.to_string(),
                    tun_ip: c.tun_ip,
                    dev: c.dev,
                    bytes_in: i,
                    bytes_out: o,
                }
            })
            .collect(),
    };
    eprintln!(
        "vpn-server {} listening on dmsg port {} (exit {})",
        dmsg.pk(),
        args.port,
        handle.exit_ifc()
    );
    let stop = shutdown_signal();
    tokio::pin!(stop);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = tick.tick() => write_status(&status_path, &snapshot("running")),
        }
    }
    write_status(&status_path, &snapshot("stopped"));
    handle.stop().await;
    close_dmsg(&dmsg).await;
    Ok(())
}

/// IPv4 addresses of `host:port`, `host` or a URL's host.
async fn resolve_v4(target: &str) -> Vec<Ipv4Addr> {
    let rest = target.split_once("://").map_or(target, |(_, r)| r);
    let hostport = rest.split('/').next().unwrap_or("");
    let with_port = if hostport
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        hostport.to_string()
    } else {
        format!("{hostport}:80")
    };
    match tokio::net::lookup_host(with_port).await {
        Ok(addrs) => addrs
            .filter_map(|a| match a.ip() {
                IpAddr::V4(ip) => Some(ip),
                IpAddr::V6(_) => None,
            })
            .collect(),
        Err(e) => {
            tracing::warn!(host = %hostport, error = %e, "cannot resolve infrastructure host");
            Vec::new()
        }
    }
}

async fn client_async(args: ClientArgs) -> Result<()> {
    let (dmsg, disc) = start_dmsg(&args.dmsg).await?;
    let mut direct = resolve_v4(&args.dmsg.disc).await;
    match disc.all_servers().await {
        Ok(entries) => {
            for e in entries {
                if let Some(s) = e.server {
                    direct.extend(resolve_v4(&s.address).await);
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "listing dmsg servers"),
    }
    direct.extend(args.direct.iter().copied());
    direct.sort();
    direct.dedup();
    let mut cfg = skywire_vpn::ClientConfig::new(args.srv);
    cfg.server_port = args.srv_port;
    cfg.passcode = args.passcode.clone();
    cfg.killswitch = args.killswitch;
    cfg.block_ipv6 = !args.allow_ipv6_leak;
    cfg.dns = args.dns.clone();
    cfg.resolv_conf = args.resolv_conf.clone();
    cfg.direct = direct;
    cfg.state_dir = args.dmsg.state_dir.clone();
    cfg.tun_name = args.tun.clone();
    let mut handle = match VpnClient::start(dmsg.clone(), cfg).await {
        Ok(h) => h,
        Err(e) => {
            close_dmsg(&dmsg).await;
            return Err(e).context("starting the VPN client");
        }
    };
    let status_path = args
        .dmsg
        .status_file
        .clone()
        .unwrap_or_else(|| args.dmsg.state_dir.join("client-status.json"));
    let stop = shutdown_signal();
    tokio::pin!(stop);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut last_state = String::new();
    let result = loop {
        tokio::select! {
            _ = &mut stop => break Ok(()),
            r = handle.finished() => break r.context("VPN client"),
            _ = tick.tick() => {
                let s = handle.status();
                if s.state != last_state {
                    eprintln!("vpn-client: {} {}", s.state, s.tun_ip.map(|i| i.to_string()).unwrap_or_default());
                    last_state = s.state.clone();
                }
                write_status(&status_path, &s);
            }
        }
    };
    let mut s = handle.status();
    s.state = "stopped".into();
    s.tun_ip = None;
    s.tun_gateway = None;
    handle.stop().await;
    write_status(&status_path, &s);
    close_dmsg(&dmsg).await;
    result
}
