//! The pty host as a library (pty.md 2, 3.3, 5): [`PtyHost`] owns the host identity, the whitelist
//! store and the RPC method tables, and serves one accepted stream per
//! [`serve_stream`](PtyHost::serve_stream) call: whitelist gate for remote carriers → request URI →
//! status byte → `net/rpc` with a fresh [`PtyGateway`] (`dmsgpty/pty`) or the whitelist service
//! (`dmsgpty/whitelist`, control socket only). The carrier listeners (dmsg port, noise-XK TCP,
//! unix control socket) with their shutdown handle are in [`listeners`].
//!
//! Not served yet: `dmsgpty/proxy` and `dmsgpty/sftp` (answered with `0x01`, which Go clients
//! report as an older host).

pub mod listeners;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use skywire_cipher::{PubKey, SecKey};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::gateway::{PtyGateway, pty_router};
use crate::rpc::{Router, RpcError, RpcServer, ServiceError};
use crate::types;
use crate::uri::{self, EndpointKind, Status, UriError};
use crate::whitelist::{AddOutcome, Whitelist, WhitelistError, WhitelistFile};

pub use listeners::HostHandle;

/// Handshake bound of the TCP listener (pty.md 5.1).
pub const TCP_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

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
    /// The endpoints this host serves on the carrier.
    pub fn endpoints(self) -> &'static [EndpointKind] {
        match self {
            Carrier::Control => &[EndpointKind::Pty, EndpointKind::Whitelist],
            Carrier::Dmsg | Carrier::Tcp => uri::REMOTE_ENDPOINTS_G1,
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

/// Library configuration of a [`PtyHost`] (the CLI builds it from [`crate::HostConfig`]).
#[derive(Debug, Clone)]
pub struct PtyHostConfig {
    /// The host's identity (noise-XK static key on TCP; the own key is always allowed).
    pub sk: SecKey,
    /// The whitelist.
    pub whitelist: WhitelistStore,
    /// Bound on the noise-XK handshake of the TCP listener.
    pub tcp_handshake_timeout: Duration,
}

impl PtyHostConfig {
    /// A config with `sk`, an empty in-memory whitelist and the default timeouts.
    pub fn new(sk: SecKey) -> Self {
        PtyHostConfig {
            sk,
            whitelist: WhitelistStore::memory([]),
            tcp_handshake_timeout: TCP_HANDSHAKE_TIMEOUT,
        }
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
    pty_router: Arc<Router<PtyGateway>>,
    wl_router: Arc<Router<WhitelistStore>>,
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
        PtyHost {
            inner: Arc::new(HostInner {
                sk: config.sk,
                pk,
                whitelist: config.whitelist,
                tcp_handshake_timeout: config.tcp_handshake_timeout,
                pty_router: Arc::new(pty_router()),
                wl_router: Arc::new(whitelist_router()),
            }),
        }
    }

    /// The host's public key.
    pub fn pk(&self) -> PubKey {
        self.inner.pk
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
            Ok(u) => uri::route(&u, carrier.endpoints()),
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
