//! The carrier listeners of a [`PtyHost`]: a dmsg port listener, the noise-XK TCP listener
//! (pty.md 5) and the unix control socket, each an accept task owning its connections, with a
//! [`HostHandle`] to stop it. Stopping (or dropping the handle) stops accepting, cancels every
//! connection (their pty children are killed and reaped) and removes the control socket file.

use std::net::SocketAddr;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tokio::net::{TcpListener, UnixListener};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use super::{Carrier, HostError, PtyHost};

/// A running listener. [`shutdown`](Self::shutdown) stops it and waits; dropping it stops it
/// without waiting.
#[derive(Debug)]
pub struct HostHandle {
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
    tcp_addr: Option<SocketAddr>,
    socket_path: Option<PathBuf>,
}

impl HostHandle {
    fn new(
        stop: watch::Sender<bool>,
        task: JoinHandle<()>,
        tcp_addr: Option<SocketAddr>,
        socket_path: Option<PathBuf>,
    ) -> Self {
        HostHandle {
            stop,
            task: Some(task),
            tcp_addr,
            socket_path,
        }
    }

    /// The bound address of a TCP listener.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.tcp_addr
    }

    /// The socket file of a control-socket listener.
    pub fn socket_path(&self) -> Option<&Path> {
        self.socket_path.as_deref()
    }

    /// Stops accepting, ends every connection (killing and reaping their pty children) and waits
    /// for all of it; removes the control socket file.
    pub async fn shutdown(mut self) {
        self.stop.send_replace(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        self.remove_socket_file();
    }

    fn remove_socket_file(&mut self) {
        if let Some(p) = self.socket_path.take() {
            match std::fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(path = %p.display(), error = %e, "pty host: removing socket")
                }
            }
        }
    }
}

impl Drop for HostHandle {
    fn drop(&mut self) {
        self.stop.send_replace(true);
        self.remove_socket_file();
    }
}

/// A source of accepted connections.
trait Acceptor: Send + 'static {
    type Conn: Send + 'static;
    /// The next connection; `None` when the source is gone.
    fn accept(&mut self) -> impl Future<Output = Option<Self::Conn>> + Send;
}

impl Acceptor for skywire_dmsg::Listener {
    type Conn = skywire_dmsg::DmsgStream;
    async fn accept(&mut self) -> Option<Self::Conn> {
        skywire_dmsg::Listener::accept(self).await
    }
}

impl Acceptor for TcpListener {
    type Conn = (tokio::net::TcpStream, SocketAddr);
    async fn accept(&mut self) -> Option<Self::Conn> {
        loop {
            match TcpListener::accept(self).await {
                Ok(c) => {
                    // Request/response protocols (rpc, sftp) write many small frames: without
                    // TCP_NODELAY, Nagle plus the peer's delayed ACK stalls each one ~40 ms.
                    if let Err(e) = c.0.set_nodelay(true) {
                        tracing::debug!(error = %e, "pty host: TCP_NODELAY");
                    }
                    return Some(c);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "pty host: tcp accept");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            }
        }
    }
}

impl Acceptor for UnixListener {
    type Conn = tokio::net::UnixStream;
    async fn accept(&mut self) -> Option<Self::Conn> {
        loop {
            match UnixListener::accept(self).await {
                Ok((s, _)) => return Some(s),
                Err(e) => {
                    tracing::warn!(error = %e, "pty host: control socket accept");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            }
        }
    }
}

/// Pause after a failed accept (e.g. out of file descriptors) before trying again.
const ACCEPT_BACKOFF: std::time::Duration = std::time::Duration::from_millis(100);

/// Runs `acceptor` until stopped, spawning `serve` for each connection; on stop aborts every
/// connection and waits for them.
async fn accept_loop<A, S, SF>(mut stop: watch::Receiver<bool>, mut acceptor: A, serve: S)
where
    A: Acceptor,
    S: Fn(A::Conn) -> SF,
    SF: Future<Output = ()> + Send + 'static,
{
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            item = acceptor.accept() => match item {
                Some(item) => {
                    conns.spawn(serve(item));
                }
                None => break,
            },
        }
    }
    conns.abort_all();
    while conns.join_next().await.is_some() {}
}

fn log_result(carrier: Carrier, res: Result<(), HostError>) {
    match res {
        Ok(()) => tracing::debug!(?carrier, "pty host: stream done"),
        Err(e) => tracing::debug!(?carrier, error = %e, "pty host: stream ended with error"),
    }
}

impl PtyHost {
    /// Serves the streams of a dmsg listener (port 22 normally): remote key = the stream's
    /// dmsg-authenticated peer key.
    pub fn serve_dmsg(&self, listener: skywire_dmsg::Listener) -> HostHandle {
        let (stop, stop_rx) = watch::channel(false);
        let host = self.clone();
        let task = tokio::spawn(async move {
            accept_loop(stop_rx, listener, |stream: skywire_dmsg::DmsgStream| {
                let host = host.clone();
                async move {
                    let pk = stream.remote_addr().pk;
                    log_result(
                        Carrier::Dmsg,
                        host.serve_stream(stream, Some(pk), Carrier::Dmsg).await,
                    );
                }
            })
            .await;
        });
        HostHandle::new(stop, task, None, None)
    }

    /// Serves noise-XK TCP connections (pty.md 5): responder handshake with the host key bounded
    /// by the configured timeout, then the whitelist check on the initiator's key (a rejected
    /// peer sees the connection closed without a byte).
    pub fn serve_tcp(&self, listener: TcpListener) -> HostHandle {
        let (stop, stop_rx) = watch::channel(false);
        let addr = listener.local_addr().ok();
        let host = self.clone();
        let task = tokio::spawn(async move {
            accept_loop(
                stop_rx,
                listener,
                |(tcp, peer): (tokio::net::TcpStream, SocketAddr)| {
                    let host = host.clone();
                    async move {
                        let inner = &host.inner;
                        let res = match skywire_noise::NoiseStream::xk_responder(
                            tcp,
                            &inner.sk,
                            inner.tcp_handshake_timeout,
                        )
                        .await
                        {
                            Ok(ns) => {
                                let pk = *ns.remote_pk();
                                tracing::debug!(%peer, remote = %pk, "pty host: tcp handshake done");
                                host.serve_stream(ns, Some(pk), Carrier::Tcp).await
                            }
                            Err(e) => Err(HostError::Handshake(e)),
                        };
                        log_result(Carrier::Tcp, res);
                    }
                },
            )
            .await;
        });
        HostHandle::new(stop, task, addr, None)
    }

    /// Serves the local control socket at `path` (trusted: no whitelist check; also the
    /// whitelist service). A stale socket file is removed first (any other kind of file is an
    /// error); the socket is made mode 0600 and removed when the handle stops.
    pub fn serve_unix(&self, path: impl AsRef<Path>) -> Result<HostHandle, HostError> {
        let path = path.as_ref().to_path_buf();
        let io_err = |what: &str, source| HostError::Io {
            what: format!("{what} {}", path.display()),
            source,
        };
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_socket() => {
                std::fs::remove_file(&path).map_err(|e| io_err("removing stale socket", e))?;
            }
            Ok(_) => {
                return Err(io_err(
                    "control socket path",
                    std::io::Error::new(
                        std::io::ErrorKind::AlreadyExists,
                        "exists and is not a socket",
                    ),
                ));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("inspecting", e)),
        }
        let listener = UnixListener::bind(&path).map_err(|e| io_err("binding", e))?;
        if let Err(e) = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)) {
            let _ = std::fs::remove_file(&path);
            return Err(io_err("setting mode of", e));
        }
        let (stop, stop_rx) = watch::channel(false);
        let host = self.clone();
        let task = tokio::spawn(async move {
            accept_loop(stop_rx, listener, |stream: tokio::net::UnixStream| {
                let host = host.clone();
                async move {
                    log_result(
                        Carrier::Control,
                        host.serve_stream(stream, None, Carrier::Control).await,
                    );
                }
            })
            .await;
        });
        Ok(HostHandle::new(stop, task, None, Some(path)))
    }
}
