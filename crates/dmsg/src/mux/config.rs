//! Session configuration: hashicorp/yamux v0.1.1 `DefaultConfig()` (what the 2023 reference
//! uses on both ends) plus the tuned 2026 values, and a few knobs of this implementation.
//!
//! Owns only plain data; the driver in `session.rs` reads it.

use std::time::Duration;

/// When an inbound stream's SYN is acknowledged.
///
/// hashicorp/yamux v0.1.1 ACKs inside `AcceptStream`, i.e. when the application takes the
/// stream, and an opener keeps at most `AcceptBacklog` SYNs unacknowledged. Together these bound
/// the receiver's accept queue: with [`AckPolicy::OnAccept`] (our default, hashicorp-exact) a
/// burst of opens from a peer that honours the same limit can never overflow the backlog.
/// [`AckPolicy::OnReceipt`] ACKs as soon as the stream is queued; it protects a Go opener
/// against an application that is slow to accept (Go closes the **whole session** if a SYN is
/// not ACKed within `StreamOpenTimeout`, 75 s), but then bursts beyond the backlog are RST. The
/// wire bytes are identical either way (`WindowUpdate|ACK`, delta 0); only the moment differs.
/// dmsg accepts every stream at once, so it keeps the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AckPolicy {
    /// ACK when the SYN is queued for `accept()`.
    OnReceipt,
    /// ACK when the application calls `accept()` (hashicorp-exact; default).
    #[default]
    OnAccept,
}

/// yamux session configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Inbound streams waiting for `accept()` (and outbound streams waiting for an ACK); more
    /// are RST (inbound) or wait (outbound). hashicorp `AcceptBacklog`.
    pub accept_backlog: usize,
    /// Send a Ping every `keepalive_interval` and close the session if it is not answered
    /// within `connection_write_timeout`. hashicorp `EnableKeepAlive`.
    pub enable_keepalive: bool,
    /// hashicorp `KeepAliveInterval`.
    pub keepalive_interval: Duration,
    /// Bound on one write to the connection and on a keepalive Ping's answer.
    /// hashicorp `ConnectionWriteTimeout`.
    pub connection_write_timeout: Duration,
    /// Receive window per stream (initial and maximum). hashicorp `MaxStreamWindowSize`; must
    /// be at least 256 KiB.
    pub max_stream_window: u32,
    /// If an opened stream is not ACKed within this time the whole session is closed (like Go).
    /// `None` disables it. hashicorp `StreamOpenTimeout`.
    pub stream_open_timeout: Option<Duration>,
    /// A stream we half-closed is reset after this time if the peer never closes its side.
    /// `None` disables it. hashicorp `StreamCloseTimeout`.
    pub stream_close_timeout: Option<Duration>,
    /// When inbound streams are ACKed (not a hashicorp setting, see [`AckPolicy`]).
    pub ack_policy: AckPolicy,
    /// Largest Data frame we send (hashicorp sends `min(window, len)`; smaller frames let
    /// streams interleave fairly). Not a hashicorp setting.
    pub max_frame_size: u32,
    /// Bytes of queued outbound frames above which stream writers wait for the connection
    /// (coalescing buffer). Not a hashicorp setting.
    pub write_buffer_limit: usize,
}

impl Default for Config {
    /// hashicorp/yamux v0.1.1 `DefaultConfig()`.
    fn default() -> Self {
        Self {
            accept_backlog: 256,
            enable_keepalive: true,
            keepalive_interval: Duration::from_secs(30),
            connection_write_timeout: Duration::from_secs(10),
            max_stream_window: 256 * 1024,
            stream_open_timeout: Some(Duration::from_secs(75)),
            stream_close_timeout: Some(Duration::from_secs(300)),
            ack_policy: AckPolicy::default(),
            max_frame_size: 64 * 1024,
            write_buffer_limit: 512 * 1024,
        }
    }
}

impl Config {
    /// The tuned yamux config of the 2025–2026 Skywire code (`dmsg-wire.md` section 7):
    /// AcceptBacklog 512, StreamOpenTimeout 20 s, StreamCloseTimeout 30 s, rest as default.
    pub fn tuned_2026() -> Self {
        Self {
            accept_backlog: 512,
            stream_open_timeout: Some(Duration::from_secs(20)),
            stream_close_timeout: Some(Duration::from_secs(30)),
            ..Self::default()
        }
    }

    /// Clamps values that would break the protocol (window below 256 KiB, zero sizes).
    pub(crate) fn normalized(mut self) -> Self {
        self.accept_backlog = self.accept_backlog.max(1);
        self.max_stream_window = self
            .max_stream_window
            .max(super::frame::INITIAL_STREAM_WINDOW);
        self.max_frame_size = self.max_frame_size.max(1);
        self.write_buffer_limit = self.write_buffer_limit.max(16 * 1024);
        self
    }
}
