//! The dmsg relay server (`dmsg-wire.md` 4.1, 4.6): accepts TCP connections, runs the XK
//! responder handshake, serves a yamux server session per client, and relays dial requests:
//! request from A -> verified -> forwarded on a new stream of B's session -> B's response checked
//! against the request -> forwarded to A -> then bytes are copied both ways unchanged (end-to-end
//! KK traffic the server cannot read). It registers its entry in discovery and refreshes it on
//! every session-count change and at least once per `update_interval`.
//!
//! Beyond the 2023 reference: a failed relay is answered with a rejecting response signed by the
//! server (the reference goes silent and leaves the dialer waiting 20 s), a second session for
//! the same client replaces the first (the reference loses both), `max_sessions` is enforced,
//! and responses that are rejections signed by the destination are forwarded to the dialer.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use skywire_cipher::{PubKey, SecKey, sha256, verify_hash};
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::disc::{DiscClient, Server as ServerPart};
use crate::error::{DmsgError, ErrorCode};
use crate::mux;
use crate::objects::{SignedRequest, SignedResponse};
use crate::session::{ObjectCipher, SessionTable, server_handshake};

/// Relay server configuration.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The server's identity.
    pub sk: SecKey,
    /// Where to listen (`127.0.0.1:0` picks a free port).
    pub local_addr: SocketAddr,
    /// The address clients dial, advertised in discovery; the bound address when `None`.
    pub public_addr: Option<String>,
    /// Discovery to register in; `None` runs without registering (tests, private relays).
    pub discovery: Option<DiscClient>,
    /// Most concurrent client sessions; more connections are closed after accept.
    pub max_sessions: usize,
    /// Longest time between two refreshes of the discovery entry.
    pub update_interval: Duration,
    /// XK handshake deadline per connection.
    pub handshake_timeout: Duration,
    /// Deadline for the request/response exchange of one dial.
    pub dial_timeout: Duration,
    /// yamux settings.
    pub mux: mux::Config,
}

impl ServerConfig {
    /// Defaults of the reference `dmsg-server` for a given identity.
    pub fn new(sk: SecKey) -> ServerConfig {
        ServerConfig {
            sk,
            local_addr: SocketAddr::from(([0, 0, 0, 0], 8081)),
            public_addr: None,
            discovery: None,
            max_sessions: 2048,
            update_interval: Duration::from_secs(60),
            handshake_timeout: Duration::from_secs(5),
            dial_timeout: Duration::from_secs(20),
            mux: mux::Config::default(),
        }
    }
}

/// Counters of a running server.
#[derive(Debug, Default)]
pub struct ServerStats {
    /// Sessions ever established.
    pub sessions_total: AtomicU64,
    /// Connections refused or failed before a session existed.
    pub handshakes_failed: AtomicU64,
    /// Dial requests received.
    pub dials_total: AtomicU64,
    /// Dials relayed successfully.
    pub dials_relayed: AtomicU64,
    /// Dials refused (bad request, unknown destination, rejected by destination, timeouts).
    pub dials_failed: AtomicU64,
    /// Payload bytes relayed (both directions).
    pub bytes_relayed: AtomicU64,
}

#[derive(Debug)]
struct ServerSession {
    mux: mux::Session,
    cipher: ObjectCipher,
}

#[derive(Debug)]
struct Shared {
    sk: SecKey,
    pk: PubKey,
    cfg: ServerConfig,
    sessions: SessionTable<ServerSession>,
    changed: Notify,
    stats: ServerStats,
    cancel: CancellationToken,
}

/// A running relay server. Dropping it does not stop it; call [`ServerHandle::shutdown`].
#[derive(Debug)]
pub struct ServerHandle {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    tasks: JoinSet<()>,
}

impl ServerHandle {
    /// Binds the listener and starts serving (and registering, if a discovery is set).
    pub async fn start(cfg: ServerConfig) -> Result<ServerHandle, DmsgError> {
        if cfg.max_sessions == 0 {
            return Err(DmsgError::Config("max_sessions must be at least 1".into()));
        }
        let listener = TcpListener::bind(cfg.local_addr)
            .await
            .map_err(|e| DmsgError::io("binding the dmsg server listener", e))?;
        let local_addr = listener
            .local_addr()
            .map_err(|e| DmsgError::io("reading the listener address", e))?;
        let shared = Arc::new(Shared {
            pk: cfg.sk.pub_key(),
            sk: cfg.sk.clone(),
            cfg,
            sessions: SessionTable::default(),
            changed: Notify::new(),
            stats: ServerStats::default(),
            cancel: CancellationToken::new(),
        });
        let mut tasks = JoinSet::new();
        tasks.spawn(accept_loop(shared.clone(), listener));
        if let Some(disc) = shared.cfg.discovery.clone() {
            let public = shared
                .cfg
                .public_addr
                .clone()
                .unwrap_or_else(|| local_addr.to_string());
            tasks.spawn(register_loop(shared.clone(), disc, public));
        }
        tracing::info!(pk = %shared.pk, addr = %local_addr, "dmsg server listening");
        Ok(ServerHandle {
            shared,
            local_addr,
            tasks,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The server's public key.
    pub fn pk(&self) -> PubKey {
        self.shared.pk
    }

    /// Current number of client sessions.
    pub fn session_count(&self) -> usize {
        self.shared.sessions.len()
    }

    /// Live counters.
    pub fn stats(&self) -> &ServerStats {
        &self.shared.stats
    }

    /// Keys of the connected clients.
    pub fn clients(&self) -> Vec<PubKey> {
        self.shared.sessions.keys()
    }

    /// Stops accepting, closes every session (GoAway), deletes the discovery entry, and waits for
    /// the server's tasks.
    pub async fn shutdown(mut self) {
        self.shared.cancel.cancel();
        for s in self.shared.sessions.drain() {
            s.mux.close().await;
        }
        while self.tasks.join_next().await.is_some() {}
    }

    /// Like [`ServerHandle::shutdown`] but abrupt: drops every connection at once, as a crash
    /// would (no GoAway, no discovery delete). For failure tests.
    pub fn kill(mut self) {
        self.shared.cancel.cancel();
        self.tasks.abort_all();
        for s in self.shared.sessions.drain() {
            s.mux.abort();
        }
    }
}

async fn accept_loop(shared: Arc<Shared>, listener: TcpListener) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = shared.cancel.cancelled() => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            r = listener.accept() => match r {
                Ok((tcp, peer)) => {
                    if shared.sessions.len() >= shared.cfg.max_sessions {
                        tracing::warn!(%peer, max = shared.cfg.max_sessions, "session limit reached, refusing connection");
                        shared.stats.handshakes_failed.fetch_add(1, Ordering::Relaxed);
                        drop(tcp);
                        continue;
                    }
                    conns.spawn(serve_conn(shared.clone(), tcp, peer));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
    conns.abort_all();
}

async fn serve_conn(shared: Arc<Shared>, mut tcp: TcpStream, peer: SocketAddr) {
    let _ = tcp.set_nodelay(true);
    let (client_pk, transport) =
        match server_handshake(&mut tcp, &shared.sk, shared.cfg.handshake_timeout).await {
            Ok(v) => v,
            Err(e) => {
                tracing::debug!(%peer, error = %e, "session handshake failed");
                shared
                    .stats
                    .handshakes_failed
                    .fetch_add(1, Ordering::Relaxed);
                return;
            }
        };
    let session = Arc::new(ServerSession {
        mux: mux::Session::server(tcp, shared.cfg.mux.clone()),
        cipher: ObjectCipher::new(transport),
    });
    let old = shared.sessions.insert(client_pk, session.clone());
    if let Some(old) = old {
        tracing::info!(client = %client_pk, "client reconnected; replacing its previous session");
        old.mux.abort();
    }
    shared.stats.sessions_total.fetch_add(1, Ordering::Relaxed);
    shared.changed.notify_one();
    tracing::debug!(client = %client_pk, %peer, "session established");

    let mut streams = JoinSet::new();
    loop {
        tokio::select! {
            _ = shared.cancel.cancelled() => break,
            Some(_) = streams.join_next(), if !streams.is_empty() => {}
            s = session.mux.accept() => match s {
                Some(stream) => {
                    streams.spawn(relay(shared.clone(), client_pk, session.clone(), stream));
                }
                None => break,
            }
        }
    }
    // Keep relaying streams that are already up until they finish or the session dies.
    let removed = shared.sessions.remove_if_same(&client_pk, &session);
    if removed {
        shared.changed.notify_one();
    }
    tracing::debug!(client = %client_pk, "session ended");
    while streams.join_next().await.is_some() {}
}

/// Relays one dial from `src` (the session that opened `a`).
async fn relay(shared: Arc<Shared>, src_pk: PubKey, src: Arc<ServerSession>, mut a: mux::Stream) {
    shared.stats.dials_total.fetch_add(1, Ordering::Relaxed);
    let timeout = shared.cfg.dial_timeout;
    let exchange = async {
        let raw = src.cipher.read(&mut a).await?;
        let req = SignedRequest::parse(raw)?;
        if let Err(e) = req.verify() {
            let code = e.error_code().unwrap_or(ErrorCode::InvalidReqSignature);
            return Err(Refusal::reject(req, code));
        }
        if req.req.src_addr.pk != src_pk {
            return Err(Refusal::reject(req, ErrorCode::InvalidSrcPk));
        }
        let Some(dst) = shared.sessions.get(&req.req.dst_addr.pk) else {
            return Err(Refusal::reject(req, ErrorCode::NoSessionToDst));
        };
        let mut b = match dst.mux.open_stream().await {
            Ok(b) => b,
            Err(_) => return Err(Refusal::reject(req, ErrorCode::NoSessionToDst)),
        };
        dst.cipher.write(&mut b, &req.raw).await?;
        let raw = dst.cipher.read(&mut b).await?;
        let resp = SignedResponse::parse(raw)?;
        // Forward acceptances and the destination's own rejections; drop anything forged.
        if resp.resp.req_hash.0 != req.hash() {
            return Err(Refusal::reject(req, ErrorCode::RespHashMismatch));
        }
        let gob = resp.raw.get(65..).unwrap_or_default();
        let sig = skywire_cipher::Sig::from_bytes(resp.raw.get(..65).unwrap_or_default())?;
        if verify_hash(&req.req.dst_addr.pk, &sha256(gob), &sig).is_err() {
            return Err(Refusal::reject(req, ErrorCode::InvalidRespSignature));
        }
        src.cipher.write(&mut a, &resp.raw).await?;
        Ok::<_, Refusal>((resp.resp.accepted, b))
    };
    let result = match tokio::time::timeout(timeout, exchange).await {
        Ok(r) => r,
        Err(_) => Err(Refusal::Plain(DmsgError::Timeout(format!(
            "dial exchange took longer than {timeout:?}"
        )))),
    };
    match result {
        Ok((true, mut b)) => {
            shared.stats.dials_relayed.fetch_add(1, Ordering::Relaxed);
            // Count as bytes move: Go peers end relays by dropping TCP, so totals of a clean
            // finish would miss most traffic.
            let counter = &shared.stats.bytes_relayed;
            let mut ca = Counted {
                io: &mut a,
                counter,
            };
            let mut cb = Counted {
                io: &mut b,
                counter,
            };
            let r =
                tokio::io::copy_bidirectional_with_sizes(&mut ca, &mut cb, 64 * 1024, 64 * 1024)
                    .await;
            if let Err(e) = r {
                tracing::debug!(error = %e, "relay ended with an error");
                a.reset();
                b.reset();
            }
        }
        Ok((false, _)) => {
            shared.stats.dials_failed.fetch_add(1, Ordering::Relaxed);
        }
        Err(Refusal::Reject(req, code)) => {
            shared.stats.dials_failed.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(src = %src_pk, dst = %req.req.dst_addr, %code, "refusing dial");
            if let Ok(resp) = SignedResponse::reject(&req, code, &shared.sk) {
                let _ = src.cipher.write(&mut a, &resp.raw).await;
            }
        }
        Err(Refusal::Plain(e)) => {
            shared.stats.dials_failed.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(src = %src_pk, error = %e, "dial failed");
            a.reset();
        }
    }
}

/// Adds every byte read from `io` to `counter`.
struct Counted<'a, S> {
    io: &'a mut S,
    counter: &'a AtomicU64,
}

impl<S: AsyncRead + Unpin> AsyncRead for Counted<'_, S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut *self.io).poll_read(cx, buf);
        let n = buf.filled().len().saturating_sub(before);
        self.counter.fetch_add(n as u64, Ordering::Relaxed);
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counted<'_, S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut *self.io).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut *self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut *self.io).poll_shutdown(cx)
    }
}

enum Refusal {
    Reject(Box<SignedRequest>, ErrorCode),
    Plain(DmsgError),
}

impl Refusal {
    fn reject(req: SignedRequest, code: ErrorCode) -> Refusal {
        Refusal::Reject(Box::new(req), code)
    }
}

impl<E: Into<DmsgError>> From<E> for Refusal {
    fn from(e: E) -> Refusal {
        Refusal::Plain(e.into())
    }
}

impl From<skywire_cipher::CipherError> for DmsgError {
    fn from(e: skywire_cipher::CipherError) -> DmsgError {
        DmsgError::Cipher(e)
    }
}

async fn register_loop(shared: Arc<Shared>, disc: DiscClient, public: String) {
    let mut backoff = Duration::from_secs(1);
    loop {
        let available = shared
            .cfg
            .max_sessions
            .saturating_sub(shared.sessions.len());
        let available = i64::try_from(available).unwrap_or(i64::MAX);
        let result = disc
            .register_or_update(&shared.sk, |e| {
                e.client = None;
                e.server = Some(ServerPart::new(public.clone(), available));
            })
            .await;
        let wait = match result {
            Ok(_) => {
                backoff = Duration::from_secs(1);
                tracing::debug!(available, "server entry updated");
                shared.cfg.update_interval
            }
            Err(e) => {
                tracing::warn!(error = %e, "updating the server entry in discovery failed");
                let w = backoff;
                backoff = (backoff.mul_f64(1.3)).min(Duration::from_secs(20));
                w
            }
        };
        tokio::select! {
            _ = shared.cancel.cancelled() => break,
            _ = shared.changed.notified() => {
                // Coalesce bursts of session changes into one update.
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            _ = tokio::time::sleep(wait) => {}
        }
    }
    if let Err(e) = disc.deregister(&shared.pk).await {
        tracing::debug!(error = %e, "deleting the server entry failed");
    }
}
