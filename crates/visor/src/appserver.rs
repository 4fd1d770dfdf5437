//! The app server: the visor side of the local app protocol (`crates/app/PROTOCOL.md`). It owns
//! the registry of procs (apps launched by [`crate::proc`] or registered by hand), authenticates
//! every local connection by its proc key, and serves three kinds of connection:
//!
//! * **control**: listeners (`Listen`, `CloseListener`) and the app's status (`SetDetailedStatus`,
//!   `SetError`, `SetAppPort`); the listeners a control connection opened are released when it
//!   closes;
//! * **dial**: dials the remote on the visor's dmsg client, answers `connected`, then pipes the
//!   local socket and the dmsg stream to each other;
//! * **accept**: waits for the next stream on one of the proc's listeners, answers `connected`,
//!   then pipes.
//!
//! After the one-frame setup a conn is a plain byte pipe (`copy_bidirectional` with 64 KiB
//! buffers), so bulk data costs no RPC, unlike the reference's gob RPC per `Read`/`Write`.
//! Stopping a proc (dropping or closing its [`Registration`]) closes every conn and listener it
//! holds. The `skynet` network is not routed in this project yet: dial and listen on it fail with
//! a clear error.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use skywire_app::frame_io::{FrameError, read_msg, write_msg};
use skywire_app::proto::{
    Addr, Hello, Net, Op, PROTOCOL_VERSION, ProcKey, Reply, Request, Response,
};
use skywire_cipher::PubKey;
use skywire_dmsg::{DmsgError, DmsgStream, ErrorCode};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// How long a new local connection may take to send its hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// Pipe buffer per direction.
const PIPE_BUF: usize = 64 * 1024;
/// How long closing a proc waits for its conns to wind down.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// App server errors.
#[derive(Debug, thiserror::Error)]
pub enum AppServerError {
    /// The listening socket could not be bound.
    #[error("app server cannot listen on {addr}")]
    Bind {
        /// The address asked for.
        addr: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// The local app server. Dropping the last `Arc` stops it and closes every app connection.
#[derive(Debug)]
pub struct AppServer {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    cancel: CancellationToken,
}

#[derive(Debug)]
struct Shared {
    visor_pk: PubKey,
    dmsg: skywire_dmsg::Client,
    procs: Mutex<HashMap<ProcKey, Arc<ProcState>>>,
}

impl Shared {
    fn proc(&self, key: &ProcKey) -> Option<Arc<ProcState>> {
        self.procs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .cloned()
    }
}

/// Live state of one registered proc, updated by its connections.
#[derive(Debug)]
struct ProcState {
    name: String,
    status: Mutex<String>,
    error: Mutex<Option<String>>,
    app_port: Mutex<Option<u16>>,
    conns: AtomicUsize,
    conns_changed: Notify,
    listeners: Mutex<Listeners>,
    cancel: CancellationToken,
}

#[derive(Debug, Default)]
struct Listeners {
    last_id: u16,
    by_id: HashMap<u16, Arc<ListenerSlot>>,
}

impl Listeners {
    /// Last ID + 1, skipping IDs in use and 0.
    fn next_id(&mut self) -> Option<u16> {
        let mut id = self.last_id;
        for _ in 0..=u16::MAX as usize {
            id = id.wrapping_add(1);
            if id != 0 && !self.by_id.contains_key(&id) {
                self.last_id = id;
                return Some(id);
            }
        }
        None
    }
}

/// One dmsg listener of a proc. `listener` is `None` once closed (port released).
#[derive(Debug)]
struct ListenerSlot {
    port: u16,
    listener: tokio::sync::Mutex<Option<skywire_dmsg::Listener>>,
    closed: CancellationToken,
}

impl ListenerSlot {
    /// Stops the waiting accepts and drops the dmsg listener, which frees the port.
    async fn close(&self) {
        self.closed.cancel();
        drop(self.listener.lock().await.take());
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl ProcState {
    fn take_listener(&self, id: u16) -> Option<Arc<ListenerSlot>> {
        lock(&self.listeners).by_id.remove(&id)
    }

    async fn close_all_listeners(&self) {
        let slots: Vec<_> = lock(&self.listeners)
            .by_id
            .drain()
            .map(|(_, s)| s)
            .collect();
        for s in slots {
            s.close().await;
        }
    }
}

/// Counts a live conn of a proc for as long as it exists.
struct ConnGuard<'a>(&'a ProcState);

impl<'a> ConnGuard<'a> {
    fn new(p: &'a ProcState) -> ConnGuard<'a> {
        p.conns.fetch_add(1, Ordering::SeqCst);
        ConnGuard(p)
    }
}

impl Drop for ConnGuard<'_> {
    fn drop(&mut self) {
        self.0.conns.fetch_sub(1, Ordering::SeqCst);
        self.0.conns_changed.notify_waiters();
    }
}

impl AppServer {
    /// Binds the local app server (TCP, e.g. `"localhost:5505"` or `"127.0.0.1:0"`). `dmsg` is the
    /// visor's dmsg client used for the apps' dial/listen on the `dmsg` network.
    pub async fn bind(
        addr: &str,
        visor_pk: PubKey,
        dmsg: skywire_dmsg::Client,
    ) -> Result<Arc<AppServer>, AppServerError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| AppServerError::Bind {
                addr: addr.to_owned(),
                source,
            })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| AppServerError::Bind {
                addr: addr.to_owned(),
                source,
            })?;
        let shared = Arc::new(Shared {
            visor_pk,
            dmsg,
            procs: Mutex::new(HashMap::new()),
        });
        let cancel = CancellationToken::new();
        tokio::spawn(accept_loop(listener, shared.clone(), cancel.clone()));
        tracing::debug!(%local_addr, "app server listening");
        Ok(Arc::new(AppServer {
            shared,
            local_addr,
            cancel,
        }))
    }

    /// The address apps connect to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The visor key the server reports to apps.
    pub fn visor_pk(&self) -> PubKey {
        self.shared.visor_pk
    }

    /// Registers a proc under a fresh random key (the reference's `RegisterApp`, also used by
    /// [`crate::proc::Proc::spawn`]). The registration lives until the handle is dropped or
    /// closed; then the key stops working and the proc's conns and listeners are closed.
    pub fn register(&self, name: &str) -> Registration {
        let state = Arc::new(ProcState {
            name: name.to_owned(),
            status: Mutex::new(String::new()),
            error: Mutex::new(None),
            app_port: Mutex::new(None),
            conns: AtomicUsize::new(0),
            conns_changed: Notify::new(),
            listeners: Mutex::new(Listeners::default()),
            cancel: self.cancel.child_token(),
        });
        let mut procs = lock(&self.shared.procs);
        let key = loop {
            let k = ProcKey(rand::random());
            if !procs.contains_key(&k) {
                break k;
            }
        };
        procs.insert(key, state.clone());
        drop(procs);
        Registration {
            key,
            state,
            shared: Arc::downgrade(&self.shared),
        }
    }
}

impl Drop for AppServer {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// A registered proc: its key and what its connections reported. Dropping it (or
/// [`Registration::close`]) unregisters the key and closes the proc's conns and listeners.
#[derive(Debug)]
pub struct Registration {
    key: ProcKey,
    state: Arc<ProcState>,
    shared: std::sync::Weak<Shared>,
}

impl Registration {
    /// The proc key the app must present.
    pub fn key(&self) -> ProcKey {
        self.key
    }

    /// The app's name.
    pub fn name(&self) -> &str {
        &self.state.name
    }

    /// The last detailed status the app set (`""` if none).
    pub fn detailed_status(&self) -> String {
        lock(&self.state.status).clone()
    }

    /// The last error the app set.
    pub fn app_error(&self) -> Option<String> {
        lock(&self.state.error).clone()
    }

    /// The routing port the app reported with `SetAppPort`.
    pub fn app_port(&self) -> Option<u16> {
        *lock(&self.state.app_port)
    }

    /// Conns (dialled or accepted) of this proc open right now.
    pub fn connections(&self) -> usize {
        self.state.conns.load(Ordering::SeqCst)
    }

    /// Ports this proc listens on right now.
    pub fn listening_ports(&self) -> Vec<u16> {
        let mut v: Vec<u16> = lock(&self.state.listeners)
            .by_id
            .values()
            .map(|s| s.port)
            .collect();
        v.sort_unstable();
        v
    }

    fn unregister(&self) {
        if let Some(shared) = self.shared.upgrade() {
            lock(&shared.procs).remove(&self.key);
        }
        self.state.cancel.cancel();
    }

    /// Unregisters the key, releases every listener (their ports are free when this returns) and
    /// waits (up to 2 s) for the proc's conns to close.
    pub async fn close(&self) {
        self.unregister();
        self.state.close_all_listeners().await;
        let wait = async {
            loop {
                let changed = self.state.conns_changed.notified();
                if self.state.conns.load(Ordering::SeqCst) == 0 {
                    return;
                }
                changed.await;
            }
        };
        if tokio::time::timeout(CLOSE_WAIT, wait).await.is_err() {
            tracing::warn!(app = %self.state.name, "app conns still open after close");
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.unregister();
        // Without an await: accepts see the cancellation and drop their listener guard; a
        // listener nobody waits on is dropped here.
        for s in lock(&self.state.listeners).by_id.drain().map(|(_, s)| s) {
            s.closed.cancel();
            if let Ok(mut l) = s.listener.try_lock() {
                l.take();
            }
        }
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, cancel: CancellationToken) {
    loop {
        let accepted = tokio::select! {
            _ = cancel.cancelled() => return,
            r = listener.accept() => r,
        };
        match accepted {
            Ok((tcp, peer)) => {
                let _ = tcp.set_nodelay(true);
                tokio::spawn(handle_conn(tcp, shared.clone(), cancel.clone(), peer));
            }
            Err(e) => {
                tracing::warn!(error = %e, "app server accept failed");
                // EMFILE and friends: do not spin.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn refuse(tcp: &mut TcpStream, message: String) {
    tracing::debug!(%message, "app connection refused");
    let _ = write_msg(tcp, &Reply::Error { message }).await;
}

async fn handle_conn(
    mut tcp: TcpStream,
    shared: Arc<Shared>,
    server_cancel: CancellationToken,
    peer: SocketAddr,
) {
    let hello = tokio::select! {
        _ = server_cancel.cancelled() => return,
        r = tokio::time::timeout(HELLO_TIMEOUT, read_msg::<Hello, _>(&mut tcp)) => r,
    };
    let hello = match hello {
        Ok(Ok(h)) => h,
        Ok(Err(FrameError::Proto(e))) => return refuse(&mut tcp, e.to_string()).await,
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "app connection without a hello");
            return;
        }
        Err(_) => return refuse(&mut tcp, "no hello within 10s".into()).await,
    };
    let version = match &hello {
        Hello::Control { version, .. }
        | Hello::Dial { version, .. }
        | Hello::Accept { version, .. } => *version,
    };
    if version != PROTOCOL_VERSION {
        return refuse(
            &mut tcp,
            format!(
                "unsupported app protocol version {version} (this visor speaks {PROTOCOL_VERSION})"
            ),
        )
        .await;
    }
    let Some(state) = shared.proc(&hello.proc_key()) else {
        return refuse(&mut tcp, "unknown proc key".into()).await;
    };
    if state.cancel.is_cancelled() {
        return refuse(&mut tcp, "the app is being stopped".into()).await;
    }
    match hello {
        Hello::Control { .. } => control(tcp, &shared, &state).await,
        Hello::Dial { remote, .. } => dial(tcp, &shared, &state, remote).await,
        Hello::Accept { listener, .. } => accept(tcp, &shared, &state, listener).await,
    }
}

async fn control(mut tcp: TcpStream, shared: &Shared, state: &ProcState) {
    let welcome = Reply::Welcome {
        version: PROTOCOL_VERSION,
        visor_pk: shared.visor_pk,
        app_name: state.name.clone(),
    };
    if write_msg(&mut tcp, &welcome).await.is_err() {
        return;
    }
    tracing::debug!(app = %state.name, "app control connection up");
    let mut owned: Vec<u16> = Vec::new();
    loop {
        let req = tokio::select! {
            _ = state.cancel.cancelled() => break,
            r = read_msg::<Request, _>(&mut tcp) => r,
        };
        let req = match req {
            Ok(r) => r,
            Err(FrameError::Closed) => break,
            Err(e) => {
                tracing::debug!(app = %state.name, error = %e, "app control connection failed");
                break;
            }
        };
        let resp = op(shared, state, &mut owned, req).await;
        if write_msg(&mut tcp, &resp).await.is_err() {
            break;
        }
    }
    // The listeners of this control connection go with it.
    for id in owned {
        if let Some(slot) = state.take_listener(id) {
            slot.close().await;
        }
    }
    tracing::debug!(app = %state.name, "app control connection closed");
}

fn skynet_unsupported() -> String {
    "network skynet is not routed by this visor yet; use dmsg".to_owned()
}

async fn op(shared: &Shared, state: &ProcState, owned: &mut Vec<u16>, req: Request) -> Response {
    let id = req.id;
    let err = |e: String| Response {
        id,
        error: Some(e),
        listener: None,
    };
    let ok = Response {
        id,
        error: None,
        listener: None,
    };
    match req.op {
        Op::Listen {
            net: Net::Skynet, ..
        } => err(skynet_unsupported()),
        Op::Listen { port: 0, .. } => err("cannot listen on port 0".into()),
        Op::Listen {
            net: Net::Dmsg,
            port,
        } => {
            let l = match shared.dmsg.listen(port) {
                Ok(l) => l,
                Err(DmsgError::Code(ErrorCode::PortOccupied)) => {
                    return err(format!("port {port} is already bound on dmsg"));
                }
                Err(e) => return err(format!("listen on dmsg port {port}: {e}")),
            };
            let mut ls = lock(&state.listeners);
            let Some(lid) = ls.next_id() else {
                return err("too many listeners".into());
            };
            ls.by_id.insert(
                lid,
                Arc::new(ListenerSlot {
                    port,
                    listener: tokio::sync::Mutex::new(Some(l)),
                    closed: CancellationToken::new(),
                }),
            );
            drop(ls);
            owned.push(lid);
            tracing::info!(app = %state.name, port, "app listens on dmsg");
            Response {
                id,
                error: None,
                listener: Some(lid),
            }
        }
        Op::CloseListener { listener } => match state.take_listener(listener) {
            Some(slot) => {
                owned.retain(|l| *l != listener);
                slot.close().await;
                ok
            }
            None => err(format!("no listener {listener}")),
        },
        Op::SetDetailedStatus { status } => {
            tracing::info!(app = %state.name, %status, "app status");
            *lock(&state.status) = status;
            ok
        }
        Op::SetError { error } => {
            tracing::warn!(app = %state.name, %error, "app reports an error");
            *lock(&state.error) = Some(error);
            ok
        }
        Op::SetAppPort { port } => {
            *lock(&state.app_port) = Some(port);
            ok
        }
    }
}

fn app_addr(a: skywire_dmsg::Addr) -> Addr {
    Addr::new(Net::Dmsg, a.pk, a.port)
}

async fn dial(mut tcp: TcpStream, shared: &Shared, state: &ProcState, remote: Addr) {
    if remote.net == Net::Skynet {
        return refuse(&mut tcp, skynet_unsupported()).await;
    }
    let dialled = tokio::select! {
        _ = state.cancel.cancelled() => return,
        r = shared.dmsg.dial(skywire_dmsg::Addr::new(remote.pk, remote.port)) => r,
    };
    let stream = match dialled {
        Ok(s) => s,
        Err(e) => return refuse(&mut tcp, format!("dial {remote} on dmsg: {e}")).await,
    };
    tracing::debug!(app = %state.name, %remote, "app dialled");
    let reply = Reply::Connected {
        local: app_addr(stream.local_addr()),
        remote: app_addr(stream.remote_addr()),
    };
    if write_msg(&mut tcp, &reply).await.is_ok() {
        pipe(tcp, stream, state).await;
    }
}

async fn accept(mut tcp: TcpStream, _shared: &Shared, state: &ProcState, id: u16) {
    let Some(slot) = lock(&state.listeners).by_id.get(&id).cloned() else {
        return refuse(&mut tcp, format!("no listener {id}")).await;
    };
    let mut probe = [0u8; 1];
    let got = {
        let wait = async {
            let mut guard = slot.listener.lock().await;
            match guard.as_mut() {
                Some(l) => l.accept().await,
                None => None,
            }
        };
        tokio::select! {
            s = wait => s,
            _ = slot.closed.cancelled() => None,
            _ = state.cancel.cancelled() => None,
            // The app gave up waiting (closed its accept connection).
            _ = tcp.read(&mut probe) => return,
        }
    };
    let Some(stream) = got else {
        return refuse(&mut tcp, format!("listener {id} is closed")).await;
    };
    tracing::debug!(app = %state.name, remote = %stream.remote_addr(), "app accepted");
    let reply = Reply::Connected {
        local: app_addr(stream.local_addr()),
        remote: app_addr(stream.remote_addr()),
    };
    if write_msg(&mut tcp, &reply).await.is_ok() {
        pipe(tcp, stream, state).await;
    }
}

async fn pipe(mut tcp: TcpStream, mut stream: DmsgStream, state: &ProcState) {
    let _count = ConnGuard::new(state);
    tokio::select! {
        _ = state.cancel.cancelled() => {}
        r = tokio::io::copy_bidirectional_with_sizes(&mut tcp, &mut stream, PIPE_BUF, PIPE_BUF) => {
            if let Err(e) = r {
                tracing::debug!(app = %state.name, error = %e, "app conn ended");
            }
        }
    }
}
