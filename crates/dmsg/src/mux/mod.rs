//! yamux stream multiplexer, wire-compatible with hashicorp/yamux v0.1.1 (the version the
//! reference dmsg pins), for the dmsg session (plain TCP after the noise-XK handshake).
//!
//! Hand-written rather than wrapping libp2p `yamux` because dmsg peers rely on hashicorp-exact
//! behaviour that crate does not have: eager ACK of inbound streams (a Go opener closes the
//! whole session when its SYN is not ACKed within `StreamOpenTimeout`), keepalive Pings with a
//! deadline (our dead-session detection), `StreamOpenTimeout`/`StreamCloseTimeout`, accept
//! backlog overflow answered with RST, and GoAway codes. rust-yamux stays in the tests as an
//! interoperability oracle.
//!
//! Modules:
//! * [`frame`]: sans-IO header codec and frame decoder (never panics).
//! * [`config`]: [`Config`] (hashicorp `DefaultConfig`, [`Config::tuned_2026`]).
//! * `session`: the driver task owning the connection, and the [`Session`] handle.
//! * `stream`: [`Stream`], tokio `AsyncRead + AsyncWrite`.
//!
//! # Semantics
//!
//! * **Open**: WindowUpdate|SYN, delta 0, before any data (exactly like Go). At most
//!   `accept_backlog` unacknowledged opens at once (Go's `synCh`).
//! * **Accept**: ACK (WindowUpdate|ACK, delta 0) is sent when the stream enters the accept
//!   backlog ([`AckPolicy::OnReceipt`], default) or when the application accepts it
//!   ([`AckPolicy::OnAccept`], Go's timing). A full backlog, or a local GoAway, answers RST.
//! * **Flow control**: 256 KiB initial window per direction; the receiver returns credit once
//!   the application has consumed at least half of `max_stream_window`; a sender never exceeds
//!   the peer's window; Data beyond our window is a protocol error (GoAway 1, session closed).
//!   Each write sends one Data frame of `min(len, window, max_frame_size)` bytes.
//! * **Close**: `poll_shutdown` sends FIN (WindowUpdate|FIN, delta 0). We implement a true
//!   half-close: after our FIN we keep reading until the peer's FIN. **Go v0.1.1 quirk**: a Go
//!   peer's `Stream.Read` returns EOF as soon as *it* called `Close`, so a Go peer never reads
//!   after sending its FIN; treat a Go FIN as a full close and never design a protocol step in
//!   which a Go side closes and still expects data. A FIN'd stream that the peer never closes is
//!   reset after `stream_close_timeout` (hashicorp `StreamCloseTimeout`).
//! * **Drop** without shutdown sends FIN (like Go `Close`), or RST if received data was left
//!   unread (like a TCP socket closed with unread data, so the peer learns its data was lost).
//!   Data arriving for a dropped stream is discarded without returning window credit (as Go
//!   does for a closed stream).
//! * **RST** in either direction: reads and writes fail with `ConnectionReset`.
//! * **Unknown streams**: a frame for a stream that existed and is gone is dropped (Go does the
//!   same; data can be in flight after a RST). A frame for an id that was **never opened**
//!   (or id 0, or a SYN with our parity, or a duplicate SYN) is a protocol error.
//! * **Keepalive**: a Ping every `keepalive_interval`; no answer within
//!   `connection_write_timeout` closes the session ([`Error::KeepAliveTimeout`]). Every Ping
//!   SYN is answered with an ACK echoing its id. A write to the connection that takes longer
//!   than `connection_write_timeout` also closes the session.
//! * **GoAway**: code 0 received → no new streams ([`Session::remote_goaway`]); codes ≠ 0
//!   close the session ([`Error::PeerGoAway`]). [`Session::close`] sends GoAway 0.

pub mod config;
pub mod frame;
mod session;
mod stream;

pub use config::{AckPolicy, Config};
pub use frame::{Flags, Frame, FrameDecoder, FrameError, FrameType, GoAwayCode, Header};
pub use session::{Mode, Session};
pub use stream::Stream;

use std::io;
use std::sync::Arc;

/// Keeps the session open while a [`Session`] handle or a [`Stream`] exists; closing it
/// (GoAway 0) when the last one is dropped.
#[derive(Debug)]
pub(crate) struct Liveness(pub(crate) Arc<session::Shared>);

/// Errors of the multiplexer (session and stream level).
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The session was closed locally ([`Session::close`], or every handle dropped).
    #[error("yamux session closed")]
    SessionClosed,
    /// The peer closed the connection.
    #[error("yamux connection closed by the peer")]
    ConnectionClosed,
    /// Reading or writing the connection failed.
    #[error("yamux connection i/o error")]
    Io(#[source] Arc<io::Error>),
    /// A keepalive Ping was not answered within `connection_write_timeout`.
    #[error("yamux keepalive timeout: the peer did not answer a ping")]
    KeepAliveTimeout,
    /// Writing to the connection took longer than `connection_write_timeout`.
    #[error("yamux connection write timeout")]
    WriteTimeout,
    /// Our SYN was not ACKed within `stream_open_timeout`.
    #[error("yamux stream {0} was not acknowledged within the stream open timeout")]
    StreamOpenTimeout(u32),
    /// An explicit [`Session::ping`] got no answer in time.
    #[error("yamux ping timeout")]
    Timeout,
    /// Malformed frame header.
    #[error("yamux protocol error")]
    Frame(#[from] FrameError),
    /// The peer sent more data than our receive window allows.
    #[error("yamux receive window exceeded on stream {stream}: {len} bytes, window {window}")]
    WindowExceeded {
        /// Stream id.
        stream: u32,
        /// Data frame length.
        len: u32,
        /// Remaining window.
        window: u32,
    },
    /// A frame for a stream id that was never opened.
    #[error("yamux frame for unknown stream {0}")]
    UnknownStream(u32),
    /// A SYN for a stream that already exists.
    #[error("yamux duplicate stream {0}")]
    DuplicateStream(u32),
    /// A SYN with stream id 0 or our own id parity.
    #[error("yamux invalid stream id {0} in SYN")]
    InvalidStreamId(u32),
    /// The peer closed the session with a GoAway error code (1 protocol, 2 internal).
    #[error("yamux peer sent GoAway with error code {0}")]
    PeerGoAway(u32),
    /// The peer sent GoAway: no new streams may be opened.
    #[error("yamux peer is not accepting new streams (GoAway)")]
    RemoteGoAway,
    /// Stream ids are exhausted on this session.
    #[error("yamux stream ids exhausted")]
    StreamsExhausted,
    /// The stream was reset (RST) by either side.
    #[error("yamux stream reset")]
    StreamReset,
    /// Write after our own FIN.
    #[error("yamux write on a stream after shutdown")]
    WriteAfterClose,
}

impl Error {
    /// The GoAway code we send when this error closes the session (protocol violations only).
    pub fn go_away_code(&self) -> Option<GoAwayCode> {
        match self {
            Error::Frame(_)
            | Error::WindowExceeded { .. }
            | Error::UnknownStream(_)
            | Error::DuplicateStream(_)
            | Error::InvalidStreamId(_) => Some(GoAwayCode::ProtocolError),
            _ => None,
        }
    }

    /// The `io::ErrorKind` a stream reports for this error.
    pub fn io_kind(&self) -> io::ErrorKind {
        match self {
            Error::StreamReset => io::ErrorKind::ConnectionReset,
            Error::WriteAfterClose => io::ErrorKind::BrokenPipe,
            Error::KeepAliveTimeout
            | Error::WriteTimeout
            | Error::StreamOpenTimeout(_)
            | Error::Timeout => io::ErrorKind::TimedOut,
            _ => io::ErrorKind::ConnectionAborted,
        }
    }
}

impl From<Error> for io::Error {
    /// Keeps the [`Error`] as the source (`io::Error::get_ref` / `downcast`).
    fn from(e: Error) -> Self {
        io::Error::new(e.io_kind(), e)
    }
}
