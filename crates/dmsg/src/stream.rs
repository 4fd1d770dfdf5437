//! Application-facing dmsg streams and listeners. A [`DmsgStream`] is an end-to-end noise-KK
//! channel (section-3 framing) over one mux stream of a session to a relay server; it knows its
//! local and remote [`Addr`] and holds its local port until dropped. A [`Listener`] receives the
//! streams dialled to one port.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use skywire_noise::NoiseStream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::mpsc;

use crate::addr::Addr;
use crate::mux;
use crate::porter::PortGuard;

/// An end-to-end encrypted dmsg stream (`AsyncRead + AsyncWrite`).
///
/// `poll_shutdown` half-closes (mux FIN): the peer reads EOF and can still send back. Our relay
/// server propagates the FIN and keeps the other direction open. A 2023 Go relay closes **both**
/// directions on the first EOF, so through it a half-close silently truncates whatever the peer
/// still had to send; protocols that may cross a Go relay must not rely on reading after
/// shutting down their write side.
#[derive(Debug)]
pub struct DmsgStream {
    inner: NoiseStream<mux::Stream>,
    local: Addr,
    remote: Addr,
    _port: Option<PortGuard>,
}

impl DmsgStream {
    pub(crate) fn new(
        inner: NoiseStream<mux::Stream>,
        local: Addr,
        remote: Addr,
        port: Option<PortGuard>,
    ) -> DmsgStream {
        DmsgStream {
            inner,
            local,
            remote,
            _port: port,
        }
    }

    /// Our side: own key and the (ephemeral or listening) port.
    pub fn local_addr(&self) -> Addr {
        self.local
    }

    /// The peer's key and port.
    pub fn remote_addr(&self) -> Addr {
        self.remote
    }
}

impl AsyncRead for DmsgStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for DmsgStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Streams dialled to one local port. Dropping it frees the port; pending streams are closed.
#[derive(Debug)]
pub struct Listener {
    pub(crate) addr: Addr,
    pub(crate) rx: mpsc::Receiver<DmsgStream>,
    pub(crate) _port: PortGuard,
    pub(crate) _registration: crate::client::ListenerRegistration,
}

impl Listener {
    /// Our address (own key, listening port).
    pub fn local_addr(&self) -> Addr {
        self.addr
    }

    /// The next accepted stream; `None` once the client is closed.
    pub async fn accept(&mut self) -> Option<DmsgStream> {
        self.rx.recv().await
    }
}
