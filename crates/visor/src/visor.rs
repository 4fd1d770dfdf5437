//! Wiring of the daemon: [`Visor::start`] brings up, from a [`VisorConfig`], the dmsg client, the
//! built-in pty host (dmsg port, `ssh_listen` TCP entry, unix control socket; with the sftp channel),
//! the resolving proxy, transports, the app server and apps, the control API on `cli_addr` and the
//! links to the configured hypervisors. [`Visor::shutdown`] undoes all of it in reverse order (apps
//! first, so a VPN client reverts its routes before the dmsg client goes away).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Value, json};
use skywire_cipher::PubKey;
use skywire_dmsg::disc::DiscClient;
use skywire_dmsg::{Client, ClientConfig};
use skywire_pty::host::{HostHandle, PtyHost, PtyHostConfig, SftpService, WhitelistStore};
use tokio::sync::Notify;
use tokio::task::JoinSet;

use crate::apps::{AppContext, AppsManager};
use crate::appserver::AppServer;
use crate::config::{ConfigError, VisorConfig};
use crate::control::{self, ControlAddr};
use crate::transport::{TransportConfig, TransportManager};

/// Errors of starting the visor.
#[derive(Debug, thiserror::Error)]
pub enum VisorError {
    /// Bad config.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A listener could not be bound.
    #[error("{what} {addr}: {source}")]
    Bind {
        /// Which listener.
        what: &'static str,
        /// The address.
        addr: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// dmsg set-up.
    #[error("dmsg: {0}")]
    Dmsg(String),
    /// Another component.
    #[error("{0}")]
    Other(String),
}

/// `GET /api/visor`.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct VisorInfo {
    /// The visor's key.
    pub pk: PubKey,
    /// Build version.
    pub version: String,
    /// Seconds since start.
    pub uptime_secs: u64,
    /// dmsg discovery URL.
    pub dmsg_discovery: String,
    /// Relay servers with a live session.
    pub dmsg_servers: Vec<PubKey>,
    /// pty host dmsg port.
    pub pty_dmsg_port: u16,
    /// pty control socket.
    pub pty_cli_address: String,
    /// pty direct TCP entry, if any.
    pub pty_tcp: Option<SocketAddr>,
    /// stcp listener, if any.
    pub stcp_addr: Option<SocketAddr>,
    /// Resolving proxy, if running.
    pub resolver: Option<SocketAddr>,
    /// The local app server, if running.
    pub app_server: Option<SocketAddr>,
    /// Configured hypervisors.
    pub hypervisors: Vec<PubKey>,
    /// Hypervisors connected right now.
    pub hypervisors_connected: Vec<PubKey>,
    /// The hypervisor UI, if this visor is one.
    pub hypervisor_ui: Option<SocketAddr>,
    /// App counts: total and running.
    pub apps_total: usize,
    /// Running apps.
    pub apps_running: usize,
    /// Transports up.
    pub transports: usize,
}

/// The sftp channel of the built-in pty host: skywire-fs's server on the accepted stream.
#[derive(Debug, Default)]
struct HostSftp;

impl SftpService for HostSftp {
    fn serve(
        &self,
        io: skywire_pty::host::BoxedStream,
        remote: Option<PubKey>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'static>> {
        Box::pin(async move {
            if let Err(e) = skywire_fs::serve(io, skywire_fs::ServerConfig::default()).await {
                tracing::debug!(error = %e, ?remote, "sftp session ended with an error");
            }
        })
    }
}

/// The running visor.
pub struct Visor {
    cfg: Mutex<VisorConfig>,
    config_path: Option<PathBuf>,
    started: Instant,
    dmsg: Client,
    disc: DiscClient,
    apps: Arc<AppsManager>,
    transports: Option<Arc<TransportManager>>,
    skynet: Option<Arc<crate::skynet::Skynet>>,
    app_server: Option<Arc<AppServer>>,
    pty_tcp: Option<SocketAddr>,
    resolver: Option<SocketAddr>,
    control_addr: Mutex<Option<String>>,
    hv_connected: Arc<Mutex<Vec<PubKey>>>,
    hv_ui: Mutex<Option<SocketAddr>>,
    shutdown: Notify,
    shutdown_requested: std::sync::atomic::AtomicBool,
    tasks: Mutex<JoinSet<()>>,
    pty_handles: tokio::sync::Mutex<Vec<HostHandle>>,
}

impl std::fmt::Debug for Visor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Visor")
            .field("pk", &self.dmsg.pk())
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Resolves a listen address text (`:7777`, `localhost:1`, `ip:port`).
fn listen(s: &str) -> Result<SocketAddr, String> {
    crate::apps::parse_listen(s).map_err(|e| e.to_string())
}

impl Visor {
    /// Starts everything (module doc). `config_path` is where app changes are saved (None: not saved);
    /// relative paths in the config are taken relative to the process's working directory.
    pub async fn start(
        cfg: VisorConfig,
        config_path: Option<PathBuf>,
    ) -> Result<Arc<Visor>, VisorError> {
        cfg.validate()?;
        let sk = cfg.sk.clone();
        let pk = cfg.pk;
        let local_path = PathBuf::from(&cfg.local_path);
        std::fs::create_dir_all(&local_path).map_err(|e| VisorError::Bind {
            what: "local_path",
            addr: cfg.local_path.clone(),
            source: e,
        })?;
        match crate::proc::kill_leftovers(&local_path.join("apps-pid.txt")) {
            Ok(0) => {}
            Ok(n) => tracing::info!("killed {n} app processes left over from a previous run"),
            Err(e) => tracing::warn!(error = %e, "reading apps-pid.txt"),
        }

        // dmsg client.
        let disc = DiscClient::new(&cfg.dmsg.discovery)
            .map_err(|e| VisorError::Dmsg(format!("discovery {:?}: {e}", cfg.dmsg.discovery)))?;
        let mut dcfg = ClientConfig::new(sk.clone(), disc.clone());
        dcfg.min_sessions = cfg.dmsg.sessions_count.max(1);
        let dmsg = Client::start(dcfg);

        let mut tasks = JoinSet::new();

        // pty host: whitelist = configured keys + hypervisors + our own key (spec §7.4).
        let mut allowed = cfg.dmsgpty.whitelist.clone();
        allowed.extend(cfg.hypervisors.iter().copied());
        allowed.push(pk);
        let host = PtyHost::new(
            PtyHostConfig::new(sk.clone())
                .with_dmsg(dmsg.clone())
                .with_whitelist(WhitelistStore::memory(allowed))
                .with_sftp(Arc::new(HostSftp)),
        );
        let mut pty_handles = Vec::new();
        let pty_listener = dmsg.listen(cfg.dmsgpty.dmsg_port).map_err(|e| {
            VisorError::Dmsg(format!("pty dmsg port {}: {e}", cfg.dmsgpty.dmsg_port))
        })?;
        pty_handles.push(host.serve_dmsg(pty_listener));
        if !cfg.dmsgpty.cli_address.is_empty() && cfg.dmsgpty.cli_network == "unix" {
            let path = PathBuf::from(&cfg.dmsgpty.cli_address);
            if let Some(dir) = path.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            match host.serve_unix(&path) {
                Ok(h) => pty_handles.push(h),
                Err(e) => {
                    return Err(VisorError::Other(format!(
                        "pty control socket {}: {e}",
                        path.display()
                    )));
                }
            }
        }
        let mut pty_tcp = None;
        if !cfg.dmsgpty.ssh_listen.is_empty() {
            let addr = listen(&cfg.dmsgpty.ssh_listen).map_err(VisorError::Other)?;
            let l = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|source| VisorError::Bind {
                    what: "pty ssh_listen",
                    addr: cfg.dmsgpty.ssh_listen.clone(),
                    source,
                })?;
            let h = host.serve_tcp(l);
            pty_tcp = h.local_addr();
            pty_handles.push(h);
        }

        // Resolving proxy.
        let mut resolver = None;
        if let Some(w) = cfg.dmsg_web.as_ref().filter(|w| w.enable) {
            let ip: IpAddr = w.proxy_addr.parse().map_err(|e| {
                VisorError::Other(format!("dmsg_web.proxy_addr {:?}: {e}", w.proxy_addr))
            })?;
            let addr = SocketAddr::new(ip, w.proxy_port);
            let l = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|source| VisorError::Bind {
                    what: "resolving proxy",
                    addr: addr.to_string(),
                    source,
                })?;
            resolver = l.local_addr().ok();
            let upstream = if w.upstream_socks.is_empty() {
                None
            } else {
                Some(w.upstream_socks.parse().map_err(|e| {
                    VisorError::Other(format!(
                        "dmsg_web.upstream_socks {:?}: {e}",
                        w.upstream_socks
                    ))
                })?)
            };
            let rcfg = skywire_proxy::ResolverConfig {
                dmsg: Some(skywire_proxy::Dialer::new(skywire_proxy::Network::Dmsg(
                    dmsg.clone(),
                ))),
                skynet: None,
                upstream,
                timeout: Duration::from_secs(30),
            };
            tasks.spawn(skywire_proxy::serve_resolver(l, rcfg));
        }

        // Skynet forwarding service (nothing exposed until ports are registered).
        let skynet = match crate::skynet::Skynet::start(dmsg.clone()).await {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(error = %e, "skynet forwarding is not available");
                None
            }
        };

        // Transports.
        let mut tcfg = TransportConfig::new(sk.clone());
        tcfg.pk_table = cfg.stcp.pk_table.clone().unwrap_or_default();
        tcfg.stcp_listen = Some(cfg.stcp.listening_address.clone()).filter(|a| !a.is_empty());
        tcfg.dmsg = Some(dmsg.clone());
        tcfg.persistent = cfg
            .persistent_transports
            .iter()
            .map(|p| (p.pk, p.tp_type.clone()))
            .collect();
        let transports = match TransportManager::start(tcfg).await {
            Ok(t) => Some(t),
            Err(e) => {
                tracing::warn!(error = %control::error_chain(&e), "transports are not available");
                None
            }
        };

        // App server and apps.
        let app_server = if cfg.launcher.server_addr.is_empty() {
            None
        } else {
            match AppServer::bind(&cfg.launcher.server_addr, pk, dmsg.clone()).await {
                Ok(s) => Some(s),
                Err(e) => {
                    tracing::warn!(addr = %cfg.launcher.server_addr, error = %control::error_chain(&e),
                        "the app server is not available: custom apps cannot run");
                    None
                }
            }
        };
        let direct_hosts = Arc::new(Mutex::new(Vec::new()));
        let ctx = AppContext {
            dmsg: dmsg.clone(),
            visor_pk: pk,
            local_path: local_path.clone(),
            bin_path: PathBuf::from(&cfg.launcher.bin_path),
            app_server: app_server.clone(),
            direct_hosts: direct_hosts.clone(),
            stop_grace: cfg.shutdown_timeout(),
        };
        let apps = AppsManager::new(ctx, cfg.launcher.apps.clone());

        // Infrastructure hosts a VPN client must keep reaching outside the tunnel.
        {
            let disc = disc.clone();
            let url = cfg.dmsg.discovery.clone();
            tasks.spawn(async move {
                let hosts = infrastructure_hosts(&url, &disc).await;
                *lock(&direct_hosts) = hosts;
            });
        }

        let visor = Arc::new(Visor {
            cfg: Mutex::new(cfg),
            config_path,
            started: Instant::now(),
            dmsg,
            disc,
            apps,
            transports,
            skynet,
            app_server,
            pty_tcp,
            resolver,
            control_addr: Mutex::new(None),
            hv_connected: Arc::default(),
            hv_ui: Mutex::new(None),
            shutdown: Notify::new(),
            shutdown_requested: std::sync::atomic::AtomicBool::new(false),
            tasks: Mutex::new(tasks),
            pty_handles: tokio::sync::Mutex::new(pty_handles),
        });

        visor.serve_control().await?;
        if let Some(hv) = visor.config().hypervisor {
            crate::hypervisor::start(&visor, hv).await?;
        }
        visor.link_hypervisors();
        visor.apps.start_auto();
        Ok(visor)
    }

    async fn serve_control(self: &Arc<Self>) -> Result<(), VisorError> {
        let text = lock(&self.cfg).cli_addr.clone();
        if text.is_empty() {
            return Ok(());
        }
        let router = control::router(self.clone());
        let mut tasks = lock(&self.tasks);
        match ControlAddr::parse(&text) {
            ControlAddr::Tcp(a) => {
                let addr = if a.starts_with("localhost:") {
                    a.replacen("localhost", "127.0.0.1", 1)
                } else {
                    a.clone()
                };
                let l = std::net::TcpListener::bind(&addr).map_err(|source| VisorError::Bind {
                    what: "control API (cli_addr)",
                    addr: a.clone(),
                    source,
                })?;
                l.set_nonblocking(true).map_err(|source| VisorError::Bind {
                    what: "control API (cli_addr)",
                    addr: a.clone(),
                    source,
                })?;
                let l =
                    tokio::net::TcpListener::from_std(l).map_err(|source| VisorError::Bind {
                        what: "control API (cli_addr)",
                        addr: a.clone(),
                        source,
                    })?;
                *lock(&self.control_addr) = l.local_addr().ok().map(|a| a.to_string());
                tasks.spawn(async move {
                    if let Err(e) = axum::serve(l, router).await {
                        tracing::error!(error = %e, "control API stopped");
                    }
                });
            }
            ControlAddr::Unix(p) => {
                if p.exists() {
                    let _ = std::fs::remove_file(&p);
                }
                if let Some(dir) = p.parent() {
                    let _ = std::fs::create_dir_all(dir);
                }
                let l = tokio::net::UnixListener::bind(&p).map_err(|source| VisorError::Bind {
                    what: "control API (cli_addr)",
                    addr: p.display().to_string(),
                    source,
                })?;
                *lock(&self.control_addr) = Some(format!("unix:{}", p.display()));
                tasks.spawn(async move {
                    if let Err(e) = axum::serve(l, router).await {
                        tracing::error!(error = %e, "control API stopped");
                    }
                });
            }
        }
        Ok(())
    }

    /// Dials every configured hypervisor on its dmsg port (46) and serves the control API on the
    /// stream; redials with backoff whenever it ends.
    fn link_hypervisors(self: &Arc<Self>) {
        let hvs = lock(&self.cfg).hypervisors.clone();
        let mut tasks = lock(&self.tasks);
        for hv in hvs {
            let weak = Arc::downgrade(self);
            let dmsg = self.dmsg.clone();
            let connected = self.hv_connected.clone();
            tasks.spawn(async move {
                let mut backoff = Duration::from_secs(1);
                loop {
                    let Some(v) = weak.upgrade() else { return };
                    let router = control::router(v.clone());
                    drop(v);
                    match dmsg
                        .dial(skywire_dmsg::Addr::new(hv, crate::HYPERVISOR_DMSG_PORT))
                        .await
                    {
                        Ok(stream) => {
                            tracing::info!(hypervisor = %hv, "connected to hypervisor");
                            lock(&connected).push(hv);
                            backoff = Duration::from_secs(1);
                            if let Err(e) = control::serve_stream(router, stream).await {
                                tracing::debug!(hypervisor = %hv, error = %e, "hypervisor link ended");
                            }
                            lock(&connected).retain(|k| *k != hv);
                        }
                        Err(e) => {
                            tracing::debug!(hypervisor = %hv, error = %e, "hypervisor not reachable");
                        }
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            });
        }
    }

    /// The visor's key.
    pub fn pk(&self) -> PubKey {
        self.dmsg.pk()
    }

    /// The dmsg client.
    pub fn dmsg(&self) -> &Client {
        &self.dmsg
    }

    /// The apps manager.
    pub fn apps(&self) -> &Arc<AppsManager> {
        &self.apps
    }

    /// The transport manager, if it runs.
    pub fn transports(&self) -> Option<&Arc<TransportManager>> {
        self.transports.as_ref()
    }

    /// The skynet forwarding service, if it runs.
    pub fn skynet(&self) -> Option<&Arc<crate::skynet::Skynet>> {
        self.skynet.as_ref()
    }

    /// A copy of the current config.
    pub fn config(&self) -> VisorConfig {
        lock(&self.cfg).clone()
    }

    /// The bound control API address (`127.0.0.1:port` or `unix:/path`).
    pub fn control_addr(&self) -> Option<String> {
        lock(&self.control_addr).clone()
    }

    /// Records where the hypervisor UI listens (set by the UI when it starts).
    pub fn set_hypervisor_ui(&self, addr: SocketAddr) {
        *lock(&self.hv_ui) = Some(addr);
    }

    /// Runs a task owned by the visor (aborted at shutdown).
    pub fn spawn_task<F>(&self, fut: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        lock(&self.tasks).spawn(fut);
    }

    /// `GET /api/visor`.
    pub fn info(&self) -> VisorInfo {
        let cfg = lock(&self.cfg);
        let apps = self.apps.list();
        VisorInfo {
            pk: self.pk(),
            version: env!("CARGO_PKG_VERSION").into(),
            uptime_secs: self.started.elapsed().as_secs(),
            dmsg_discovery: cfg.dmsg.discovery.clone(),
            dmsg_servers: self.dmsg.servers(),
            pty_dmsg_port: cfg.dmsgpty.dmsg_port,
            pty_cli_address: cfg.dmsgpty.cli_address.clone(),
            pty_tcp: self.pty_tcp,
            stcp_addr: self.transports.as_ref().and_then(|t| t.stcp_local_addr()),
            resolver: self.resolver,
            app_server: self.app_server.as_ref().map(|s| s.local_addr()),
            hypervisors: cfg.hypervisors.clone(),
            hypervisors_connected: lock(&self.hv_connected).clone(),
            hypervisor_ui: *lock(&self.hv_ui),
            apps_total: apps.len(),
            apps_running: apps
                .iter()
                .filter(|a| a.status == crate::apps::STATUS_RUNNING)
                .count(),
            transports: self.transports.as_ref().map_or(0, |t| t.list().len()),
        }
    }

    /// `GET /api/dmsg`.
    pub fn dmsg_info(&self) -> Value {
        let cfg = lock(&self.cfg);
        json!({
            "pk": self.pk(),
            "discovery": cfg.dmsg.discovery,
            "sessions_wanted": cfg.dmsg.sessions_count,
            "servers": self.dmsg.servers(),
        })
    }

    /// Services of `kind` from the service discovery (`launcher.service_discovery`).
    pub async fn service_list(&self, kind: &str) -> Result<Value, control::ApiError> {
        use axum::http::StatusCode;
        let sd = lock(&self.cfg).launcher.service_discovery.clone();
        if sd.is_empty() {
            return Err(control::ApiError(
                StatusCode::SERVICE_UNAVAILABLE,
                "no service discovery configured (launcher.service_discovery)".into(),
            ));
        }
        let url = format!("{}/api/services?type={kind}", sd.trim_end_matches('/'));
        let fail = |e: String| {
            control::ApiError(
                StatusCode::BAD_GATEWAY,
                format!("service discovery {url}: {e}"),
            )
        };
        let resp = reqwest::Client::new()
            .get(&url)
            .timeout(Duration::from_secs(20))
            .send()
            .await
            .map_err(|e| fail(control::error_chain(&e)))?;
        if !resp.status().is_success() {
            return Err(fail(format!("HTTP {}", resp.status())));
        }
        let body = resp.bytes().await.map_err(|e| fail(e.to_string()))?;
        serde_json::from_slice(&body).map_err(|e| fail(e.to_string()))
    }

    /// Writes the current app list back to the config file (if the visor has one).
    pub fn save_apps(&self) {
        let Some(path) = &self.config_path else {
            return;
        };
        let mut cfg = lock(&self.cfg);
        cfg.launcher.apps = self.apps.configs();
        if let Err(e) = cfg.write(path) {
            tracing::warn!(error = %e, "saving the config");
        }
    }

    /// Asks [`Visor::wait`] to return (API `shutdown`).
    pub fn request_shutdown(&self) {
        self.shutdown_requested
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.shutdown.notify_waiters();
    }

    /// Waits until shutdown is requested through the API.
    pub async fn wait_shutdown_request(&self) {
        loop {
            let n = self.shutdown.notified();
            if self
                .shutdown_requested
                .load(std::sync::atomic::Ordering::SeqCst)
            {
                return;
            }
            n.await;
        }
    }

    /// Stops apps (reverting VPN changes), transports, listeners and the dmsg client.
    pub async fn shutdown(&self) {
        let grace = lock(&self.cfg).shutdown_timeout() + Duration::from_secs(5);
        if tokio::time::timeout(grace, self.apps.stop_all())
            .await
            .is_err()
        {
            tracing::warn!("apps did not stop within {grace:?}");
        }
        if let Some(t) = &self.transports {
            let _ = tokio::time::timeout(Duration::from_secs(5), t.close()).await;
        }
        if let Some(s) = &self.skynet {
            s.close();
        }
        let handles: Vec<HostHandle> = std::mem::take(&mut *self.pty_handles.lock().await);
        for h in handles {
            let _ = tokio::time::timeout(Duration::from_secs(5), h.shutdown()).await;
        }
        lock(&self.tasks).abort_all();
        if let Some(a) = self.control_addr()
            && let Some(p) = a.strip_prefix("unix:")
        {
            let _ = std::fs::remove_file(p);
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), self.dmsg.close()).await;
    }

    /// The discovery client.
    pub fn discovery(&self) -> &DiscClient {
        &self.disc
    }
}

/// IPv4 addresses of the discovery and of every relay server it lists.
async fn infrastructure_hosts(disc_url: &str, disc: &DiscClient) -> Vec<Ipv4Addr> {
    let mut out = resolve_v4(disc_url).await;
    if let Ok(entries) = disc.all_servers().await {
        for e in entries {
            if let Some(s) = e.server {
                out.extend(resolve_v4(&s.address).await);
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

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
        Ok(a) => a
            .filter_map(|a| match a.ip() {
                IpAddr::V4(ip) => Some(ip),
                IpAddr::V6(_) => None,
            })
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Tells systemd the visor is ready (`Type=notify`), if `NOTIFY_SOCKET` is set.
pub fn sd_notify_ready() {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let sock = match std::os::unix::net::UnixDatagram::unbound() {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "sd_notify socket");
            return;
        }
    };
    let p = path.to_string_lossy().into_owned();
    let res = if let Some(name) = p.strip_prefix('@') {
        use std::os::linux::net::SocketAddrExt;
        std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
            .and_then(|a| sock.send_to_addr(b"READY=1\n", &a))
    } else {
        sock.send_to(b"READY=1\n", Path::new(&p))
    };
    if let Err(e) = res {
        tracing::warn!(error = %e, socket = %p, "sd_notify READY=1");
    }
}
