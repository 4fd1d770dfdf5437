//! The app side of the local app protocol: [`Client`] (the control connection, owned by one
//! task), [`AppConn`] (a dialled or accepted conn: a plain local TCP socket that the visor pipes to
//! the remote stream) and [`AppListener`].

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use skywire_cipher::PubKey;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

use crate::config::{ConfigError, ProcConfig};
use crate::frame_io::{FrameError, read_msg, write_msg};
use crate::proto::{Addr, Hello, Net, Op, PROTOCOL_VERSION, ProtoError, Reply, Request, Response};

/// SDK errors.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The launch configuration is missing or invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The app server cannot be reached.
    #[error("cannot connect to the app server at {addr}")]
    Connect {
        /// The server address.
        addr: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The connection to the app server failed.
    #[error("app server connection failed")]
    Frame(#[from] FrameError),
    /// A message could not be encoded.
    #[error(transparent)]
    Proto(#[from] ProtoError),
    /// The app server refused the request (unknown proc key, port already bound, dial failed...).
    #[error("app server: {0}")]
    Refused(String),
    /// The control connection is gone (the visor stopped the app or closed the server).
    #[error("the control connection to the app server is closed")]
    ControlClosed,
    /// The server answered with a message that does not fit the request.
    #[error("unexpected app server reply: {0}")]
    Unexpected(String),
}

enum Ctrl {
    Call(Op, oneshot::Sender<Result<Response, AppError>>),
    Fire(Op),
}

#[derive(Debug)]
struct Inner {
    cfg: ProcConfig,
    visor_pk: PubKey,
    app_name: String,
    ctrl: mpsc::Sender<Ctrl>,
}

/// A connected app: the control connection to the visor's app server. Cheap to clone; the
/// control connection closes (and the visor releases this app's listeners) when the last clone
/// and every [`AppListener`] are dropped.
#[derive(Debug, Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Ctrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ctrl::Call(op, _) => write!(f, "Call({op:?})"),
            Ctrl::Fire(op) => write!(f, "Fire({op:?})"),
        }
    }
}

async fn connect(addr: &str) -> Result<TcpStream, AppError> {
    let s = TcpStream::connect(addr)
        .await
        .map_err(|source| AppError::Connect {
            addr: addr.to_owned(),
            source,
        })?;
    // Small request/response frames and interactive conns: no Nagle delay.
    let _ = s.set_nodelay(true);
    Ok(s)
}

impl Client {
    /// Connects with the configuration the visor put in the environment (`PROC_CONFIG`, else the
    /// legacy `APP_KEY`/`APP_SERVER_ADDR`/`VISOR_PK`).
    pub async fn from_env() -> Result<Client, AppError> {
        Client::connect(ProcConfig::from_env()?).await
    }

    /// Connects the control connection with an explicit configuration (for apps registered with
    /// a visor by hand, and tests).
    pub async fn connect(cfg: ProcConfig) -> Result<Client, AppError> {
        let mut s = connect(&cfg.app_server_addr).await?;
        write_msg(
            &mut s,
            &Hello::Control {
                version: PROTOCOL_VERSION,
                proc_key: cfg.proc_key,
            },
        )
        .await?;
        let (visor_pk, app_name) = match read_msg::<Reply, _>(&mut s).await? {
            Reply::Welcome {
                visor_pk, app_name, ..
            } => (visor_pk, app_name),
            Reply::Error { message } => return Err(AppError::Refused(message)),
            other => return Err(AppError::Unexpected(format!("{other:?}"))),
        };
        let (tx, rx) = mpsc::channel(16);
        tokio::spawn(control_task(s, rx));
        Ok(Client {
            inner: Arc::new(Inner {
                cfg,
                visor_pk,
                app_name,
                ctrl: tx,
            }),
        })
    }

    /// The launch configuration.
    pub fn config(&self) -> &ProcConfig {
        &self.inner.cfg
    }

    /// The public key of the visor running this app.
    pub fn visor_pk(&self) -> PubKey {
        self.inner.visor_pk
    }

    /// The app's name in the visor config.
    pub fn app_name(&self) -> &str {
        &self.inner.app_name
    }

    /// The nominal routing port from the launch configuration (0 when unknown).
    pub fn routing_port(&self) -> u16 {
        self.inner.cfg.routing_port
    }

    async fn call(&self, op: Op) -> Result<Response, AppError> {
        let (tx, rx) = oneshot::channel();
        self.inner
            .ctrl
            .send(Ctrl::Call(op, tx))
            .await
            .map_err(|_| AppError::ControlClosed)?;
        let resp = rx.await.map_err(|_| AppError::ControlClosed)??;
        match resp.error {
            Some(e) => Err(AppError::Refused(e)),
            None => Ok(resp),
        }
    }

    /// Opens a data connection with `hello` and waits for [`Reply::Connected`].
    async fn open(&self, hello: Hello) -> Result<AppConn, AppError> {
        let mut s = connect(&self.inner.cfg.app_server_addr).await?;
        write_msg(&mut s, &hello).await?;
        match read_msg::<Reply, _>(&mut s).await? {
            Reply::Connected { local, remote } => Ok(AppConn {
                stream: s,
                local,
                remote,
            }),
            Reply::Error { message } => Err(AppError::Refused(message)),
            other => Err(AppError::Unexpected(format!("{other:?}"))),
        }
    }

    /// Dials `pk:port` on `net` through the visor. The returned conn is a plain byte pipe.
    pub async fn dial(&self, net: Net, pk: PubKey, port: u16) -> Result<AppConn, AppError> {
        self.open(Hello::Dial {
            version: PROTOCOL_VERSION,
            proc_key: self.inner.cfg.proc_key,
            remote: Addr::new(net, pk, port),
        })
        .await
    }

    /// Listens on `port` of `net` under the visor's key.
    pub async fn listen(&self, net: Net, port: u16) -> Result<AppListener, AppError> {
        let resp = self.call(Op::Listen { net, port }).await?;
        let id = resp
            .listener
            .ok_or_else(|| AppError::Unexpected("listen reply without a listener ID".into()))?;
        Ok(AppListener {
            client: self.clone(),
            id,
            addr: Addr::new(net, self.inner.visor_pk, port),
            closed: false,
        })
    }

    /// Sets the free-text status the visor shows (`Starting`, `Running`, ...).
    pub async fn set_detailed_status(&self, status: &str) -> Result<(), AppError> {
        self.call(Op::SetDetailedStatus {
            status: status.to_owned(),
        })
        .await
        .map(drop)
    }

    /// Marks the app errored with `error`.
    pub async fn set_error(&self, error: &str) -> Result<(), AppError> {
        self.call(Op::SetError {
            error: error.to_owned(),
        })
        .await
        .map(drop)
    }

    /// Reports the app's routing port.
    pub async fn set_app_port(&self, port: u16) -> Result<(), AppError> {
        self.call(Op::SetAppPort { port }).await.map(drop)
    }
}

/// Owns the control connection: one request at a time, answers matched by ID.
async fn control_task(mut s: TcpStream, mut rx: mpsc::Receiver<Ctrl>) {
    let mut next_id: u32 = 0;
    while let Some(cmd) = rx.recv().await {
        next_id = next_id.wrapping_add(1);
        let (op, reply) = match cmd {
            Ctrl::Call(op, tx) => (op, Some(tx)),
            Ctrl::Fire(op) => (op, None),
        };
        let id = next_id;
        let result = async {
            write_msg(&mut s, &Request { id, op }).await?;
            let resp: Response = read_msg(&mut s).await?;
            if resp.id != id {
                return Err(AppError::Unexpected(format!(
                    "response for request {} while waiting for {id}",
                    resp.id
                )));
            }
            Ok(resp)
        }
        .await;
        let failed = result.is_err();
        if let Some(tx) = reply {
            let _ = tx.send(result);
        }
        if failed {
            // The stream is out of step or gone: every later call fails with ControlClosed.
            tracing::debug!("app control connection closed");
            return;
        }
    }
}

/// A listener bound through the visor. Dropping it (or [`AppListener::close`]) releases the port.
#[derive(Debug)]
pub struct AppListener {
    client: Client,
    id: u16,
    addr: Addr,
    closed: bool,
}

impl AppListener {
    /// The listening address (the visor's key and the port).
    pub fn addr(&self) -> Addr {
        self.addr
    }

    /// The visor's ID of this listener.
    pub fn id(&self) -> u16 {
        self.id
    }

    /// Waits for the next conn; returns it with the remote address. Several accepts may wait at
    /// once (each holds one local connection to the app server).
    pub async fn accept(&self) -> Result<(AppConn, Addr), AppError> {
        let conn = self
            .client
            .open(Hello::Accept {
                version: PROTOCOL_VERSION,
                proc_key: self.client.inner.cfg.proc_key,
                listener: self.id,
            })
            .await?;
        let remote = conn.remote;
        Ok((conn, remote))
    }

    /// Releases the port and waits for the visor to confirm.
    pub async fn close(mut self) -> Result<(), AppError> {
        self.closed = true;
        self.client
            .call(Op::CloseListener { listener: self.id })
            .await
            .map(drop)
    }
}

impl Drop for AppListener {
    fn drop(&mut self) {
        if !self.closed {
            let _ = self
                .client
                .inner
                .ctrl
                .try_send(Ctrl::Fire(Op::CloseListener { listener: self.id }));
        }
    }
}

/// A conn to a remote app: `AsyncRead + AsyncWrite` over a local socket that the visor pipes to
/// the remote stream byte for byte. `shutdown` half-closes (the peer reads EOF).
#[derive(Debug)]
pub struct AppConn {
    stream: TcpStream,
    local: Addr,
    remote: Addr,
}

impl AppConn {
    /// Our end (the visor's key and the local port).
    pub fn local(&self) -> Addr {
        self.local
    }

    /// The peer's end.
    pub fn remote(&self) -> Addr {
        self.remote
    }

    /// The underlying local socket (for `into_split` and the like).
    pub fn into_inner(self) -> TcpStream {
        self.stream
    }
}

impl AsyncRead for AppConn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for AppConn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}
