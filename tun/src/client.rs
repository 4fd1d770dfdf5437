//! The VPN client (apps.md 3.1-3.3, 3.5) with the fixes the reference lacks: IPv6 is blocked
//! (no leak), the kill switch is an nftables table that holds for as long as the client runs
//! (also between reconnects, when no TUN exists), a broken session is redialled with
//! exponential backoff forever, and every change is undone on exit or at the next start.
//!
//! OS changes, all journalled: /32 routes to the relay and discovery hosts via the current
//! route (kept outside the tunnel), the table `inet skywire_vpn_client` (IPv6 block and kill
//! switch), resolv.conf when DNS servers are given, and per session a TUN device with
//! `0.0.0.0/1` and `128.0.0.0/1` via the tunnel gateway.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use skywire_cipher::PubKey;
use skywire_dmsg::{Addr, Client};
use tokio::sync::{Mutex, watch};
use tokio_util::sync::CancellationToken;

use crate::VpnError;
use crate::os::files::{self, RouteSpec};
use crate::os::net::Net;
use crate::os::{Change, Journal, nft};
use crate::proto::{ClientHello, SERVER_PORT, ServerHello, ServerHelloWire, Status};
use crate::server::error_chain;
use crate::session::{self, Counters};

/// nftables table of the client.
pub const CLIENT_TABLE: &str = "skywire_vpn_client";

/// Client configuration.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The VPN server's key.
    pub server: PubKey,
    /// The server's dmsg port.
    pub server_port: u16,
    /// Passcode sent in the hello.
    pub passcode: String,
    /// Block all IPv4 traffic that does not go through the tunnel (or to `direct` hosts) while
    /// the client runs, including while it reconnects.
    pub killswitch: bool,
    /// Block IPv6 (it is not tunnelled). Turning this off leaks IPv6, as the reference does.
    pub block_ipv6: bool,
    /// DNS servers to use while connected (written to `resolv_conf`); empty leaves DNS alone.
    pub dns: Vec<Ipv4Addr>,
    /// The resolv.conf to rewrite in place.
    pub resolv_conf: PathBuf,
    /// Hosts that must stay reachable outside the tunnel (dmsg relays, discovery).
    pub direct: Vec<Ipv4Addr>,
    /// Where the journal lives.
    pub state_dir: PathBuf,
    /// Client TUN device name.
    pub tun_name: String,
    /// Hello and dial deadlines.
    pub hello_timeout: Duration,
    /// Dial deadline.
    pub dial_timeout: Duration,
    /// First reconnect delay (doubles up to `backoff_max`; reset after a session of 30 s).
    pub backoff_initial: Duration,
    /// Largest reconnect delay.
    pub backoff_max: Duration,
}

impl ClientConfig {
    /// Defaults for a server key.
    pub fn new(server: PubKey) -> ClientConfig {
        ClientConfig {
            server,
            server_port: SERVER_PORT,
            passcode: String::new(),
            killswitch: false,
            block_ipv6: true,
            dns: Vec::new(),
            resolv_conf: PathBuf::from("/etc/resolv.conf"),
            direct: Vec::new(),
            state_dir: PathBuf::from("/run/skywire-vpn"),
            tun_name: "vpnc0".into(),
            hello_timeout: Duration::from_secs(5),
            dial_timeout: Duration::from_secs(20),
            backoff_initial: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
        }
    }
}

/// What the client is doing, for status displays.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ClientStatus {
    /// `connecting`, `connected`, `reconnecting`, `failed` or `stopped`.
    pub state: String,
    /// Server key.
    pub server: String,
    /// Assigned TUN address while connected.
    pub tun_ip: Option<Ipv4Addr>,
    /// Tunnel gateway while connected.
    pub tun_gateway: Option<Ipv4Addr>,
    /// Bytes received through the tunnel (all sessions).
    pub bytes_in: u64,
    /// Bytes sent through the tunnel (all sessions).
    pub bytes_out: u64,
    /// Sessions established so far.
    pub sessions: u64,
    /// Last error, if any.
    pub last_error: Option<String>,
    /// Kill switch on.
    pub killswitch: bool,
}

/// The VPN client.
#[derive(Debug)]
pub struct VpnClient;

/// A running client; `stop()` (or dropping it) disconnects and reverts every OS change.
#[derive(Debug)]
pub struct ClientHandle {
    status: watch::Receiver<ClientStatus>,
    counters: Arc<Counters>,
    journal: Arc<Mutex<Journal>>,
    cancel: CancellationToken,
    task: Option<tokio::task::JoinHandle<Result<(), VpnError>>>,
}

impl VpnClient {
    /// Applies the session-independent OS changes and starts connecting in the background.
    pub async fn start(dmsg: Client, cfg: ClientConfig) -> Result<ClientHandle, VpnError> {
        let (mut journal, _) = Journal::open(&cfg.state_dir, "client").await?;
        if let Err(e) = setup(&mut journal, &cfg).await {
            journal.revert_all().await;
            return Err(e);
        }
        let journal = Arc::new(Mutex::new(journal));
        let counters = Arc::new(Counters::default());
        let (tx, rx) = watch::channel(ClientStatus {
            state: "connecting".into(),
            server: cfg.server.to_string(),
            tun_ip: None,
            tun_gateway: None,
            bytes_in: 0,
            bytes_out: 0,
            sessions: 0,
            last_error: None,
            killswitch: cfg.killswitch,
        });
        let cancel = CancellationToken::new();
        let task = tokio::spawn(run(
            dmsg,
            cfg,
            journal.clone(),
            counters.clone(),
            tx,
            cancel.clone(),
        ));
        Ok(ClientHandle {
            status: rx,
            counters,
            journal,
            cancel,
            task: Some(task),
        })
    }
}

impl ClientHandle {
    /// Current status with live byte counters.
    pub fn status(&self) -> ClientStatus {
        let mut s = self.status.borrow().clone();
        (s.bytes_in, s.bytes_out) = self.counters.get();
        s
    }

    /// Waits until the status satisfies `pred` or `timeout` passes; returns the last status.
    pub async fn wait_for<F: FnMut(&ClientStatus) -> bool>(
        &mut self,
        timeout: Duration,
        pred: F,
    ) -> ClientStatus {
        let _ = tokio::time::timeout(timeout, self.status.wait_for(pred)).await;
        self.status()
    }

    /// Completes when the client gives up (refused by the server); `Ok` after `stop`.
    pub async fn finished(&mut self) -> Result<(), VpnError> {
        match self.task.as_mut() {
            Some(t) => {
                let r = t.await.unwrap_or(Ok(()));
                self.task = None;
                r
            }
            None => std::future::pending().await,
        }
    }

    /// Disconnects and reverts every OS change.
    pub async fn stop(mut self) {
        self.cancel.cancel();
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
        self.journal.lock().await.revert_all().await;
    }
}

impl Drop for ClientHandle {
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

async fn setup(journal: &mut Journal, cfg: &ClientConfig) -> Result<(), VpnError> {
    let net = Net::new()?;
    let locals = net.local_ipv4().await?;
    for ip in &cfg.direct {
        if locals.contains(ip) || ip.is_loopback() {
            continue;
        }
        let via = net.lookup(*ip).await?;
        if via.dev.as_deref() == Some("lo") {
            continue;
        }
        journal
            .apply(Change::Route(RouteSpec {
                dst: *ip,
                prefix: 32,
                gateway: via.gateway,
                dev: via.dev,
            }))
            .await?;
    }
    if cfg.block_ipv6 || cfg.killswitch {
        journal
            .apply(Change::NftTable {
                family: "inet".into(),
                name: CLIENT_TABLE.into(),
                body: nft::client_table(&cfg.tun_name, &cfg.direct, cfg.block_ipv6, cfg.killswitch),
            })
            .await?;
    }
    if !cfg.dns.is_empty() {
        let old = files::read_or_empty(&cfg.resolv_conf)?;
        journal
            .apply(Change::FileContents {
                path: cfg.resolv_conf.clone(),
                old,
                new: files::resolv_conf(&cfg.dns),
            })
            .await?;
    }
    Ok(())
}

async fn run(
    dmsg: Client,
    cfg: ClientConfig,
    journal: Arc<Mutex<Journal>>,
    counters: Arc<Counters>,
    status: watch::Sender<ClientStatus>,
    cancel: CancellationToken,
) -> Result<(), VpnError> {
    let mut backoff = cfg.backoff_initial;
    loop {
        let started = Instant::now();
        let r = tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            r = session(&dmsg, &cfg, &journal, &counters, &status) => r,
        };
        let msg = match &r {
            Ok(()) => "the server closed the tunnel".to_string(),
            Err(e) => error_chain(e),
        };
        tracing::warn!(error = %msg, "VPN session ended");
        if let Err(VpnError::Refused(s @ (Status::Forbidden | Status::BadRequest))) = r {
            status.send_modify(|st| {
                st.state = "failed".into();
                st.tun_ip = None;
                st.tun_gateway = None;
                st.last_error = Some(msg);
            });
            return Err(VpnError::Refused(s));
        }
        status.send_modify(|st| {
            st.state = "reconnecting".into();
            st.tun_ip = None;
            st.tun_gateway = None;
            st.last_error = Some(msg);
        });
        if started.elapsed() > Duration::from_secs(30) {
            backoff = cfg.backoff_initial;
        }
        tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(cfg.backoff_max);
    }
}

async fn session(
    dmsg: &Client,
    cfg: &ClientConfig,
    journal: &Mutex<Journal>,
    counters: &Arc<Counters>,
    status: &watch::Sender<ClientStatus>,
) -> Result<(), VpnError> {
    let addr = Addr::new(cfg.server, cfg.server_port);
    let mut stream = tokio::time::timeout(cfg.dial_timeout, dmsg.dial(addr))
        .await
        .map_err(|_| VpnError::Timeout("dial"))??;
    let net = Net::new()?;
    let mut unavailable = net.local_ipv4().await?;
    for r in net.default_routes().await? {
        if let Some(g) = r.gateway {
            unavailable.push(g);
        }
    }
    let hello = ClientHello {
        unavailable_private_ips: unavailable,
        passcode: cfg.passcode.clone(),
    };
    session::write_hello(&mut stream, &hello, cfg.hello_timeout).await?;
    let (reply, leftover) =
        session::read_hello::<ServerHelloWire, _>(&mut stream, cfg.hello_timeout).await?;
    let (tun_ip, gw) = match ServerHello::from_wire(&reply)? {
        ServerHello::Ok {
            tun_ip,
            tun_gateway,
        } => (tun_ip, tun_gateway),
        ServerHello::Err(s) => return Err(VpnError::Refused(s)),
    };
    let dev = Arc::new(session::create_tun(&cfg.tun_name, tun_ip, gw)?);
    let routes: Vec<Change> = [Ipv4Addr::new(0, 0, 0, 0), Ipv4Addr::new(128, 0, 0, 0)]
        .into_iter()
        .map(|dst| {
            Change::Route(RouteSpec {
                dst,
                prefix: 1,
                gateway: Some(gw),
                dev: Some(cfg.tun_name.clone()),
            })
        })
        .collect();
    {
        let mut j = journal.lock().await;
        for r in &routes {
            j.apply(r.clone()).await?;
        }
    }
    status.send_modify(|st| {
        st.state = "connected".into();
        st.tun_ip = Some(tun_ip);
        st.tun_gateway = Some(gw);
        st.sessions += 1;
    });
    tracing::info!(ip = %tun_ip, gateway = %gw, server = %cfg.server, "VPN connected");
    let r = session::pump(dev.clone(), stream, leftover, counters.clone()).await;
    {
        let mut j = journal.lock().await;
        for c in &routes {
            j.revert_one(c).await;
        }
    }
    drop(dev);
    r
}
