//! One multiplexed stream: its shared state (receive buffer, windows, close flags, wakers) and
//! the user-facing [`Stream`] handle implementing tokio `AsyncRead + AsyncWrite`.
//!
//! The reader task of the session pushes received payload straight into [`StreamInner::recv`]
//! under the stream's mutex and wakes the stored read waker; `poll_write` encodes Data frames
//! directly into the session's outbound buffer. No channel sits between a stream and the
//! connection, so a byte chunk costs one mutex hop each way, not a task hop.
//!
//! Close semantics (see the module docs of [`crate::mux`] for the Go v0.1.1 quirk):
//! `poll_shutdown` sends FIN (WindowUpdate|FIN, delta 0) and the stream stays readable until
//! the peer's FIN; RST makes reads and writes fail with `ConnectionReset`; dropping a stream
//! sends FIN, or RST if received data was never read.

use super::frame::Flags;
use super::session::{Shared, lock};
use super::{Error, Liveness};
use bytes::{Buf, BytesMut};
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::OwnedSemaphorePermit;

/// Receive buffer capacity kept by a stream whose buffer is empty.
const IDLE_RECV_CAPACITY: usize = 64 * 1024;

/// Opening handshake phase of a stream (hashicorp `streamSYNSent` etc.).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// We sent SYN, no ACK yet.
    SynSent,
    /// Peer sent SYN, we have not ACKed yet.
    SynReceived,
    /// Both sides agree the stream exists.
    Established,
}

/// Mutable per-stream state, guarded by [`StreamShared::inner`].
#[derive(Debug)]
pub(crate) struct StreamInner {
    pub(crate) phase: Phase,
    /// We sent FIN.
    pub(crate) local_closed: bool,
    /// Peer sent FIN.
    pub(crate) remote_closed: bool,
    /// RST sent or received.
    pub(crate) reset: bool,
    /// The user's handle is gone; incoming data is discarded.
    pub(crate) dropped: bool,
    /// Received, not yet read payload (at most the receive window).
    pub(crate) recv: BytesMut,
    /// Credit the peer still has for sending to us.
    pub(crate) recv_window: u32,
    /// Credit we have for sending to the peer.
    pub(crate) send_window: u32,
    pub(crate) read_waker: Option<Waker>,
    pub(crate) write_waker: Option<Waker>,
    /// Held while our SYN is unacknowledged (bounds in-flight opens like Go's `synCh`).
    pub(crate) syn_permit: Option<OwnedSemaphorePermit>,
}

impl StreamInner {
    /// hashicorp `sendFlags`: the first frame of a stream carries SYN or ACK.
    pub(crate) fn send_flags(&mut self) -> Flags {
        match self.phase {
            Phase::SynReceived => {
                self.phase = Phase::Established;
                Flags::ACK
            }
            Phase::SynSent | Phase::Established => Flags::NONE,
        }
    }

    /// hashicorp `sendWindowUpdate` arithmetic: credit consumed by the application since the
    /// last update; `None` while it is below half the window and no flag forces a frame.
    pub(crate) fn window_delta(&mut self, max: u32, force: bool) -> Option<u32> {
        let buffered = u32::try_from(self.recv.len()).unwrap_or(u32::MAX);
        let delta = max
            .saturating_sub(buffered)
            .saturating_sub(self.recv_window);
        if delta < max / 2 && !force {
            return None;
        }
        self.recv_window = self.recv_window.saturating_add(delta);
        Some(delta)
    }

    pub(crate) fn wake_all(&mut self) {
        if let Some(w) = self.read_waker.take() {
            w.wake();
        }
        if let Some(w) = self.write_waker.take() {
            w.wake();
        }
    }

    /// Both directions are finished; the session can forget the stream.
    pub(crate) fn is_finished(&self) -> bool {
        self.reset || (self.local_closed && self.remote_closed)
    }
}

/// A stream as the session sees it (kept in the stream table and the accept queue).
#[derive(Debug)]
pub(crate) struct StreamShared {
    pub(crate) id: u32,
    pub(crate) inner: Mutex<StreamInner>,
}

impl StreamShared {
    pub(crate) fn new(id: u32, phase: Phase, recv_window: u32, send_window: u32) -> Self {
        Self {
            id,
            inner: Mutex::new(StreamInner {
                phase,
                local_closed: false,
                remote_closed: false,
                reset: false,
                dropped: false,
                recv: BytesMut::new(),
                recv_window,
                send_window,
                read_waker: None,
                write_waker: None,
                syn_permit: None,
            }),
        }
    }
}

/// A yamux stream: tokio `AsyncRead + AsyncWrite`.
///
/// * Reads return buffered data first, then EOF after the peer's FIN, `ConnectionReset` after
///   RST, and an error of kind `ConnectionAborted` if the session died.
/// * Writes block (return `Pending`) while the peer's window is exhausted; each write sends at
///   most `min(len, window, max_frame_size)` bytes as one Data frame.
/// * `poll_shutdown` sends FIN; reading continues until the peer's FIN (true half-close).
/// * Drop without shutdown sends FIN, or RST when received data was left unread (like a TCP
///   socket closed with unread data); see [`crate::mux`] for details.
#[derive(Debug)]
pub struct Stream {
    s: Arc<StreamShared>,
    shared: Arc<Shared>,
    _live: Arc<Liveness>,
}

impl Stream {
    pub(crate) fn new(s: Arc<StreamShared>, shared: Arc<Shared>, live: Arc<Liveness>) -> Self {
        Self {
            s,
            shared,
            _live: live,
        }
    }

    /// The yamux stream id (odd: opened by the client side, even: by the server side).
    pub fn id(&self) -> u32 {
        self.s.id
    }

    /// Aborts the stream: sends RST; later reads and writes fail with `ConnectionReset`.
    pub fn reset(&mut self) {
        self.shared.reset_stream(&self.s);
    }

    fn session_error(&self) -> io::Error {
        self.shared.close_reason().into()
    }
}

fn reset_error() -> io::Error {
    Error::StreamReset.into()
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let mut inner = lock(&this.s.inner);
        if !inner.recv.is_empty() {
            let n = buf.remaining().min(inner.recv.len());
            if n == 0 {
                return Poll::Ready(Ok(()));
            }
            buf.put_slice(&inner.recv[..n]);
            inner.recv.advance(n);
            if inner.recv.is_empty() && inner.recv.capacity() > IDLE_RECV_CAPACITY {
                // Don't keep up to a whole window of memory per idle stream.
                inner.recv = BytesMut::new();
            }
            if !inner.reset && !inner.remote_closed && !this.shared.is_closed() {
                this.shared.send_window_update(&mut inner, this.s.id);
            }
            return Poll::Ready(Ok(()));
        }
        if inner.reset {
            return Poll::Ready(Err(reset_error()));
        }
        if inner.remote_closed {
            return Poll::Ready(Ok(()));
        }
        if this.shared.is_closed() {
            return Poll::Ready(Err(this.session_error()));
        }
        match &inner.read_waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => inner.read_waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let mut inner = lock(&this.s.inner);
        if inner.reset {
            return Poll::Ready(Err(reset_error()));
        }
        if inner.local_closed {
            return Poll::Ready(Err(Error::WriteAfterClose.into()));
        }
        if this.shared.is_closed() {
            return Poll::Ready(Err(this.session_error()));
        }
        if inner.send_window == 0 {
            match &inner.write_waker {
                Some(w) if w.will_wake(cx.waker()) => {}
                _ => inner.write_waker = Some(cx.waker().clone()),
            }
            return Poll::Pending;
        }
        let n = buf
            .len()
            .min(inner.send_window as usize)
            .min(this.shared.config.max_frame_size as usize);
        match this
            .shared
            .try_push_data(cx, this.s.id, &mut inner, &buf[..n])
        {
            Ok(true) => {
                // n <= send_window, which is a u32.
                inner.send_window -= u32::try_from(n).unwrap_or(inner.send_window);
                Poll::Ready(Ok(n))
            }
            Ok(false) => Poll::Pending,
            Err(e) => Poll::Ready(Err(e.into())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Frames are queued for the connection's writer as soon as they are written; the
        // writer flushes continuously. Nothing to wait for per stream.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        {
            let inner = lock(&this.s.inner);
            if inner.local_closed {
                return Poll::Ready(Ok(()));
            }
            if inner.reset {
                return Poll::Ready(Err(reset_error()));
            }
        }
        if this.shared.is_closed() {
            return Poll::Ready(Err(this.session_error()));
        }
        this.shared.close_stream(&this.s);
        Poll::Ready(Ok(()))
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.shared.stream_dropped(&self.s);
    }
}
