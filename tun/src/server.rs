//! The VPN server (apps.md 3.1-3.4): listens on dmsg port 44, checks the passcode, gives each
//! client a /29 block and its own TUN device, and forwards its packets with NAT to the exit
//! interface.
//!
//! OS changes (all journalled and undone by [`ServerHandle::stop`], by dropping the handle, or
//! at the next start after a crash): `net.ipv4.ip_forward=1` and one nftables table `ip
//! skywire_vpn_server` (masquerade from the client TUNs out of the exit interface, and with
//! `secure` a drop of client traffic to private ranges). IPv6 is not tunnelled, so IPv6
//! forwarding is left alone (the reference turns it on for nothing).

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use skywire_cipher::PubKey;
use skywire_dmsg::{Client, DmsgStream, Listener};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::VpnError;
use crate::os::net::Net;
use crate::os::{Change, Journal, OsError, files, nft};
use crate::proto::{Allocator, ClientHello, SERVER_PORT, ServerHello, Status};
use crate::session::{self, Counters};

/// nftables table of the server.
pub const SERVER_TABLE: &str = "skywire_vpn_server";

/// Server configuration.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Required passcode; empty accepts everyone.
    pub passcode: String,
    /// Drop client traffic to private IPv4 ranges (reference default: true).
    pub secure: bool,
    /// Exit interface; `None` takes the only IPv4 default route's interface.
    pub netifc: Option<String>,
    /// Where the journal of applied changes lives.
    pub state_dir: PathBuf,
    /// dmsg port to listen on.
    pub port: u16,
    /// Client TUN devices are named `<prefix><n>`.
    pub tun_prefix: String,
    /// Hello read/write deadline.
    pub hello_timeout: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            passcode: String::new(),
            secure: true,
            netifc: None,
            state_dir: PathBuf::from("/run/skywire-vpn"),
            port: SERVER_PORT,
            tun_prefix: "vpns".into(),
            hello_timeout: Duration::from_secs(5),
        }
    }
}

/// Per-client status.
#[derive(Debug, Clone)]
pub struct ServerClient {
    /// The client's key.
    pub pk: PubKey,
    /// Its TUN address.
    pub tun_ip: Ipv4Addr,
    /// Server-side TUN device.
    pub dev: String,
    /// Counters.
    pub counters: Arc<Counters>,
}

#[derive(Debug)]
struct Shared {
    cfg: ServerConfig,
    alloc: Mutex<Allocator>,
    clients: Mutex<HashMap<u64, ServerClient>>,
}

/// The VPN server.
#[derive(Debug)]
pub struct VpnServer;

/// A running server. `stop()` (or dropping it) stops serving and reverts every OS change.
#[derive(Debug)]
pub struct ServerHandle {
    shared: Arc<Shared>,
    journal: Arc<tokio::sync::Mutex<Journal>>,
    cancel: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
    exit_ifc: String,
}

impl VpnServer {
    /// Applies the OS changes and starts serving on `dmsg`.
    pub async fn start(dmsg: Client, cfg: ServerConfig) -> Result<ServerHandle, VpnError> {
        let (mut journal, _) = Journal::open(&cfg.state_dir, "server").await?;
        let net = Net::new()?;
        let exit_ifc = match &cfg.netifc {
            Some(n) => {
                net.link_index(n)
                    .await?
                    .ok_or_else(|| OsError::NoSuchLink(n.clone()))?;
                n.clone()
            }
            None => {
                let defaults = net.default_routes().await?;
                let mut devs: Vec<String> = defaults.into_iter().filter_map(|r| r.dev).collect();
                devs.dedup();
                match devs.len() {
                    1 => devs.remove(0),
                    0 => return Err(OsError::NoDefaultRoute(String::new()).into()),
                    _ => {
                        return Err(OsError::NoDefaultRoute(format!(
                            ": several ({}), choose one with netifc",
                            devs.join(", ")
                        ))
                        .into());
                    }
                }
            }
        };
        let reserved = net.local_ipv4().await?;
        let listener = dmsg.listen(cfg.port)?;

        let old = files::read_sysctl("net/ipv4/ip_forward")?;
        let applied = async {
            journal
                .apply(Change::Sysctl {
                    key: "net/ipv4/ip_forward".into(),
                    old,
                    new: "1".into(),
                })
                .await?;
            journal
                .apply(Change::NftTable {
                    family: "ip".into(),
                    name: SERVER_TABLE.into(),
                    body: nft::server_table(&cfg.tun_prefix, &exit_ifc, cfg.secure),
                })
                .await
        }
        .await;
        if let Err(e) = applied {
            journal.revert_all().await;
            return Err(e.into());
        }
        tracing::info!(exit = %exit_ifc, secure = cfg.secure, port = cfg.port, "VPN server up");

        let shared = Arc::new(Shared {
            cfg,
            alloc: Mutex::new(Allocator::new(reserved)),
            clients: Mutex::new(HashMap::new()),
        });
        let cancel = CancellationToken::new();
        let task = tokio::spawn(accept_loop(listener, shared.clone(), cancel.clone()));
        Ok(ServerHandle {
            shared,
            journal: Arc::new(tokio::sync::Mutex::new(journal)),
            cancel,
            task: Some(task),
            exit_ifc,
        })
    }
}

impl ServerHandle {
    /// The exit interface NAT goes out of.
    pub fn exit_ifc(&self) -> &str {
        &self.exit_ifc
    }

    /// Connected clients.
    pub fn clients(&self) -> Vec<ServerClient> {
        self.shared
            .clients
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
    }

    /// Stops serving, closes every tunnel and reverts the OS changes.
    pub async fn stop(mut self) {
        self.cancel.cancel();
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
        self.journal.lock().await.revert_all().await;
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.cancel.cancel();
        if let Some(t) = self.task.take() {
            t.abort();
        }
        if let Ok(mut j) = self.journal.try_lock() {
            j.revert_all_blocking();
        }
    }
}

async fn accept_loop(mut listener: Listener, shared: Arc<Shared>, cancel: CancellationToken) {
    let mut tasks = JoinSet::new();
    let mut next_id = 0u64;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            s = listener.accept() => match s {
                Some(stream) => {
                    next_id += 1;
                    let id = next_id;
                    let shared = shared.clone();
                    tasks.spawn(async move {
                        let pk = stream.remote_addr().pk;
                        if let Err(e) = serve_client(id, stream, &shared).await {
                            tracing::info!(client = %pk, error = %error_chain(&e), "VPN client session ended");
                        }
                        shared.clients.lock().unwrap_or_else(PoisonError::into_inner).remove(&id);
                    });
                }
                None => break,
            },
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    tasks.shutdown().await;
}

/// Renders an error with its causes.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

async fn serve_client(id: u64, mut stream: DmsgStream, shared: &Shared) -> Result<(), VpnError> {
    let cfg = &shared.cfg;
    let pk = stream.remote_addr().pk;
    let (hello, leftover) =
        match session::read_hello::<ClientHello, _>(&mut stream, cfg.hello_timeout).await {
            Ok(v) => v,
            Err(e @ VpnError::Proto(_)) => {
                let w = ServerHello::Err(Status::BadRequest).to_wire();
                let _ = session::write_hello(&mut stream, &w, cfg.hello_timeout).await;
                return Err(e);
            }
            Err(e) => return Err(e),
        };
    let refuse = |s: Status| ServerHello::Err(s).to_wire();
    if !cfg.passcode.is_empty() && hello.passcode != cfg.passcode {
        session::write_hello(&mut stream, &refuse(Status::Forbidden), cfg.hello_timeout).await?;
        return Err(VpnError::Refused(Status::Forbidden));
    }
    let block = shared
        .alloc
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .allocate(&hello.unavailable_private_ips);
    let Some(block) = block else {
        session::write_hello(&mut stream, &refuse(Status::NoFreeIps), cfg.hello_timeout).await?;
        return Err(VpnError::Refused(Status::NoFreeIps));
    };
    let release = ReleaseBlock(shared, block);
    let dev_name = format!("{}{}", cfg.tun_prefix, id);
    let dev = match session::create_tun(&dev_name, block.server_ip(), block.client_ip()) {
        Ok(d) => Arc::new(d),
        Err(e) => {
            let _ = session::write_hello(
                &mut stream,
                &refuse(Status::InternalError),
                cfg.hello_timeout,
            )
            .await;
            return Err(e.into());
        }
    };
    let counters = Arc::new(Counters::default());
    shared
        .clients
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(
            id,
            ServerClient {
                pk,
                tun_ip: block.client_ip(),
                dev: dev_name.clone(),
                counters: counters.clone(),
            },
        );
    let ok = ServerHello::Ok {
        tun_ip: block.client_ip(),
        tun_gateway: block.client_gateway(),
    };
    session::write_hello(&mut stream, &ok.to_wire(), cfg.hello_timeout).await?;
    tracing::info!(client = %pk, ip = %block.client_ip(), dev = %dev_name, "VPN client connected");
    let r = session::pump(dev, stream, leftover, counters).await;
    drop(release);
    r
}

struct ReleaseBlock<'a>(&'a Shared, crate::proto::Block);

impl Drop for ReleaseBlock<'_> {
    fn drop(&mut self) {
        self.0
            .alloc
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .release(self.1);
    }
}
