//! The pty host as a library (pty.md 2, 3.3, 5): [`PtyHost`] owns the host identity, the whitelist
//! store and the RPC method tables, and serves one accepted stream per
//! [`serve_stream`](PtyHost::serve_stream) call: whitelist gate for remote carriers → request URI →
//! status byte → `net/rpc` with a fresh [`PtyGateway`] (`dmsgpty/pty`), the whitelist service
//! (`dmsgpty/whitelist`, control socket only) or the proxied `pty` service of [`proxy`]
//! (`dmsgpty/proxy`, control socket only; needs the host's dmsg client). The carrier listeners
//! (dmsg port, noise-XK TCP, unix control socket) with their shutdown handle are in
//! [`listeners`].
//!
//! `dmsgpty/sftp` is served on every carrier (dmsg, TCP, control socket) when the config carries
//! an [`SftpService`] (the CLI plugs in `skywire-fs`'s server; this crate does not depend on it):
//! after the whitelist gate and `0x00` the raw stream is handed to the service. Without one the
//! request is answered with `0x01`, which Go clients report as an older host.

pub mod listeners;
pub mod proxy;

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use skywire_cipher::{PubKey, SecKey};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::client::{ClientError, PtyClient};
use crate::gateway::{PtyGateway, pty_router};
use crate::rpc::{Router, RpcError, RpcServer, ServiceError};
use crate::types;
use crate::uri::{self, EndpointKind, Status, UriError};
use crate::whitelist::{AddOutcome, Whitelist, WhitelistError, WhitelistFile};

pub use listeners::HostHandle;

/// Handshake bound of the TCP listener (pty.md 5.1).
pub const TCP_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound on the `dmsgpty/proxy` set-up (dmsg dial plus the remote's answer to `dmsgpty/pty`).
pub const PROXY_SETUP_TIMEOUT: Duration = Duration::from_secs(30);

/// Everything serving a stream can fail with (logged by the listeners; one stream's failure never
/// affects another).
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The remote key is not whitelisted (or unknown); the stream was rejected.
    #[error("pty host: remote {0:?} is not whitelisted")]
    NotAllowed(Option<PubKey>),
    /// The whitelist could not be read; the stream was rejected.
    #[error("pty host: reading the whitelist")]
    Whitelist(#[from] WhitelistError),
    /// The request exchange failed or named no endpoint served on this carrier.
    #[error("pty host: request")]
    Request(#[from] UriError),
    /// The RPC session failed.
    #[error("pty host: rpc session")]
    Rpc(#[from] RpcError),
    /// `dmsgpty/proxy` was requested but the host has no dmsg client; answered with `0x01`.
    #[error("pty host: dmsgpty/proxy needs a dmsg client (this host has none)")]
    NoDmsgClient,
    /// `dmsgpty/proxy`: reaching the remote host failed; the stream was closed without a byte.
    #[error("pty host: proxy to {target}")]
    Proxy {
        /// `dmsg://<pk>:<port>`.
        target: String,
        /// Why.
        #[source]
        source: Box<ClientError>,
    },
    /// `dmsgpty/proxy`: reaching the remote host took longer than [`PROXY_SETUP_TIMEOUT`].
    #[error("pty host: proxy to {0}: no answer within {PROXY_SETUP_TIMEOUT:?}")]
    ProxyTimeout(String),
    /// The noise-XK handshake of a TCP connection failed.
    #[error("pty host: noise handshake")]
    Handshake(#[from] skywire_noise::NoiseError),
    /// Listener I/O (bind, accept, socket file).
    #[error("pty host: {what}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// Which carrier a stream came in on: decides the whitelist gate and the endpoint set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Carrier {
    /// A dmsg stream: the remote key is checked; a rejection is the byte `0x01`.
    Dmsg,
    /// A noise-XK TCP connection: the remote key is checked; a rejection closes without a byte.
    Tcp,
    /// The local control socket: trusted (filesystem permissions only), whitelist service too.
    Control,
}

impl Carrier {
    /// The endpoints a host without sftp serves on the carrier.
    pub fn endpoints(self) -> &'static [EndpointKind] {
        self.endpoints_with(false)
    }

    /// The endpoints served on the carrier, with or without `dmsgpty/sftp`.
    pub fn endpoints_with(self, sftp: bool) -> &'static [EndpointKind] {
        match (self, sftp) {
            (Carrier::Control, false) => uri::CONTROL_ENDPOINTS,
            (Carrier::Control, true) => uri::CONTROL_ENDPOINTS_SFTP,
            (Carrier::Dmsg | Carrier::Tcp, false) => uri::REMOTE_ENDPOINTS_G1,
            (Carrier::Dmsg | Carrier::Tcp, true) => uri::REMOTE_ENDPOINTS,
        }
    }

    /// Whether the remote key is checked against the whitelist.
    pub fn is_remote(self) -> bool {
        !matches!(self, Carrier::Control)
    }
}

/// Where the whitelist lives.
#[derive(Debug, Clone)]
pub enum WhitelistStore {
    /// In memory (visor-embedded host, tests); shared by clones.
    Memory(Arc<Mutex<Whitelist>>),
    /// The `wl` array of a standalone host config file, re-read on every check.
    File(WhitelistFile),
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl WhitelistStore {
    /// An in-memory store holding `keys`.
    pub fn memory(keys: impl IntoIterator<Item = PubKey>) -> Self {
        WhitelistStore::Memory(Arc::new(Mutex::new(Whitelist::from_keys(keys))))
    }

    /// A store in the config file at `path`.
    pub fn file(path: impl Into<std::path::PathBuf>) -> Self {
        WhitelistStore::File(WhitelistFile::new(path))
    }

    /// The current whitelist.
    pub async fn load(&self) -> Result<Whitelist, WhitelistError> {
        match self {
            WhitelistStore::Memory(m) => Ok(lock(m).clone()),
            WhitelistStore::File(f) => blocking(f.clone(), |f| f.load()).await,
        }
    }

    /// Adds keys (already-present ones reported in the outcome), persisting for a file store.
    pub async fn add(&self, pks: Vec<PubKey>) -> Result<AddOutcome, WhitelistError> {
        match self {
            WhitelistStore::Memory(m) => Ok(lock(m).add(&pks)),
            WhitelistStore::File(f) => blocking(f.clone(), move |f| f.add(&pks)).await,
        }
    }

    /// Removes keys (unknown ones ignored), persisting for a file store.
    pub async fn remove(&self, pks: Vec<PubKey>) -> Result<usize, WhitelistError> {
        match self {
            WhitelistStore::Memory(m) => Ok(lock(m).remove(&pks)),
            WhitelistStore::File(f) => blocking(f.clone(), move |f| f.remove(&pks)).await,
        }
    }
}

/// Runs a whitelist-file operation off the async threads.
async fn blocking<T: Send + 'static>(
    f: WhitelistFile,
    op: impl FnOnce(&WhitelistFile) -> Result<T, WhitelistError> + Send + 'static,
) -> Result<T, WhitelistError> {
    let path = f.path().to_path_buf();
    tokio::task::spawn_blocking(move || op(&f))
        .await
        .unwrap_or_else(|e| {
            Err(WhitelistError::Read {
                path,
                source: std::io::Error::other(e.to_string()),
            })
        })
}

/// A byte stream handed to a raw-stream subsystem (`dmsgpty/sftp`).
pub trait RawStream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> RawStream for T {}

/// A boxed [`RawStream`].
pub type BoxedStream = Box<dyn RawStream>;

/// The `dmsgpty/sftp` subsystem: serves raw SFTP on an accepted stream (after the whitelist
/// gate and the `0x00` status) until the client closes it. `remote` is the carrier-authenticated
/// peer key (`None` on the control socket).
pub trait SftpService: Send + Sync + std::fmt::Debug + 'static {
    /// Serves one stream to its end.
    fn serve(
        &self,
        io: BoxedStream,
        remote: Option<PubKey>,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>>;
}

/// Library configuration of a [`PtyHost`] (the CLI builds it from [`crate::HostConfig`]).
#[derive(Debug, Clone)]
pub struct PtyHostConfig {
    /// The host's identity (noise-XK static key on TCP; the own key is always allowed).
    pub sk: SecKey,
    /// The whitelist.
    pub whitelist: WhitelistStore,
    /// Bound on the noise-XK handshake of the TCP listener.
    pub tcp_handshake_timeout: Duration,
    /// The dmsg client `dmsgpty/proxy` dials with (none: the endpoint answers `0x01`). Can also
    /// be given later with [`PtyHost::set_dmsg_client`].
    pub dmsg: Option<skywire_dmsg::Client>,
    /// The `dmsgpty/sftp` subsystem (none: the endpoint answers `0x01`).
    pub sftp: Option<Arc<dyn SftpService>>,
}

impl PtyHostConfig {
    /// A config with `sk`, an empty in-memory whitelist and the default timeouts.
    pub fn new(sk: SecKey) -> Self {
        PtyHostConfig {
            sk,
            whitelist: WhitelistStore::memory([]),
            tcp_handshake_timeout: TCP_HANDSHAKE_TIMEOUT,
            dmsg: None,
            sftp: None,
        }
    }

    /// Serves `dmsgpty/sftp` with `service`.
    pub fn with_sftp(mut self, service: Arc<dyn SftpService>) -> Self {
        self.sftp = Some(service);
        self
    }

    /// Sets the dmsg client the `dmsgpty/proxy` endpoint dials with.
    pub fn with_dmsg(mut self, client: skywire_dmsg::Client) -> Self {
        self.dmsg = Some(client);
        self
    }

    /// Replaces the whitelist store.
    pub fn with_whitelist(mut self, whitelist: WhitelistStore) -> Self {
        self.whitelist = whitelist;
        self
    }
}

pub(crate) struct HostInner {
    pub(crate) sk: SecKey,
    pub(crate) pk: PubKey,
    pub(crate) whitelist: WhitelistStore,
    pub(crate) tcp_handshake_timeout: Duration,
    dmsg: OnceLock<skywire_dmsg::Client>,
    sftp: Option<Arc<dyn SftpService>>,
    pty_router: Arc<Router<PtyGateway>>,
    wl_router: Arc<Router<WhitelistStore>>,
    proxy_router: Arc<Router<proxy::ProxyGateway>>,
}

/// A pty host: cheap to clone (shared state), serves any number of streams concurrently.
#[derive(Clone)]
pub struct PtyHost {
    pub(crate) inner: Arc<HostInner>,
}

impl std::fmt::Debug for PtyHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PtyHost")
            .field("pk", &self.inner.pk)
            .field("whitelist", &self.inner.whitelist)
            .finish_non_exhaustive()
    }
}

impl PtyHost {
    /// A host with `config`.
    pub fn new(config: PtyHostConfig) -> Self {
        let pk = config.sk.pub_key();
        let dmsg = OnceLock::new();
        if let Some(c) = config.dmsg {
            let _ = dmsg.set(c);
        }
        PtyHost {
            inner: Arc::new(HostInner {
                sk: config.sk,
                pk,
                whitelist: config.whitelist,
                tcp_handshake_timeout: config.tcp_handshake_timeout,
                dmsg,
                sftp: config.sftp,
                pty_router: Arc::new(pty_router()),
                wl_router: Arc::new(whitelist_router()),
                proxy_router: Arc::new(proxy::proxy_router()),
            }),
        }
    }

    /// The host's public key.
    pub fn pk(&self) -> PubKey {
        self.inner.pk
    }

    /// Gives the host the dmsg client `dmsgpty/proxy` dials with, once (for a client started
    /// after the host, e.g. with the host's own dmsg listener). Returns `false` (and keeps the
    /// first) if the host already has one.
    pub fn set_dmsg_client(&self, client: skywire_dmsg::Client) -> bool {
        self.inner.dmsg.set(client).is_ok()
    }

    /// The dmsg client `dmsgpty/proxy` dials with, if any.
    pub fn dmsg_client(&self) -> Option<&skywire_dmsg::Client> {
        self.inner.dmsg.get()
    }

    /// The whitelist store.
    pub fn whitelist(&self) -> &WhitelistStore {
        &self.inner.whitelist
    }

    /// Whether `remote` may use the remote carriers (own key always; otherwise listed).
    pub async fn is_allowed(&self, remote: &PubKey) -> Result<bool, WhitelistError> {
        Ok(self
            .inner
            .whitelist
            .load()
            .await?
            .is_allowed(&self.inner.pk, remote))
    }

    /// Serves one accepted stream to its end: whitelist gate (remote carriers; `remote_pk` is the
    /// carrier-authenticated peer key), request, status byte, then the endpoint's RPC session.
    /// Any pty session the stream started is killed and reaped before this returns.
    pub async fn serve_stream<IO>(
        &self,
        mut io: IO,
        remote_pk: Option<PubKey>,
        carrier: Carrier,
    ) -> Result<(), HostError>
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        if carrier.is_remote() {
            let allowed = match &remote_pk {
                Some(pk) => self.is_allowed(pk).await,
                None => Ok(false),
            };
            let err = match allowed {
                Ok(true) => None,
                Ok(false) => Some(HostError::NotAllowed(remote_pk)),
                Err(e) => Some(HostError::Whitelist(e)),
            };
            if let Some(err) = err {
                if carrier == Carrier::Dmsg {
                    // pty.md 2.2: dmsg rejects with 0x01 before reading the request; TCP closes
                    // without a byte.
                    let _ = uri::write_response(&mut io, Status::REJECT).await;
                }
                return Err(err);
            }
        }
        let endpoint = match uri::read_request(&mut io).await {
            Ok(u) => uri::route(&u, carrier.endpoints_with(self.inner.sftp.is_some())),
            Err(UriError::Io(e)) => return Err(UriError::Io(e).into()),
            Err(e) => Err(e),
        };
        let endpoint = match endpoint {
            Ok(ep) => ep,
            Err(e) => {
                let _ = uri::write_response(&mut io, Status::REJECT).await;
                return Err(e.into());
            }
        };
        if endpoint.kind == EndpointKind::Proxy {
            return self.serve_proxy(io, &endpoint.query).await;
        }
        tracing::debug!(?carrier, remote = ?remote_pk, endpoint = ?endpoint.kind, "pty host: request accepted");
        uri::write_response(&mut io, Status::Accepted).await?;
        match endpoint.kind {
            EndpointKind::Pty => {
                let gateway = Arc::new(PtyGateway::new());
                let res = RpcServer::new(self.inner.pty_router.clone(), gateway.clone())
                    .serve(io)
                    .await;
                gateway.shutdown().await;
                res?;
            }
            EndpointKind::Sftp => {
                if let Some(sftp) = &self.inner.sftp {
                    sftp.serve(Box::new(io), remote_pk).await;
                }
            }
            EndpointKind::Whitelist => {
                let state = Arc::new(self.inner.whitelist.clone());
                RpcServer::new(self.inner.wl_router.clone(), state)
                    .serve(io)
                    .await?;
            }
            other => {
                // Not in any endpoint set this host serves; route() cannot return it.
                return Err(UriError::NoEndpoint(other.path().to_owned()).into());
            }
        }
        Ok(())
    }

    /// `dmsgpty/proxy` (pty.md 2.3): without a dmsg client the request is refused with `0x01`;
    /// a bad query or a failure to reach the remote host closes the stream without a byte;
    /// otherwise `0x00` and the proxied `pty` service until the stream ends.
    async fn serve_proxy<IO>(&self, mut io: IO, query: &str) -> Result<(), HostError>
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let Some(dmsg) = self.inner.dmsg.get() else {
            tracing::warn!("pty host: refusing dmsgpty/proxy: this host has no dmsg client");
            let _ = uri::write_response(&mut io, Status::REJECT).await;
            return Err(HostError::NoDmsgClient);
        };
        let (pk, port) = uri::parse_proxy_query(query)?;
        let target = format!("dmsg://{pk}:{port}");
        let remote = match tokio::time::timeout(
            PROXY_SETUP_TIMEOUT,
            PtyClient::connect_dmsg(dmsg, pk, port),
        )
        .await
        {
            Ok(Ok(c)) => c,
            Ok(Err(source)) => {
                tracing::warn!(%target, error = %source, "pty host: dmsgpty/proxy set-up failed");
                return Err(HostError::Proxy {
                    target,
                    source: Box::new(source),
                });
            }
            Err(_) => {
                tracing::warn!(%target, "pty host: dmsgpty/proxy set-up timed out");
                return Err(HostError::ProxyTimeout(target));
            }
        };
        tracing::debug!(%target, "pty host: proxy session accepted");
        uri::write_response(&mut io, Status::Accepted).await?;
        let gateway = Arc::new(proxy::ProxyGateway::new(remote));
        let res = RpcServer::new(self.inner.proxy_router.clone(), gateway.clone())
            .serve(io)
            .await;
        gateway.remote().close();
        res?;
        Ok(())
    }
}

/// The `whitelist` service (pty.md 3.3) over a [`WhitelistStore`].
pub fn whitelist_router() -> Router<WhitelistStore> {
    Router::new()
        .method::<types::WhitelistList, _, _>(|wl: Arc<WhitelistStore>, (): ()| async move {
            let list = wl.load().await.map_err(|e| error_chain(&e))?;
            Ok(list.list().to_vec())
        })
        .method::<types::WhitelistAdd, _, _>(|wl: Arc<WhitelistStore>, pks| async move {
            let out = wl.add(pks).await.map_err(|e| error_chain(&e))?;
            match out.error_text() {
                Some(text) => Err(ServiceError::new(text)),
                None => Ok(()),
            }
        })
        .method::<types::WhitelistRemove, _, _>(|wl: Arc<WhitelistStore>, pks| async move {
            wl.remove(pks).await.map_err(|e| error_chain(&e))?;
            Ok(())
        })
}

/// An error and its causes as one text (only the text travels over RPC).
fn error_chain(e: &dyn std::error::Error) -> ServiceError {
    let mut text = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        text.push_str(": ");
        text.push_str(&s.to_string());
        src = s.source();
    }
    ServiceError::new(text)
}
