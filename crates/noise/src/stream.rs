//! [`NoiseStream`]: the reference `noise.ReadWriter` (dmsg-wire.md 3) as a tokio
//! `AsyncRead + AsyncWrite` over any byte stream, plus the framed handshake drivers of 2.5
//! (`BE16(len) || message`, one write per message, received lengths above 4094 rejected,
//! overall timeout; on failure the connection is dropped).
//!
//! Reads fill a 64 KiB [`FrameDecoder`] straight from the socket and decrypt in place; leftover
//! plaintext is served by the next read. Writes encrypt up to 16 frames (65120 plaintext bytes)
//! into one reused buffer and hand it to the socket in as few writes as it accepts. Read errors
//! (bad length, failed AEAD, stale nonce, I/O) and write errors are sticky, as in the reference.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use skywire_cipher::{PubKey, SecKey};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

use crate::error::{FrameError, NoiseError};
use crate::frame::FrameDecoder;
use crate::handshake::Handshake;
use crate::transport::{Transport, TransportReceiver, TransportSender, wire_len_for};
use crate::{LEN_PREFIX, MAX_HANDSHAKE_MSG_LEN, MAX_PLAINTEXT_PER_FRAME, NONCE_LEN, TAG_LEN};

/// Frames encrypted per `poll_write` call (16 * 4070 = 65120 plaintext bytes).
const FRAMES_PER_WRITE: usize = 16;
/// Plaintext accepted per `poll_write` call.
pub const MAX_WRITE_CHUNK: usize = FRAMES_PER_WRITE * MAX_PLAINTEXT_PER_FRAME;

/// A sticky error, reproducible on every later call.
#[derive(Debug, Clone, Copy)]
enum Sticky {
    Frame(FrameError),
    Io(io::ErrorKind),
    UnexpectedEof,
}

impl Sticky {
    fn to_io(self) -> io::Error {
        match self {
            Sticky::Frame(e) => e.into(),
            Sticky::Io(kind) => io::Error::new(kind, "noise stream: earlier i/o error"),
            Sticky::UnexpectedEof => io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "noise stream: connection closed inside a frame",
            ),
        }
    }
}

/// An encrypted Skywire noise connection over `T`.
pub struct NoiseStream<T> {
    io: T,
    tx: TransportSender,
    rx: TransportReceiver,
    remote: PubKey,
    decoder: FrameDecoder,
    /// Decrypted plaintext not yet handed out, as a range of the decoder's buffer.
    plain_start: usize,
    plain_end: usize,
    read_eof: bool,
    read_err: Option<Sticky>,
    wbuf: Vec<u8>,
    wpos: usize,
    write_err: Option<Sticky>,
}

impl<T> std::fmt::Debug for NoiseStream<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NoiseStream")
            .field("remote", &self.remote.to_string())
            .field("tx", &self.tx)
            .field("rx", &self.rx)
            .field("read_err", &self.read_err)
            .field("write_err", &self.write_err)
            .finish_non_exhaustive()
    }
}

impl<T> NoiseStream<T> {
    /// Wraps `io` with an established transport (e.g. after a KK handshake carried inside dmsg
    /// objects). `remote` is the peer's static key.
    pub fn new(io: T, transport: Transport, remote: PubKey) -> Self {
        let (tx, rx) = transport.into_split();
        Self {
            io,
            tx,
            rx,
            remote,
            decoder: FrameDecoder::new(),
            plain_start: 0,
            plain_end: 0,
            read_eof: false,
            read_err: None,
            wbuf: Vec::with_capacity(wire_len_for(MAX_WRITE_CHUNK)),
            wpos: 0,
            write_err: None,
        }
    }

    /// The peer's static public key.
    pub fn remote_pk(&self) -> &PubKey {
        &self.remote
    }

    /// The underlying connection.
    pub fn get_ref(&self) -> &T {
        &self.io
    }

    /// The underlying connection (writing to it directly corrupts the stream).
    pub fn get_mut(&mut self) -> &mut T {
        &mut self.io
    }

    /// Returns the underlying connection, discarding buffered data.
    pub fn into_inner(self) -> T {
        self.io
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> NoiseStream<T> {
    /// XK initiator handshake (dmsg client) towards `remote` over `io`, framed as in 2.5,
    /// bounded by `timeout` (use [`crate::DEFAULT_HANDSHAKE_TIMEOUT`]).
    ///
    /// # Errors
    /// Handshake, I/O or [`NoiseError::Timeout`]; `io` is dropped (closed) on error.
    pub async fn xk_initiator(
        io: T,
        local: &SecKey,
        remote: PubKey,
        timeout: Duration,
    ) -> Result<Self, NoiseError> {
        Self::handshake(io, Handshake::xk_initiator(local, remote)?, timeout).await
    }

    /// XK responder handshake (dmsg server) over `io`; the peer's key is then
    /// [`remote_pk`](Self::remote_pk).
    ///
    /// # Errors
    /// Handshake, I/O or [`NoiseError::Timeout`]; `io` is dropped (closed) on error.
    pub async fn xk_responder(
        io: T,
        local: &SecKey,
        timeout: Duration,
    ) -> Result<Self, NoiseError> {
        Self::handshake(io, Handshake::xk_responder(local)?, timeout).await
    }

    /// Runs any prepared handshake with 2.5 framing, then wraps `io`.
    ///
    /// # Errors
    /// Handshake, I/O or [`NoiseError::Timeout`]; `io` is dropped (closed) on error.
    pub async fn handshake(
        mut io: T,
        mut hs: Handshake,
        timeout: Duration,
    ) -> Result<Self, NoiseError> {
        match tokio::time::timeout(timeout, drive_framed_handshake(&mut io, &mut hs)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(NoiseError::Timeout(timeout)),
        }
        let transport = hs.into_transport()?;
        let remote = transport
            .remote_static()
            .copied()
            .ok_or(NoiseError::RemoteStatic)?;
        Ok(Self::new(io, transport, remote))
    }
}

/// Runs `hs` to completion over `io` with the 2.5 framing. Reads exactly what each message
/// needs, so nothing beyond the last handshake message is consumed.
///
/// # Errors
/// I/O errors, [`NoiseError::HandshakeMessageTooLong`] for a received length above 4094, and
/// handshake errors.
pub async fn drive_framed_handshake<T: AsyncRead + AsyncWrite + Unpin>(
    io: &mut T,
    hs: &mut Handshake,
) -> Result<(), NoiseError> {
    let mut msg = Vec::with_capacity(128);
    while !hs.is_finished() {
        if hs.is_failed() {
            return Err(NoiseError::HandshakeFailed);
        }
        msg.clear();
        if hs.is_my_turn() {
            msg.extend_from_slice(&[0, 0]);
            let n = hs.write_message(&[], &mut msg)?;
            let len = u16::try_from(n).map_err(|_| NoiseError::HandshakeMessageTooLong {
                len: n,
                max: MAX_HANDSHAKE_MSG_LEN,
            })?;
            msg[..LEN_PREFIX].copy_from_slice(&len.to_be_bytes());
            io.write_all(&msg).await?;
            io.flush().await?;
        } else {
            let mut prefix = [0u8; LEN_PREFIX];
            io.read_exact(&mut prefix).await?;
            let len = usize::from(u16::from_be_bytes(prefix));
            if len > MAX_HANDSHAKE_MSG_LEN {
                return Err(NoiseError::HandshakeMessageTooLong {
                    len,
                    max: MAX_HANDSHAKE_MSG_LEN,
                });
            }
            msg.resize(len, 0);
            io.read_exact(&mut msg).await?;
            // Payloads from newer peers (ML-KEM material) are accepted and ignored.
            let _payload = hs.read_message(&msg)?;
        }
    }
    Ok(())
}

impl<T: AsyncWrite + Unpin> NoiseStream<T> {
    /// Writes out the pending encrypted bytes.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.wpos < self.wbuf.len() {
            match Pin::new(&mut self.io).poll_write(cx, &self.wbuf[self.wpos..]) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(0)) => {
                    self.write_err = Some(Sticky::Io(io::ErrorKind::WriteZero));
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                Poll::Ready(Ok(n)) => self.wpos += n,
                Poll::Ready(Err(e)) => {
                    if !matches!(
                        e.kind(),
                        io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock
                    ) {
                        self.write_err = Some(Sticky::Io(e.kind()));
                    }
                    return Poll::Ready(Err(e));
                }
            }
        }
        self.wbuf.clear();
        self.wpos = 0;
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for NoiseStream<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        let mut delivered = false;
        loop {
            if this.plain_start < this.plain_end {
                let n = buf.remaining().min(this.plain_end - this.plain_start);
                buf.put_slice(this.decoder.slice(this.plain_start..this.plain_start + n));
                this.plain_start += n;
                delivered = true;
                if buf.remaining() == 0 {
                    return Poll::Ready(Ok(()));
                }
                continue;
            }
            if let Some(e) = this.read_err {
                return if delivered {
                    Poll::Ready(Ok(()))
                } else {
                    Poll::Ready(Err(e.to_io()))
                };
            }
            match this.decoder.next_frame_range() {
                Err(e) => {
                    this.read_err = Some(Sticky::Frame(e));
                }
                Ok(Some(range)) => {
                    let body = this.decoder.slice_mut(range.clone());
                    match this.rx.decrypt_frame(body) {
                        Ok(_) => {
                            // Empty frames are skipped by the loop (start == end).
                            this.plain_start = range.start + NONCE_LEN;
                            this.plain_end = range.end - TAG_LEN;
                        }
                        Err(e) => this.read_err = Some(Sticky::Frame(e)),
                    }
                }
                Ok(None) => {
                    if delivered {
                        // Hand out what we have rather than waiting for the socket.
                        return Poll::Ready(Ok(()));
                    }
                    if this.read_eof {
                        if this.decoder.buffered() > 0 {
                            this.read_err = Some(Sticky::UnexpectedEof);
                            continue;
                        }
                        return Poll::Ready(Ok(()));
                    }
                    let dst = this.decoder.unfilled_mut();
                    let mut rb = ReadBuf::new(dst);
                    match Pin::new(&mut this.io).poll_read(cx, &mut rb) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(Ok(())) => {
                            let n = rb.filled().len();
                            if n == 0 {
                                this.read_eof = true;
                            } else {
                                this.decoder.commit(n);
                            }
                        }
                        Poll::Ready(Err(e)) => {
                            if matches!(
                                e.kind(),
                                io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock
                            ) {
                                return Poll::Ready(Err(e));
                            }
                            this.read_err = Some(Sticky::Io(e.kind()));
                            return Poll::Ready(Err(e));
                        }
                    }
                }
            }
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for NoiseStream<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Some(e) = this.write_err {
            return Poll::Ready(Err(e.to_io()));
        }
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        ready!(this.poll_drain(cx))?;
        let n = data.len().min(MAX_WRITE_CHUNK);
        if let Err(e) = this.tx.encrypt_frames(&data[..n], &mut this.wbuf) {
            this.wbuf.clear();
            this.write_err = Some(Sticky::Frame(e));
            return Poll::Ready(Err(e.into()));
        }
        // Push as much as the socket takes now; the rest goes out on the next write/flush.
        if let Poll::Ready(Err(e)) = this.poll_drain(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(e) = this.write_err {
            return Poll::Ready(Err(e.to_io()));
        }
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.write_err.is_none() {
            ready!(this.poll_drain(cx))?;
        }
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}
