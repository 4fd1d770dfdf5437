//! The dmsg client (`dmsg-wire.md` 4.1, 4.3, 4.6, 5.5): keeps noise-XK + yamux sessions to relay
//! servers, registers the servers it is reachable through in its discovery entry, dials
//! `(pk, port)` through a server both ends share (with an end-to-end KK handshake carried in the
//! signed dial objects), and hands streams dialled to its ports to [`Listener`]s.
//!
//! Differences from the 2023 reference, all invisible on the wire:
//! * dead sessions are noticed (yamux keepalive, connection loss) and replaced at once, and the
//!   discovery entry follows; the reference keeps half-dead sessions forever;
//! * failed dials return quickly with the reason: unknown key, no delegated servers, no common
//!   server, the server's or the listener's signed rejection; the reference waits 20 s;
//! * a listener with a full accept queue makes the dial wait for room (up to `accept_wait`) and
//!   then rejects it (401), instead of accepting and then dropping the stream.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use skywire_cipher::{PubKey, SecKey};
use skywire_noise::{Handshake, NoiseStream};
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::addr::Addr;
use crate::disc::{Client as ClientPart, DiscClient, Entry, now_unix_nanos};
use crate::error::{DmsgError, ErrorCode};
use crate::mux;
use crate::objects::{SignedRequest, SignedResponse, StreamRequest};
use crate::porter::Porter;
use crate::session::{ObjectCipher, SessionTable, client_handshake, connect_tcp};
use crate::stream::{DmsgStream, Listener};

/// Client configuration.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The client's identity.
    pub sk: SecKey,
    /// The discovery service.
    pub discovery: DiscClient,
    /// Sessions to keep open (the reference's `MinSessions`, default 1).
    pub min_sessions: usize,
    /// Keep sessions only with these servers (by key); `None` uses any server discovery lists.
    /// Dials may still open sessions to other servers when `dial_on_demand` is set.
    pub servers: Option<Vec<PubKey>>,
    /// Open a session on demand to a server of the peer when no session is shared (reference
    /// behaviour). When false a dial fails with [`DmsgError::NoCommonServer`].
    pub dial_on_demand: bool,
    /// XK handshake deadline.
    pub handshake_timeout: Duration,
    /// TCP connect deadline.
    pub connect_timeout: Duration,
    /// Deadline of the request/response exchange of a dial (reference `HandshakeTimeout`).
    pub dial_timeout: Duration,
    /// Per-listener queue of accepted streams (reference `AcceptBufferSize`: 20 in 2023, 256
    /// since 2025).
    pub accept_buffer: usize,
    /// How long an incoming dial waits for room in a full listener queue before it is refused
    /// with 401.
    pub accept_wait: Duration,
    /// Wait after a session handshake before opening the first stream on it: a 2023 Go server
    /// rejects (error 203, connection closed) a session whose first yamux frame arrives in the
    /// same read as XK message 3. The Go server reads message 3 as soon as it arrives, so a few
    /// milliseconds between the two writes suffice (by hand against the reference on loopback:
    /// 5/20 sessions failed with no delay, 20/20 worked with 1, 10 and 100 ms). Our own server
    /// does not need it; 0 is fine there.
    pub first_stream_delay: Duration,
    /// First retry delay after a failed attempt to reach `min_sessions`; grows ×1.3 up to 60 s.
    pub retry_initial: Duration,
    /// yamux settings.
    pub mux: mux::Config,
}

impl ClientConfig {
    /// Defaults of the reference for an identity and a discovery.
    pub fn new(sk: SecKey, discovery: DiscClient) -> ClientConfig {
        ClientConfig {
            sk,
            discovery,
            min_sessions: 1,
            servers: None,
            dial_on_demand: true,
            handshake_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(10),
            dial_timeout: Duration::from_secs(20),
            accept_buffer: 256,
            accept_wait: Duration::from_secs(5),
            first_stream_delay: Duration::from_millis(20),
            retry_initial: Duration::from_secs(1),
            mux: mux::Config::default(),
        }
    }
}

#[derive(Debug)]
struct ClientSession {
    server: PubKey,
    mux: mux::Session,
    cipher: ObjectCipher,
    opened_at: Instant,
    ready_at: Instant,
}

impl ClientSession {
    /// Opened less than a second ago.
    fn young(&self) -> bool {
        self.opened_at.elapsed() < Duration::from_secs(1)
    }
}

type ListenerTx = mpsc::Sender<DmsgStream>;

#[derive(Debug)]
struct Inner {
    sk: SecKey,
    pk: PubKey,
    cfg: ClientConfig,
    sessions: SessionTable<ClientSession>,
    listeners: Mutex<HashMap<u16, ListenerTx>>,
    porter: Porter,
    changed: Notify,
    /// Number of sessions the discovery entry currently lists (after a successful update).
    registered: watch::Sender<Option<Vec<PubKey>>>,
    cancel: CancellationToken,
    tasks: Mutex<JoinSet<()>>,
}

impl Inner {
    fn session_keys(&self) -> Vec<PubKey> {
        self.sessions.keys()
    }

    fn session(&self, server: &PubKey) -> Option<Arc<ClientSession>> {
        self.sessions.get(server).filter(|s| !s.mux.is_closed())
    }

    fn spawn<F: std::future::Future<Output = ()> + Send + 'static>(&self, f: F) {
        self.tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .spawn(f);
    }
}

/// Keeps a listener's port registered; removes it when the [`Listener`] is dropped.
#[derive(Debug)]
pub(crate) struct ListenerRegistration {
    inner: std::sync::Weak<Inner>,
    port: u16,
}

impl Drop for ListenerRegistration {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.upgrade() {
            inner
                .listeners
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&self.port);
        }
    }
}

/// A running dmsg client. Cheap to clone; [`Client::close`] stops it.
#[derive(Debug, Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl Client {
    /// Starts the client: it connects to servers from discovery in the background and keeps
    /// `min_sessions` sessions. Use [`Client::ready`] to wait for the first registration.
    pub fn start(cfg: ClientConfig) -> Client {
        let (registered, _) = watch::channel(None);
        let inner = Arc::new(Inner {
            pk: cfg.sk.pub_key(),
            sk: cfg.sk.clone(),
            cfg,
            sessions: SessionTable::default(),
            listeners: Mutex::new(HashMap::new()),
            porter: Porter::new(),
            changed: Notify::new(),
            registered,
            cancel: CancellationToken::new(),
            tasks: Mutex::new(JoinSet::new()),
        });
        inner.spawn(maintain(inner.clone()));
        Client { inner }
    }

    /// Our public key.
    pub fn pk(&self) -> PubKey {
        self.inner.pk
    }

    /// Keys of the servers we hold sessions with.
    pub fn servers(&self) -> Vec<PubKey> {
        self.inner.session_keys()
    }

    /// Waits until the discovery entry lists at least `min_sessions` servers (or `timeout`).
    pub async fn ready(&self, timeout: Duration) -> Result<(), DmsgError> {
        let want = self.inner.cfg.min_sessions.max(1);
        let mut rx = self.inner.registered.subscribe();
        let wait = rx.wait_for(|r| r.as_ref().is_some_and(|s| s.len() >= want));
        match tokio::time::timeout(timeout, wait).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(DmsgError::Closed),
            Err(_) => Err(DmsgError::Timeout(format!(
                "no registration through {want} dmsg server(s) within {timeout:?}"
            ))),
        }
    }

    /// Waits until the registered entry satisfies `pred` (for example, a given server set).
    pub async fn wait_registered<F>(
        &self,
        timeout: Duration,
        mut pred: F,
    ) -> Result<Vec<PubKey>, DmsgError>
    where
        F: FnMut(&[PubKey]) -> bool,
    {
        let mut rx = self.inner.registered.subscribe();
        let wait = rx.wait_for(|r| r.as_ref().is_some_and(|s| pred(s)));
        match tokio::time::timeout(timeout, wait).await {
            Ok(Ok(v)) => Ok(v.clone().unwrap_or_default()),
            Ok(Err(_)) => Err(DmsgError::Closed),
            Err(_) => Err(DmsgError::Timeout(format!(
                "registration condition not met within {timeout:?}"
            ))),
        }
    }

    /// Listens on `port` (1..=65535).
    pub fn listen(&self, port: u16) -> Result<Listener, DmsgError> {
        if self.inner.cancel.is_cancelled() {
            return Err(DmsgError::Closed);
        }
        let guard = self
            .inner
            .porter
            .reserve(port)
            .ok_or(DmsgError::Code(ErrorCode::PortOccupied))?;
        let (tx, rx) = mpsc::channel(self.inner.cfg.accept_buffer.max(1));
        self.inner
            .listeners
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(port, tx);
        Ok(Listener {
            addr: Addr::new(self.inner.pk, port),
            rx,
            _port: guard,
            _registration: ListenerRegistration {
                inner: Arc::downgrade(&self.inner),
                port,
            },
        })
    }

    /// Dials `remote` and returns an end-to-end encrypted stream.
    pub async fn dial(&self, remote: Addr) -> Result<DmsgStream, DmsgError> {
        let inner = &self.inner;
        if inner.cancel.is_cancelled() {
            return Err(DmsgError::Closed);
        }
        if remote.port == 0 {
            return Err(DmsgError::Code(ErrorCode::InvalidDstPort));
        }
        if remote.pk.is_null() {
            return Err(DmsgError::Code(ErrorCode::InvalidDstPk));
        }
        let entry = inner.cfg.discovery.entry(&remote.pk).await.map_err(|e| {
            if e.is_not_found() {
                DmsgError::Code(ErrorCode::EntryNotFound)
            } else {
                DmsgError::Discovery(e)
            }
        })?;
        let servers = entry
            .client
            .as_ref()
            .ok_or(DmsgError::Code(ErrorCode::EntryNotClient))?
            .delegated_servers
            .clone()
            .unwrap_or_default();
        if servers.is_empty() {
            return Err(DmsgError::Code(ErrorCode::NoDelegatedServers));
        }
        // Shared servers first, then (if allowed) the peer's other servers on demand.
        let (shared, other): (Vec<PubKey>, Vec<PubKey>) =
            servers.iter().partition(|s| inner.session(s).is_some());
        let mut candidates = shared;
        if inner.cfg.dial_on_demand {
            candidates.extend(other);
        }
        if candidates.is_empty() {
            return Err(DmsgError::NoCommonServer {
                remote: remote.pk,
                servers,
                ours: inner.session_keys(),
            });
        }
        let tried = candidates.len();
        let mut last = None;
        for server in candidates {
            let session = match inner.session(&server) {
                Some(s) => s,
                None => {
                    match open_session_by_key(inner, server, inner.cfg.first_stream_delay).await {
                        Ok(s) => s,
                        Err(e) => {
                            tracing::debug!(%server, error = %e, "cannot open a session to the peer's server");
                            last = Some(e);
                            continue;
                        }
                    }
                }
            };
            let mut result = dial_via(inner, &session, remote).await;
            // A session that died right after its handshake was most likely refused by a 2023 Go
            // server for the extra-bytes rule (see `first_stream_delay`): retry once on a new
            // session with a generous delay.
            if result.is_err() && session.mux.is_closed() && session.young() {
                tracing::debug!(%server, "new session closed at once; retrying with a longer delay");
                inner.sessions.remove_if_same(&server, &session);
                if let Ok(retry) =
                    open_session_by_key(inner, server, RETRY_FIRST_STREAM_DELAY).await
                {
                    result = dial_via(inner, &retry, remote).await;
                }
            }
            match result {
                Ok(s) => return Ok(s),
                Err(e) => {
                    tracing::debug!(%server, %remote, error = %e, "dial via server failed");
                    let definitive = matches!(
                        e.error_code(),
                        Some(ErrorCode::NoListener | ErrorCode::AcceptQueueFull)
                    ) && matches!(e, DmsgError::Code(_));
                    if definitive {
                        return Err(e);
                    }
                    last = Some(e);
                }
            }
        }
        let last = last.unwrap_or(DmsgError::Code(ErrorCode::CannotConnectToDelegated));
        if tried == 1 {
            Err(last)
        } else {
            Err(DmsgError::AllServersFailed {
                remote: remote.pk,
                tried,
                last: Box::new(last),
            })
        }
    }

    /// Sends an arbitrary signed request through the session with `server` and returns the
    /// verified response. For protocol tests (forged or malformed requests); applications use
    /// [`Client::dial`].
    #[doc(hidden)]
    pub async fn send_request_for_tests(
        &self,
        server: PubKey,
        req: SignedRequest,
    ) -> Result<SignedResponse, DmsgError> {
        let session = self
            .inner
            .session(&server)
            .ok_or(DmsgError::Code(ErrorCode::SessionClosed))?;
        let remote = req.req.dst_addr;
        let (_stream, resp) = exchange(&self.inner, &session, &req, remote).await?;
        Ok(resp)
    }

    /// Stops the client: deletes its discovery entry, closes its sessions and listeners.
    pub async fn close(&self) {
        if self.inner.cancel.is_cancelled() {
            return;
        }
        self.inner.cancel.cancel();
        let disc = &self.inner.cfg.discovery;
        if let Err(e) = disc.deregister(&self.inner.pk).await {
            tracing::debug!(error = %e, "deleting the client entry failed");
        }
        for s in self.inner.sessions.drain() {
            s.mux.close().await;
        }
        self.inner
            .listeners
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        let mut tasks = std::mem::take(
            &mut *self
                .inner
                .tasks
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
    }
}

fn allowed(cfg: &ClientConfig, server: &PubKey) -> bool {
    cfg.servers
        .as_ref()
        .is_none_or(|list| list.contains(server))
}

/// One dial through an established session.
async fn dial_via(
    inner: &Arc<Inner>,
    session: &Arc<ClientSession>,
    remote: Addr,
) -> Result<DmsgStream, DmsgError> {
    let wait = session.ready_at.saturating_duration_since(Instant::now());
    if !wait.is_zero() {
        tokio::time::sleep(wait).await;
    }
    let port = inner
        .porter
        .reserve_ephemeral()
        .ok_or(DmsgError::Code(ErrorCode::PortOccupied))?;
    let local = Addr::new(inner.pk, port.port());
    let mut hs = Handshake::kk_initiator(&inner.sk, remote.pk).map_err(DmsgError::Noise)?;
    let mut msg1 = Vec::with_capacity(64);
    hs.write_message(&[], &mut msg1).map_err(DmsgError::Noise)?;
    let req = SignedRequest::sign(
        StreamRequest {
            timestamp: now_unix_nanos(),
            src_addr: local,
            dst_addr: remote,
            noise_msg: msg1,
        },
        &inner.sk,
    )?;
    let (stream, resp) = exchange(inner, session, &req, remote).await?;
    hs.read_message(&resp.resp.noise_msg)
        .map_err(DmsgError::Noise)?;
    let transport = hs.into_transport().map_err(DmsgError::Noise)?;
    Ok(DmsgStream::new(
        NoiseStream::new(stream, transport, remote.pk),
        local,
        remote,
        Some(port),
    ))
}

/// Sends a signed request on a new stream of `session` and returns the stream with the
/// verified, accepting response.
async fn exchange(
    inner: &Arc<Inner>,
    session: &Arc<ClientSession>,
    req: &SignedRequest,
    remote: Addr,
) -> Result<(mux::Stream, SignedResponse), DmsgError> {
    let mut stream = session.mux.open_stream().await.map_err(DmsgError::Mux)?;
    let timeout = inner.cfg.dial_timeout;
    let round_trip = async {
        session.cipher.write(&mut stream, &req.raw).await?;
        let raw = session.cipher.read(&mut stream).await?;
        SignedResponse::parse(raw)
    };
    let resp = match tokio::time::timeout(timeout, round_trip).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            stream.reset();
            return Err(e);
        }
        Err(_) => {
            stream.reset();
            return Err(DmsgError::Timeout(format!(
                "{remote} did not answer the dial within {timeout:?}"
            )));
        }
    };
    if let Err(e) = resp.verify(req) {
        stream.reset();
        // A rejection signed by the server itself (our extension) carries its reason.
        if !resp.resp.accepted && resp.verify_signer(req, &session.server).is_ok() {
            return Err(DmsgError::ServerRejected {
                server: session.server,
                code: ErrorCode::from_u16(resp.resp.err_code),
            });
        }
        return Err(e);
    }
    Ok((stream, resp))
}

/// Answers a dial request that a server forwarded on `stream`.
async fn accept_incoming(inner: Arc<Inner>, session: Arc<ClientSession>, mut stream: mux::Stream) {
    let timeout = inner.cfg.dial_timeout;
    match tokio::time::timeout(timeout, negotiate(&inner, &session, &mut stream)).await {
        Ok(Ok(Some((permit, transport, req)))) => {
            let src = req.req.src_addr;
            permit.send(DmsgStream::new(
                NoiseStream::new(stream, transport, src.pk),
                req.req.dst_addr,
                src,
                None,
            ));
        }
        // Rejected with a signed response; dropping the stream closes it.
        Ok(Ok(None)) => {}
        Ok(Err(e)) => {
            tracing::debug!(server = %session.server, error = %e, "refused incoming dial");
            stream.reset();
        }
        Err(_) => {
            tracing::debug!(server = %session.server, "incoming dial timed out");
            stream.reset();
        }
    }
}

type Negotiated = (
    mpsc::OwnedPermit<DmsgStream>,
    skywire_noise::Transport,
    SignedRequest,
);

/// Reads and checks the request, runs the KK responder and writes the response (or a signed
/// rejection when no listener can take the stream).
async fn negotiate(
    inner: &Arc<Inner>,
    session: &Arc<ClientSession>,
    stream: &mut mux::Stream,
) -> Result<Option<Negotiated>, DmsgError> {
    let raw = session.cipher.read(stream).await?;
    let req = SignedRequest::parse(raw)?;
    req.verify()?;
    if req.req.dst_addr.pk != inner.pk {
        return Err(DmsgError::Code(ErrorCode::InvalidDstPk));
    }
    let tx = inner
        .listeners
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&req.req.dst_addr.port)
        .cloned();
    // A full queue makes the dialer wait a little (like a TCP SYN backlog) before it is refused.
    let permit = match tx {
        None => Err(ErrorCode::NoListener),
        Some(tx) => match tokio::time::timeout(inner.cfg.accept_wait, tx.reserve_owned()).await {
            Ok(Ok(p)) => Ok(p),
            Ok(Err(_)) => Err(ErrorCode::NoListener),
            Err(_) => Err(ErrorCode::AcceptQueueFull),
        },
    };
    let permit = match permit {
        Ok(p) => p,
        Err(code) => {
            let resp = SignedResponse::reject(&req, code, &inner.sk)?;
            session.cipher.write(stream, &resp.raw).await?;
            return Ok(None);
        }
    };
    let mut hs =
        Handshake::kk_responder(&inner.sk, req.req.src_addr.pk).map_err(DmsgError::Noise)?;
    hs.read_message(&req.req.noise_msg)
        .map_err(DmsgError::Noise)?;
    let mut msg2 = Vec::with_capacity(64);
    hs.write_message(&[], &mut msg2).map_err(DmsgError::Noise)?;
    let resp = SignedResponse::accept(&req, msg2, &inner.sk)?;
    session.cipher.write(stream, &resp.raw).await?;
    let transport = hs.into_transport().map_err(DmsgError::Noise)?;
    Ok(Some((permit, transport, req)))
}

/// Opens a session to `server` after looking up its address in discovery.
/// Delay before the first stream when retrying a session a Go server refused (see
/// [`ClientConfig::first_stream_delay`]).
const RETRY_FIRST_STREAM_DELAY: Duration = Duration::from_millis(150);

async fn open_session_by_key(
    inner: &Arc<Inner>,
    server: PubKey,
    first_stream_delay: Duration,
) -> Result<Arc<ClientSession>, DmsgError> {
    let entry = inner.cfg.discovery.entry(&server).await.map_err(|e| {
        if e.is_not_found() {
            DmsgError::Code(ErrorCode::EntryNotFound)
        } else {
            DmsgError::Discovery(e)
        }
    })?;
    open_session(inner, &entry, first_stream_delay).await
}

/// Connects, handshakes and registers a session with the server of `entry`.
async fn open_session(
    inner: &Arc<Inner>,
    entry: &Entry,
    first_stream_delay: Duration,
) -> Result<Arc<ClientSession>, DmsgError> {
    let server = entry.static_pk;
    if let Some(s) = inner.session(&server) {
        return Ok(s);
    }
    let address = entry
        .server
        .as_ref()
        .map(|s| s.address.clone())
        .filter(|a| !a.is_empty())
        .ok_or(DmsgError::Code(ErrorCode::EntryNotServer))?;
    let mut tcp = connect_tcp(&address, inner.cfg.connect_timeout).await?;
    let transport =
        client_handshake(&mut tcp, &inner.sk, server, inner.cfg.handshake_timeout).await?;
    let session = Arc::new(ClientSession {
        server,
        mux: mux::Session::client(tcp, inner.cfg.mux.clone()),
        cipher: ObjectCipher::new(transport),
        opened_at: Instant::now(),
        ready_at: Instant::now() + first_stream_delay,
    });
    let previous = inner.sessions.insert(server, session.clone());
    if let Some(prev) = previous {
        prev.mux.abort();
    }
    tracing::debug!(%server, %address, "dmsg session established");
    inner.spawn(serve_session(inner.clone(), session.clone()));
    inner.changed.notify_one();
    Ok(session)
}

/// Accepts the streams a server opens on `session` until the session ends, then forgets it.
async fn serve_session(inner: Arc<Inner>, session: Arc<ClientSession>) {
    let mut incoming = JoinSet::new();
    loop {
        tokio::select! {
            _ = inner.cancel.cancelled() => break,
            Some(_) = incoming.join_next(), if !incoming.is_empty() => {}
            s = session.mux.accept() => match s {
                Some(stream) => {
                    incoming.spawn(accept_incoming(inner.clone(), session.clone(), stream));
                }
                None => break,
            }
        }
    }
    let removed = inner.sessions.remove_if_same(&session.server, &session);
    if removed {
        if !inner.cancel.is_cancelled() {
            tracing::info!(server = %session.server, "dmsg session lost");
        }
        inner.changed.notify_one();
    }
    incoming.abort_all();
}

/// Keeps `min_sessions` sessions and the discovery entry in sync with them.
async fn maintain(inner: Arc<Inner>) {
    let mut retry = inner.cfg.retry_initial;
    let mut published: Option<Vec<PubKey>> = None;
    loop {
        if inner.cancel.is_cancelled() {
            return;
        }
        let mut short = false;
        if inner.session_keys().len() < inner.cfg.min_sessions {
            match inner.cfg.discovery.available_servers().await {
                Ok(list) => {
                    for entry in list {
                        if inner.session_keys().len() >= inner.cfg.min_sessions {
                            break;
                        }
                        if !allowed(&inner.cfg, &entry.static_pk)
                            || inner.session(&entry.static_pk).is_some()
                        {
                            continue;
                        }
                        if let Err(e) =
                            open_session(&inner, &entry, inner.cfg.first_stream_delay).await
                        {
                            tracing::debug!(server = %entry.static_pk, error = %e, "cannot open a session");
                        }
                    }
                }
                Err(e) => tracing::debug!(error = %e, "cannot list dmsg servers"),
            }
            short = inner.session_keys().len() < inner.cfg.min_sessions;
        }
        let keys = inner.session_keys();
        let mut update_failed = false;
        if published.as_ref() != Some(&keys) && !keys.is_empty() {
            let list = keys.clone();
            let result = inner
                .cfg
                .discovery
                .register_or_update(&inner.sk, |e| {
                    e.server = None;
                    e.client = Some(ClientPart {
                        delegated_servers: Some(list.clone()),
                    });
                })
                .await;
            match result {
                Ok(_) => {
                    tracing::debug!(servers = ?keys, "client entry updated");
                    published = Some(keys.clone());
                    inner.registered.send_replace(Some(keys));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "updating the client entry in discovery failed");
                    update_failed = true;
                }
            }
        }
        let wait = if short || update_failed {
            let w = retry;
            retry = retry.mul_f64(1.3).min(Duration::from_secs(60));
            w
        } else {
            retry = inner.cfg.retry_initial;
            Duration::from_secs(3600)
        };
        tokio::select! {
            _ = inner.cancel.cancelled() => return,
            _ = inner.changed.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
}
