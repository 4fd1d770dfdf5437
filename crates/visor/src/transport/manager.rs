//! The tokio [`TransportManager`]: dials and accepts stcp (direct noise-KK TCP) and dmsg
//! transports, runs the skywire handshake and the settlement, owns every live carrier in one
//! task each (packets read, parsed and counted; writes go through a channel), re-dials
//! persistent transports with backoff, and reports [`TransportSummary`] lists.
//!
//! Choices (see also the crate's README row):
//! * Incoming stcp transports are accepted from any key that completes the handshake, also
//!   keys missing from `pk_table` (the reference does the same); they are labelled `user`, as
//!   in the reference.
//! * Our responder also refuses a Frame2 whose destination key is not ours (the reference only
//!   checks the port; a wrong key would fail in noise KK anyway, this gives a clear message).
//! * Two carriers for one transport ID (both sides dialled at once, or a peer that restarted):
//!   the side with the lower key keeps the older one, the other side keeps the newer one, as
//!   the reference's managed transport does.
//! * Transport discovery registration (6.3) is not done: there is no transport discovery in
//!   this project yet. Byte counters count payload bytes (headers excluded), as the reference.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use skywire_cipher::{PubKey, SecKey};
use skywire_dmsg::{Addr, Client};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};
use uuid::Uuid;

use super::TransportError;
use super::entry::{Entry, LABEL_USER, MAX_SETTLEMENT_LINE, SettlementResponse, SignedEntry};
use super::handshake::{
    FRAME0, Frame1, Frame2, Frame3, HandshakeError, HsAddr, MAX_LINE, MIN_EPHEMERAL_PORT,
    NONCE_SIZE, TRANSPORT_PORT, check_frame0,
};
use super::kk::{KK_TIMEOUT, kk_wrap};
use super::packet::{HEADER_LEN, Header, Packet, PacketBody};

/// Transport type of direct noise-TCP transports.
pub const STCP: &str = "stcp";
/// Transport type of transports over a dmsg stream.
pub const DMSG: &str = "dmsg";
/// Deadline of the skywire handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Deadline of the settlement.
pub const SETTLEMENT_TIMEOUT: Duration = Duration::from_secs(20);
/// First and largest pause between re-dials of a persistent transport.
const REDIAL_MIN: Duration = Duration::from_millis(200);
const REDIAL_MAX: Duration = Duration::from_secs(10);
/// How often a persistent loop looks again even without a change notification.
const PERSISTENT_RECHECK: Duration = Duration::from_secs(5);
/// Outgoing packets queued per transport.
const WRITE_QUEUE: usize = 256;

/// Configuration of a [`TransportManager`].
#[derive(Debug, Clone)]
pub struct TransportConfig {
    /// Our identity.
    pub sk: SecKey,
    /// stcp peers: key -> `host:port`.
    pub pk_table: BTreeMap<PubKey, String>,
    /// stcp listening address (`":7777"`, `"127.0.0.1:0"`); `None` = no listener.
    pub stcp_listen: Option<String>,
    /// A running dmsg client: enables dmsg transports (dial and listen on dmsg port 45).
    pub dmsg: Option<Client>,
    /// Transports re-dialled forever: (remote key, type).
    pub persistent: Vec<(PubKey, String)>,
}

impl TransportConfig {
    /// A config for `sk`: empty pk_table, no listener, no dmsg, nothing persistent.
    pub fn new(sk: SecKey) -> TransportConfig {
        TransportConfig {
            sk,
            pk_table: BTreeMap::new(),
            stcp_listen: None,
            dmsg: None,
            persistent: Vec::new(),
        }
    }
}

impl Default for TransportConfig {
    /// Like [`TransportConfig::new`] with a freshly generated key.
    fn default() -> Self {
        TransportConfig::new(SecKey::generate())
    }
}

/// Byte counters of a transport (`{"recv","sent"}` as the reference's log entry).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransportLog {
    /// Payload bytes received.
    #[serde(rename = "recv")]
    pub recv_bytes: u64,
    /// Payload bytes sent.
    #[serde(rename = "sent")]
    pub sent_bytes: u64,
}

/// One transport as listed (the reference's `TransportSummary` keys first, then ours).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransportSummary {
    /// Transport ID.
    pub id: Uuid,
    /// Our key.
    pub local_pk: PubKey,
    /// The peer's key.
    pub remote_pk: PubKey,
    /// `stcp` or `dmsg`.
    #[serde(rename = "type")]
    pub tp_type: String,
    /// Byte counters.
    pub log: TransportLog,
    /// Created by a transport-setup node (never, here).
    pub is_setup: bool,
    /// `user` (added or accepted), `automatic`, `skycoin`.
    pub label: String,
    /// The carrier is up (listed transports always are; a failed one leaves the list).
    pub is_up: bool,
    /// Whether we dialled it.
    pub initiator: bool,
    /// Unix time (seconds) when it was established.
    pub created_at: u64,
    /// The peer's carrier address: `ip:port` for stcp, `pk:port` for dmsg.
    pub remote_addr: String,
}

type BoxCarrier = Box<dyn Carrier>;

/// A byte stream a transport runs on.
trait Carrier: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Carrier for T {}

#[derive(Debug, Default)]
struct Counters {
    recv: AtomicU64,
    sent: AtomicU64,
}

/// Bytes for the writer, and how many of them are packet payload (for the counters).
#[derive(Debug)]
struct Outgoing {
    bytes: Vec<u8>,
    payload: u64,
}

#[derive(Debug)]
struct Managed {
    generation: u64,
    entry: Entry,
    remote: PubKey,
    remote_addr: String,
    initiator: bool,
    created_at: u64,
    counters: Arc<Counters>,
    cancel: CancellationToken,
    tx: mpsc::Sender<Outgoing>,
    done: watch::Receiver<()>,
}

#[derive(Debug)]
struct Inner {
    sk: SecKey,
    pk: PubKey,
    pk_table: BTreeMap<PubKey, String>,
    dmsg: Option<Client>,
    stcp_addr: Option<SocketAddr>,
    tps: Mutex<HashMap<Uuid, Managed>>,
    next_gen: AtomicU64,
    cancel: CancellationToken,
    tasks: Mutex<JoinSet<()>>,
    changed: Notify,
}

/// Stcp and dmsg transports of one visor. See the module docs.
#[derive(Debug)]
pub struct TransportManager {
    inner: Arc<Inner>,
}

impl Drop for TransportManager {
    fn drop(&mut self) {
        self.inner.cancel.cancel();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `":7777"` -> `"0.0.0.0:7777"` (Go's "all interfaces" form).
fn listen_addr(s: &str) -> String {
    if s.starts_with(':') {
        format!("0.0.0.0{s}")
    } else {
        s.to_owned()
    }
}

impl TransportManager {
    /// Binds the stcp listener (if configured), listens on dmsg port 45 (if a dmsg client is
    /// given) and starts the persistent transports.
    ///
    /// # Errors
    /// [`TransportError::Listen`] when the stcp address cannot be bound,
    /// [`TransportError::Dmsg`] when dmsg port 45 is taken.
    pub async fn start(cfg: TransportConfig) -> Result<Arc<TransportManager>, TransportError> {
        let listener = match &cfg.stcp_listen {
            Some(a) => {
                let addr = listen_addr(a);
                let l =
                    TcpListener::bind(&addr)
                        .await
                        .map_err(|source| TransportError::Listen {
                            addr: addr.clone(),
                            source,
                        })?;
                Some(l)
            }
            None => None,
        };
        let stcp_addr = match &listener {
            Some(l) => Some(l.local_addr().map_err(|source| TransportError::Listen {
                addr: cfg.stcp_listen.clone().unwrap_or_default(),
                source,
            })?),
            None => None,
        };
        let dmsg_listener = match &cfg.dmsg {
            Some(c) => Some(c.listen(TRANSPORT_PORT).map_err(TransportError::Dmsg)?),
            None => None,
        };
        let inner = Arc::new(Inner {
            pk: cfg.sk.pub_key(),
            sk: cfg.sk,
            pk_table: cfg.pk_table,
            dmsg: cfg.dmsg,
            stcp_addr,
            tps: Mutex::new(HashMap::new()),
            next_gen: AtomicU64::new(1),
            cancel: CancellationToken::new(),
            tasks: Mutex::new(JoinSet::new()),
            changed: Notify::new(),
        });
        if let Some(l) = listener {
            info!(addr = ?stcp_addr, "stcp transports: listening");
            inner.spawn(accept_stcp_loop(inner.clone(), l));
        }
        if let Some(l) = dmsg_listener {
            info!("dmsg transports: listening on dmsg port {TRANSPORT_PORT}");
            inner.spawn(accept_dmsg_loop(inner.clone(), l));
        }
        for (pk, ty) in cfg.persistent {
            inner.spawn(keep_persistent(inner.clone(), pk, ty));
        }
        Ok(Arc::new(TransportManager { inner }))
    }

    /// Our key.
    pub fn local_pk(&self) -> PubKey {
        self.inner.pk
    }

    /// Types this manager can dial: `stcp`, and `dmsg` with a dmsg client.
    pub fn types(&self) -> Vec<String> {
        let mut v = vec![STCP.to_owned()];
        if self.inner.dmsg.is_some() {
            v.push(DMSG.to_owned());
        }
        v
    }

    /// The bound stcp listener address.
    pub fn stcp_local_addr(&self) -> Option<SocketAddr> {
        self.inner.stcp_addr
    }

    /// The live transports, oldest first.
    pub fn list(&self) -> Vec<TransportSummary> {
        let tps = lock(&self.inner.tps);
        let mut v: Vec<TransportSummary> = tps.values().map(|m| self.inner.summary(m)).collect();
        v.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        v
    }

    /// One transport by ID.
    pub fn get(&self, id: Uuid) -> Option<TransportSummary> {
        lock(&self.inner.tps)
            .get(&id)
            .map(|m| self.inner.summary(m))
    }

    /// Creates a transport to `remote` of `tp_type` (`stcp` or `dmsg`), labelled `user`;
    /// returns the existing one when it is already up. Bounded by `timeout`.
    ///
    /// # Errors
    /// Unknown type, key not in `pk_table` (stcp), dial, handshake, noise, settlement errors,
    /// [`TransportError::Timeout`], [`TransportError::Closed`].
    pub async fn add(
        &self,
        remote: PubKey,
        tp_type: &str,
        timeout: Duration,
    ) -> Result<TransportSummary, TransportError> {
        self.inner.add(remote, tp_type, timeout).await
    }

    /// Closes transport `id` (the peer sees its carrier end and drops it too).
    ///
    /// # Errors
    /// [`TransportError::NotFound`].
    pub async fn remove(&self, id: Uuid) -> Result<(), TransportError> {
        let m = lock(&self.inner.tps)
            .remove(&id)
            .ok_or(TransportError::NotFound(id))?;
        self.inner.changed.notify_waiters();
        m.cancel.cancel();
        let mut done = m.done;
        drop(m.tx);
        // The task closes the carrier; wait (bounded) until it has.
        let _ = tokio::time::timeout(Duration::from_secs(5), done.changed()).await;
        info!(%id, "transport removed");
        Ok(())
    }

    /// Sends one routing packet on transport `id` (for the router; also used by tests).
    ///
    /// # Errors
    /// [`TransportError::NotFound`], [`TransportError::Packet`] for an oversized payload,
    /// [`TransportError::Closed`] when the transport is going down.
    pub async fn write_packet(&self, id: Uuid, packet: &Packet) -> Result<(), TransportError> {
        let bytes = packet.encode().map_err(TransportError::Packet)?;
        let payload = (bytes.len() - HEADER_LEN) as u64;
        let tx = lock(&self.inner.tps)
            .get(&id)
            .map(|m| m.tx.clone())
            .ok_or(TransportError::NotFound(id))?;
        tx.send(Outgoing { bytes, payload })
            .await
            .map_err(|_| TransportError::Closed)
    }

    /// Closes every transport and listener and stops the persistent loops.
    pub async fn close(&self) {
        self.inner.cancel.cancel();
        let all: Vec<Managed> = lock(&self.inner.tps).drain().map(|(_, m)| m).collect();
        for m in &all {
            m.cancel.cancel();
        }
        let mut set = std::mem::take(&mut *lock(&self.inner.tasks));
        let drained = tokio::time::timeout(Duration::from_secs(5), async {
            while set.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            warn!("transport manager: tasks still running after 5 s, aborting them");
            set.abort_all();
        }
        drop(all);
        self.inner.changed.notify_waiters();
    }
}

impl Inner {
    fn spawn<F: std::future::Future<Output = ()> + Send + 'static>(&self, f: F) {
        let mut set = lock(&self.tasks);
        while set.try_join_next().is_some() {}
        if self.cancel.is_cancelled() {
            return;
        }
        set.spawn(f);
    }

    fn summary(&self, m: &Managed) -> TransportSummary {
        TransportSummary {
            id: m.entry.t_id,
            local_pk: self.pk,
            remote_pk: m.remote,
            tp_type: m.entry.tp_type.clone(),
            log: TransportLog {
                recv_bytes: m.counters.recv.load(Ordering::Relaxed),
                sent_bytes: m.counters.sent.load(Ordering::Relaxed),
            },
            is_setup: false,
            label: m.entry.label.clone(),
            is_up: !m.cancel.is_cancelled(),
            initiator: m.initiator,
            created_at: m.created_at,
            remote_addr: m.remote_addr.clone(),
        }
    }

    fn is_up(&self, id: &Uuid) -> bool {
        lock(&self.tps).contains_key(id)
    }

    async fn add(
        self: &Arc<Self>,
        remote: PubKey,
        tp_type: &str,
        timeout: Duration,
    ) -> Result<TransportSummary, TransportError> {
        if self.cancel.is_cancelled() {
            return Err(TransportError::Closed);
        }
        if remote == self.pk {
            return Err(TransportError::SelfTransport);
        }
        let entry = Entry::new(self.pk, remote, tp_type, LABEL_USER);
        if let Some(m) = lock(&self.tps).get(&entry.t_id) {
            return Ok(self.summary(m));
        }
        let work = async {
            let (carrier, remote_addr) = match tp_type {
                STCP => self.dial_stcp(remote).await?,
                DMSG => self.dial_dmsg(remote).await?,
                other => return Err(TransportError::UnknownType(other.to_owned())),
            };
            let mut carrier = carrier;
            tokio::time::timeout(
                SETTLEMENT_TIMEOUT,
                settle_initiator(&mut carrier, &self.sk, entry.clone()),
            )
            .await
            .map_err(|_| TransportError::Timeout("settlement"))??;
            Ok(self
                .install(carrier, entry.clone(), remote, remote_addr, true)
                .0)
        };
        tokio::select! {
            _ = self.cancel.cancelled() => Err(TransportError::Closed),
            r = tokio::time::timeout(timeout, work) => match r {
                Ok(Ok(s)) => {
                    info!(id = %s.id, %remote, tp_type, "transport added");
                    Ok(s)
                }
                Ok(Err(e)) => Err(e),
                Err(_) => Err(TransportError::Timeout("adding the transport")),
            }
        }
    }

    async fn dial_stcp(&self, remote: PubKey) -> Result<(BoxCarrier, String), TransportError> {
        let addr = self
            .pk_table
            .get(&remote)
            .ok_or(TransportError::NotInPkTable(remote))?;
        let mut tcp =
            TcpStream::connect(addr.as_str())
                .await
                .map_err(|source| TransportError::Dial {
                    addr: addr.clone(),
                    source,
                })?;
        let _ = tcp.set_nodelay(true);
        let peer = tcp
            .peer_addr()
            .map_or_else(|_| addr.clone(), |a| a.to_string());
        let eph = rand::random_range(MIN_EPHEMERAL_PORT..=u16::MAX);
        tokio::time::timeout(
            HANDSHAKE_TIMEOUT,
            handshake_initiator(&mut tcp, &self.sk, remote, eph),
        )
        .await
        .map_err(|_| TransportError::Timeout("transport handshake"))??;
        let ns = kk_wrap(tcp, &self.sk, remote, true, KK_TIMEOUT)
            .await
            .map_err(TransportError::Noise)?;
        Ok((Box::new(ns), peer))
    }

    async fn dial_dmsg(&self, remote: PubKey) -> Result<(BoxCarrier, String), TransportError> {
        let client = self
            .dmsg
            .as_ref()
            .ok_or_else(|| TransportError::UnknownType(DMSG.to_owned()))?;
        let s = client
            .dial(Addr::new(remote, TRANSPORT_PORT))
            .await
            .map_err(TransportError::Dmsg)?;
        let ra = s.remote_addr().to_string();
        Ok((Box::new(s), ra))
    }

    /// Records a settled carrier and starts its task. Returns the transport's summary and
    /// `false` when another carrier of the same transport is kept instead (the new one is
    /// closed).
    fn install(
        self: &Arc<Self>,
        carrier: BoxCarrier,
        entry: Entry,
        remote: PubKey,
        remote_addr: String,
        initiator: bool,
    ) -> (TransportSummary, bool) {
        self.install_with(carrier, entry, remote, remote_addr, initiator, None)
    }

    fn install_with(
        self: &Arc<Self>,
        carrier: BoxCarrier,
        entry: Entry,
        remote: PubKey,
        remote_addr: String,
        initiator: bool,
        first: Option<Outgoing>,
    ) -> (TransportSummary, bool) {
        let id = entry.t_id;
        let mut tps = lock(&self.tps);
        if let Some(old) = tps.get(&id) {
            if entry.edges[0] == self.pk {
                debug!(%id, "transport already up: keeping the existing carrier");
                return (self.summary(old), false);
            }
            debug!(%id, "transport already up: replacing the existing carrier");
            if let Some(old) = tps.remove(&id) {
                old.cancel.cancel();
            }
        }
        let (tx, rx) = mpsc::channel(WRITE_QUEUE);
        if let Some(f) = first {
            // The queue is empty: this cannot fail.
            let _ = tx.try_send(f);
        }
        let (done_tx, done_rx) = watch::channel(());
        let m = Managed {
            generation: self.next_gen.fetch_add(1, Ordering::Relaxed),
            entry,
            remote,
            remote_addr,
            initiator,
            created_at: now_secs(),
            counters: Arc::new(Counters::default()),
            cancel: self.cancel.child_token(),
            tx,
            done: done_rx,
        };
        let summary = self.summary(&m);
        let task = run_transport(
            self.clone(),
            id,
            m.generation,
            carrier,
            m.cancel.clone(),
            rx,
            m.counters.clone(),
            done_tx,
        );
        tps.insert(id, m);
        drop(tps);
        self.spawn(task);
        self.changed.notify_waiters();
        (summary, true)
    }

    /// Drops `id` from the table if it still holds the carrier of `generation`.
    fn forget(&self, id: Uuid, generation: u64) {
        let mut tps = lock(&self.tps);
        if tps.get(&id).is_some_and(|m| m.generation == generation) {
            tps.remove(&id);
            drop(tps);
            info!(%id, "transport closed");
            self.changed.notify_waiters();
        }
    }
}

/// Reads one `\n`-terminated line of at most `max` bytes, byte by byte so nothing after the
/// line is consumed.
async fn read_line<R: AsyncRead + Unpin>(r: &mut R, max: usize) -> std::io::Result<Vec<u8>> {
    let mut line = Vec::with_capacity(256);
    loop {
        let b = r.read_u8().await?;
        line.push(b);
        if b == b'\n' {
            return Ok(line);
        }
        if line.len() >= max {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "line too long",
            ));
        }
    }
}

async fn write_flush<W: AsyncWrite + Unpin>(w: &mut W, b: &[u8]) -> std::io::Result<()> {
    w.write_all(b).await?;
    w.flush().await
}

/// Initiator side of 6.2 over a raw connection.
async fn handshake_initiator<T: AsyncRead + AsyncWrite + Unpin>(
    io: &mut T,
    sk: &SecKey,
    remote: PubKey,
    eph_port: u16,
) -> Result<(), TransportError> {
    write_flush(io, FRAME0).await.map_err(TransportError::Io)?;
    let l1 = read_line(io, MAX_LINE).await.map_err(TransportError::Io)?;
    let f1 = Frame1::decode(&l1)?;
    let dst = HsAddr {
        public_key: remote,
        port: TRANSPORT_PORT,
    };
    let f2 = Frame2::signed(sk, eph_port, dst, f1.nonce)?;
    write_flush(io, &f2.encode())
        .await
        .map_err(TransportError::Io)?;
    let l3 = read_line(io, MAX_LINE).await.map_err(TransportError::Io)?;
    Frame3::decode(&l3)?.into_result()?;
    Ok(())
}

/// Responder side of 6.2: returns the verified Frame2. Rejections are answered with a
/// Frame3 carrying the reason.
async fn handshake_responder<T: AsyncRead + AsyncWrite + Unpin>(
    io: &mut T,
    local: PubKey,
) -> Result<Frame2, TransportError> {
    let mut f0 = [0u8; FRAME0.len()];
    io.read_exact(&mut f0).await.map_err(TransportError::Io)?;
    check_frame0(&f0)?;
    let nonce: [u8; NONCE_SIZE] = rand::random();
    write_flush(io, &Frame1 { nonce }.encode())
        .await
        .map_err(TransportError::Io)?;
    let l2 = read_line(io, MAX_LINE).await.map_err(TransportError::Io)?;
    let checked = Frame2::decode(&l2).and_then(|f2| {
        f2.verify(&nonce)?;
        if f2.dst.port != TRANSPORT_PORT {
            return Err(HandshakeError::Rejected(format!(
                "not listening on port {}",
                f2.dst.port
            )));
        }
        if f2.dst.public_key != local {
            return Err(HandshakeError::Rejected(format!(
                "this visor is {local}, not {}",
                f2.dst.public_key
            )));
        }
        Ok(f2)
    });
    match checked {
        Ok(f2) => {
            write_flush(io, &Frame3::ok().encode())
                .await
                .map_err(TransportError::Io)?;
            Ok(f2)
        }
        Err(e) => {
            let msg = match &e {
                HandshakeError::Rejected(m) => m.clone(),
                other => other.to_string(),
            };
            let _ = write_flush(io, &Frame3::reject(msg).encode()).await;
            Err(e.into())
        }
    }
}

/// Initiator side of the settlement.
async fn settle_initiator<T: AsyncRead + AsyncWrite + Unpin>(
    io: &mut T,
    sk: &SecKey,
    entry: Entry,
) -> Result<(), TransportError> {
    let se = SignedEntry::new(entry, sk)?;
    write_flush(io, &se.encode())
        .await
        .map_err(TransportError::Io)?;
    let code = io.read_u8().await.map_err(TransportError::Io)?;
    SettlementResponse::from_byte(code).into_result()?;
    Ok(())
}

/// Responder side of the settlement, then install (the OK byte is the carrier's first write).
async fn settle_responder(
    inner: &Arc<Inner>,
    mut carrier: BoxCarrier,
    remote: PubKey,
    tp_type: &str,
    remote_addr: String,
) -> Result<(), TransportError> {
    let line = read_line(&mut carrier, MAX_SETTLEMENT_LINE + 1)
        .await
        .map_err(TransportError::Io)?;
    match SignedEntry::settle_as_responder(&line, &inner.sk, &remote, tp_type) {
        Ok(se) => {
            let ok = Outgoing {
                bytes: vec![SettlementResponse::Ok.to_byte()],
                payload: 0,
            };
            match inner.install_with(carrier, se.entry, remote, remote_addr, false, Some(ok)) {
                (s, true) => {
                    info!(id = %s.id, %remote, tp_type, "transport accepted");
                    Ok(())
                }
                (_, false) => Err(TransportError::AlreadyExists),
            }
        }
        Err((code, e)) => {
            let _ = write_flush(&mut carrier, &[code.to_byte()]).await;
            Err(e.into())
        }
    }
}

async fn accept_stcp_loop(inner: Arc<Inner>, listener: TcpListener) {
    loop {
        let (tcp, peer) = tokio::select! {
            _ = inner.cancel.cancelled() => return,
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    warn!("stcp accept: {e}");
                    tokio::select! {
                        _ = inner.cancel.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_millis(100)) => continue,
                    }
                }
            },
        };
        let inner2 = inner.clone();
        inner.spawn(async move {
            let cancel = inner2.cancel.clone();
            tokio::select! {
                _ = cancel.cancelled() => {}
                r = accept_stcp(&inner2, tcp, peer) => if let Err(e) = r {
                    warn!(%peer, "incoming stcp transport failed: {e}");
                }
            }
        });
    }
}

async fn accept_stcp(
    inner: &Arc<Inner>,
    mut tcp: TcpStream,
    peer: SocketAddr,
) -> Result<(), TransportError> {
    let _ = tcp.set_nodelay(true);
    let f2 = tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake_responder(&mut tcp, inner.pk))
        .await
        .map_err(|_| TransportError::Timeout("transport handshake"))??;
    let remote = f2.src.public_key;
    if remote == inner.pk {
        return Err(TransportError::SelfTransport);
    }
    let ns = kk_wrap(tcp, &inner.sk, remote, false, KK_TIMEOUT)
        .await
        .map_err(TransportError::Noise)?;
    tokio::time::timeout(
        SETTLEMENT_TIMEOUT,
        settle_responder(inner, Box::new(ns), remote, STCP, peer.to_string()),
    )
    .await
    .map_err(|_| TransportError::Timeout("settlement"))?
}

async fn accept_dmsg_loop(inner: Arc<Inner>, mut listener: skywire_dmsg::Listener) {
    loop {
        let stream = tokio::select! {
            _ = inner.cancel.cancelled() => return,
            s = listener.accept() => match s {
                Some(s) => s,
                None => {
                    warn!("dmsg transports: listener closed");
                    return;
                }
            },
        };
        let inner2 = inner.clone();
        inner.spawn(async move {
            let remote = stream.remote_addr();
            let cancel = inner2.cancel.clone();
            let settle = tokio::time::timeout(
                SETTLEMENT_TIMEOUT,
                settle_responder(
                    &inner2,
                    Box::new(stream),
                    remote.pk,
                    DMSG,
                    remote.to_string(),
                ),
            );
            tokio::select! {
                _ = cancel.cancelled() => {}
                r = settle => match r {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => warn!(%remote, "incoming dmsg transport failed: {e}"),
                    Err(_) => warn!(%remote, "incoming dmsg transport: settlement timed out"),
                }
            }
        });
    }
}

/// Handles one received packet. There is no router yet: everything is logged and dropped.
fn on_packet(id: Uuid, h: &Header, payload: &[u8]) {
    match PacketBody::from_parts(h.ptype, payload) {
        Ok(PacketBody::Data(d)) => {
            debug!(%id, route = h.route_id, len = d.len(), "data packet for unknown route dropped");
        }
        Ok(body) => {
            debug!(%id, route = h.route_id, ptype = h.ptype, ?body, "packet dropped (no router)")
        }
        Err(e) => debug!(%id, "malformed packet skipped: {e}"),
    }
}

/// Owns one carrier: reads packets until the carrier fails, writes what the channel brings,
/// and closes the carrier when cancelled or removed.
#[allow(clippy::too_many_arguments)]
async fn run_transport(
    inner: Arc<Inner>,
    id: Uuid,
    generation: u64,
    carrier: BoxCarrier,
    cancel: CancellationToken,
    mut rx: mpsc::Receiver<Outgoing>,
    counters: Arc<Counters>,
    _done: watch::Sender<()>,
) {
    let (mut r, mut w) = tokio::io::split(carrier);
    {
        let reader = async {
            let mut hb = [0u8; HEADER_LEN];
            let mut payload = Vec::with_capacity(4096);
            loop {
                if let Err(e) = r.read_exact(&mut hb).await {
                    break e;
                }
                let h = Header::decode(&hb);
                payload.resize(usize::from(h.len), 0);
                if let Err(e) = r.read_exact(&mut payload).await {
                    break e;
                }
                counters.recv.fetch_add(u64::from(h.len), Ordering::Relaxed);
                on_packet(id, &h, &payload);
            }
        };
        let writer = async {
            while let Some(o) = rx.recv().await {
                w.write_all(&o.bytes).await?;
                w.flush().await?;
                counters.sent.fetch_add(o.payload, Ordering::Relaxed);
            }
            Ok::<(), std::io::Error>(())
        };
        tokio::select! {
            _ = cancel.cancelled() => debug!(%id, "transport closing"),
            e = reader => debug!(%id, "transport carrier ended: {e:?}"),
            e = writer => debug!(%id, "transport writer ended: {e:?}"),
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), w.shutdown()).await;
    drop((r, w));
    inner.forget(id, generation);
}

/// Keeps a persistent transport up: dials when it is down, with exponential backoff.
async fn keep_persistent(inner: Arc<Inner>, remote: PubKey, tp_type: String) {
    let id = super::entry::transport_id(&inner.pk, &remote, &tp_type);
    let mut backoff = REDIAL_MIN;
    loop {
        if inner.cancel.is_cancelled() {
            return;
        }
        let notified = inner.changed.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if inner.is_up(&id) {
            backoff = REDIAL_MIN;
            tokio::select! {
                _ = inner.cancel.cancelled() => return,
                _ = notified => {}
                _ = tokio::time::sleep(PERSISTENT_RECHECK) => {}
            }
            continue;
        }
        match inner.add(remote, &tp_type, SETTLEMENT_TIMEOUT).await {
            Ok(s) => {
                info!(id = %s.id, %remote, %tp_type, "persistent transport up");
                backoff = REDIAL_MIN;
            }
            Err(TransportError::Closed) => return,
            Err(e) => {
                debug!(%remote, %tp_type, "persistent transport: dial failed ({e}); retry in {backoff:?}");
                tokio::select! {
                    _ = inner.cancel.cancelled() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(REDIAL_MAX);
            }
        }
    }
}
