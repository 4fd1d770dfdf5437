//! The visor's built-in skynet port forwarding (spec apps.md §4.3): the forwarding service on dmsg port 57
//! (2026 handshake: ready byte, JSON request, raw relay) exposing the local TCP ports registered through
//! the control API, and forwarding clients that map a local TCP port to a port of another visor. Both
//! run on the visor's own dmsg client and key, so peers whitelist the visor's key.
//!
//! The protocol work (handshakes, relays) is `skywire-proxy`'s; this module owns the live state.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use skywire_cipher::PubKey;
use skywire_dmsg::Client;
use skywire_proxy::{Dialer, ForwardServer, ForwardServerConfig, Network};
use tokio::task::JoinHandle;

/// dmsg port of the forwarding service (2026 builds).
pub const FORWARD_PORT: u16 = 57;

/// Errors of the skynet service.
#[derive(Debug, thiserror::Error)]
pub enum SkynetError {
    /// Bad request.
    #[error("{0}")]
    Invalid(String),
    /// No client by that name.
    #[error("no skynet client named {0:?}")]
    NotFound(String),
    /// Binding the local port or the dmsg port failed.
    #[error("{0}")]
    Io(String),
}

/// The exposed side.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ServerSettings {
    /// Local TCP ports peers may reach.
    #[serde(default)]
    pub ports: BTreeSet<u16>,
    /// Keys allowed to connect (empty = every key).
    #[serde(default)]
    pub whitelist: BTreeSet<PubKey>,
}

/// A forwarding client.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ClientSpec {
    /// Instance name (default `skynet-client-<local port>`).
    #[serde(default)]
    pub name: Option<String>,
    /// The remote visor.
    pub pk: PubKey,
    /// Its port.
    pub remote: u16,
    /// Local port (0 picks one).
    #[serde(default)]
    pub local: u16,
    /// Local bind address (default 127.0.0.1).
    #[serde(default)]
    pub bind: Option<String>,
    /// Raw TCP mode (else HTTP mode).
    #[serde(default)]
    pub raw_tcp: bool,
}

/// A running client as reported.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ClientInfo {
    /// Instance name.
    pub name: String,
    /// The remote visor.
    pub pk: PubKey,
    /// Its port.
    pub remote: u16,
    /// Where it listens.
    pub local: SocketAddr,
    /// Raw TCP mode.
    pub raw_tcp: bool,
}

/// `GET /api/skynet`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SkynetStatus {
    /// Exposed ports and whitelist.
    pub server: ServerSettings,
    /// dmsg port of the forwarding service.
    pub forward_port: u16,
    /// Running clients.
    pub clients: Vec<ClientInfo>,
}

struct ClientRun {
    info: ClientInfo,
    task: JoinHandle<()>,
}

/// Live state (module doc).
pub struct Skynet {
    dmsg: Client,
    server: Mutex<(ServerSettings, Option<JoinHandle<()>>)>,
    clients: Mutex<BTreeMap<String, ClientRun>>,
}

impl std::fmt::Debug for Skynet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Skynet").finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Skynet {
    /// Serves the forwarding port with nothing exposed yet.
    pub async fn start(dmsg: Client) -> Result<Arc<Skynet>, SkynetError> {
        let s = Arc::new(Skynet {
            dmsg,
            server: Mutex::new((ServerSettings::default(), None)),
            clients: Mutex::new(BTreeMap::new()),
        });
        s.set_server(ServerSettings::default()).await?;
        Ok(s)
    }

    /// Replaces the exposed ports and whitelist (the service restarts; open relays continue).
    pub async fn set_server(
        &self,
        settings: ServerSettings,
    ) -> Result<ServerSettings, SkynetError> {
        if settings.ports.contains(&0) {
            return Err(SkynetError::Invalid("port 0 cannot be exposed".into()));
        }
        let old = lock(&self.server).1.take();
        if let Some(t) = old {
            t.abort();
            let _ = t.await;
        }
        let cfg = ForwardServerConfig {
            ports: settings.ports.clone(),
            whitelist: settings.whitelist.iter().copied().collect::<HashSet<_>>(),
            ..ForwardServerConfig::default()
        };
        // The old listener is released when its aborted task is dropped; retry briefly.
        let listener = {
            let mut tries = 0;
            loop {
                match self.dmsg.listen(FORWARD_PORT) {
                    Ok(l) => break l,
                    Err(e) if tries < 50 => {
                        tries += 1;
                        tracing::debug!(error = %e, "forward port busy; retrying");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                    Err(e) => {
                        return Err(SkynetError::Io(format!(
                            "listening on dmsg port {FORWARD_PORT}: {e}"
                        )));
                    }
                }
            }
        };
        let server = ForwardServer::new(cfg);
        let mut guard = lock(&self.server);
        guard.1 = Some(tokio::spawn(server.serve_dmsg(listener)));
        guard.0 = settings.clone();
        Ok(settings)
    }

    /// Starts a forwarding client.
    pub async fn add_client(&self, spec: ClientSpec) -> Result<ClientInfo, SkynetError> {
        let bind = spec.bind.clone().unwrap_or_else(|| "127.0.0.1".into());
        let ip: std::net::IpAddr = bind
            .parse()
            .map_err(|e| SkynetError::Invalid(format!("bind {bind:?}: {e}")))?;
        if spec.remote == 0 {
            return Err(SkynetError::Invalid("remote port 0".into()));
        }
        let l = tokio::net::TcpListener::bind(SocketAddr::new(ip, spec.local))
            .await
            .map_err(|e| SkynetError::Io(format!("listening on {bind}:{}: {e}", spec.local)))?;
        let local = l.local_addr().map_err(|e| SkynetError::Io(e.to_string()))?;
        let name = spec
            .name
            .clone()
            .unwrap_or_else(|| format!("skynet-client-{}", local.port()));
        if lock(&self.clients).contains_key(&name) {
            return Err(SkynetError::Invalid(format!(
                "a skynet client named {name:?} is running"
            )));
        }
        let dialer = Arc::new(Dialer {
            forward_port: FORWARD_PORT,
            ..Dialer::new(Network::Dmsg(self.dmsg.clone()))
        });
        let task = tokio::spawn(skywire_proxy::serve_forward_client(
            l,
            dialer,
            spec.pk,
            spec.remote,
            spec.raw_tcp,
        ));
        let info = ClientInfo {
            name: name.clone(),
            pk: spec.pk,
            remote: spec.remote,
            local,
            raw_tcp: spec.raw_tcp,
        };
        lock(&self.clients).insert(
            name,
            ClientRun {
                info: info.clone(),
                task,
            },
        );
        Ok(info)
    }

    /// Stops a client.
    pub fn remove_client(&self, name: &str) -> Result<ClientInfo, SkynetError> {
        let run = lock(&self.clients)
            .remove(name)
            .ok_or_else(|| SkynetError::NotFound(name.into()))?;
        run.task.abort();
        Ok(run.info)
    }

    /// State.
    pub fn status(&self) -> SkynetStatus {
        SkynetStatus {
            server: lock(&self.server).0.clone(),
            forward_port: FORWARD_PORT,
            clients: lock(&self.clients)
                .values()
                .map(|c| c.info.clone())
                .collect(),
        }
    }

    /// Stops everything.
    pub fn close(&self) {
        if let Some(t) = lock(&self.server).1.take() {
            t.abort();
        }
        for (_, c) in std::mem::take(&mut *lock(&self.clients)) {
            c.task.abort();
        }
    }
}
