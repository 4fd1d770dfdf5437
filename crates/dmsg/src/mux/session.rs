//! The session: shared state (stream table, accept queue, pings, timers, outbound buffer),
//! the driver that owns the connection, and the cloneable [`Session`] handle.
//!
//! One driver task per session owns the IO. It splits the connection and runs
//! * the **reader** (a sub-task): reads big chunks into one `BytesMut`, decodes frames with
//!   [`FrameDecoder`], and applies each frame under the stream's mutex (payload copied into the
//!   stream's receive buffer, wakers woken; Ping answered; GoAway recorded);
//! * the **writer** (the driver task itself): swaps the shared outbound buffer, where streams and
//!   the reader encode their frames directly, against an empty one and writes the whole batch
//!   with one `write_all` bounded by `connection_write_timeout`. Everything queued while a write
//!   is in progress goes out in the next single write (coalescing). The writer also runs the
//!   keepalive interval and the timer heap (StreamOpenTimeout, StreamCloseTimeout, keepalive
//!   Ping deadlines).
//!
//! Lock order, always: `state` → a stream's `inner` → `out`. The close reason lives in a
//! `OnceLock` so it can be read under any lock.

use super::config::{AckPolicy, Config};
use super::frame::{
    Flags, Frame, FrameDecoder, FrameType, GoAwayCode, Header, INITIAL_STREAM_WINDOW,
};
use super::stream::{Phase, Stream, StreamInner, StreamShared};
use super::{Error, Liveness};
use bytes::BytesMut;
use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::task::{Context, Waker};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{Notify, Semaphore, mpsc, oneshot};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use tracing::{debug, trace, warn};

/// Bytes the reader asks the connection for at least, per read call.
const READ_CHUNK: usize = 128 * 1024;
/// First read size of a session; doubled while reads fill it, up to [`READ_CHUNK`], so idle
/// sessions stay small (10k idle sessions per server are normal).
const READ_CHUNK_MIN: usize = 4 * 1024;

/// Locks a std mutex, ignoring poisoning (state stays consistent: no panics while locked).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Which end of the session we are: decides stream id parity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Opens odd stream ids 1, 3, 5, … (the dmsg client).
    Client,
    /// Opens even stream ids 2, 4, 6, … (the dmsg server).
    Server,
}

#[derive(Debug)]
enum TimerKind {
    /// Our SYN must be ACKed by then, or the session closes. (Timers hold stream ids, not
    /// pointers, so the lazily deleted entries of finished streams stay small.)
    Open(u32),
    /// Our FIN was sent; the peer must FIN by then, or the stream is RST.
    Close(u32),
    /// A keepalive Ping must be answered by then, or the session closes.
    Ping(u32),
}

#[derive(Debug)]
struct TimerEntry {
    at: Instant,
    seq: u64,
    kind: TimerKind,
}

impl PartialEq for TimerEntry {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at && self.seq == other.seq
    }
}
impl Eq for TimerEntry {}
impl PartialOrd for TimerEntry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for TimerEntry {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

#[derive(Debug)]
struct PendingPing {
    sent: Instant,
    /// `None` for keepalive pings (their deadline is a timer).
    waiter: Option<oneshot::Sender<Duration>>,
}

#[derive(Debug)]
struct State {
    streams: HashMap<u32, Arc<StreamShared>>,
    next_id: u32,
    /// Highest stream id the peer has opened.
    max_remote_id: u32,
    accept_tx: Option<mpsc::Sender<Arc<StreamShared>>>,
    pings: HashMap<u32, PendingPing>,
    next_ping_id: u32,
    remote_goaway: bool,
    local_goaway: bool,
    timers: BinaryHeap<Reverse<TimerEntry>>,
    timer_seq: u64,
}

#[derive(Debug, Default)]
struct Outbound {
    buf: BytesMut,
    /// Stream writers waiting for `buf` to drain below the limit.
    waiters: Vec<Waker>,
    /// The session is closed: stream data is refused.
    closed: bool,
}

/// State shared by the driver, the handles and the streams of one session.
pub(crate) struct Shared {
    pub(crate) config: Config,
    mode: Mode,
    reason: OnceLock<Error>,
    state: Mutex<State>,
    out: Mutex<Outbound>,
    num_streams: AtomicUsize,
    write_notify: Notify,
    /// Fired when the session dies.
    cancel: CancellationToken,
    /// Fired when the driver has released the connection.
    done: CancellationToken,
    syn_sem: Arc<Semaphore>,
    accept_rx: tokio::sync::Mutex<mpsc::Receiver<Arc<StreamShared>>>,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("mode", &self.mode)
            .field("closed", &self.reason.get())
            .field(
                "num_streams",
                &self.num_streams.load(AtomicOrdering::Relaxed),
            )
            .finish_non_exhaustive()
    }
}

impl Shared {
    pub(crate) fn is_closed(&self) -> bool {
        self.reason.get().is_some()
    }

    /// Why the session closed ([`Error::SessionClosed`] while it is still open).
    pub(crate) fn close_reason(&self) -> Error {
        self.reason.get().cloned().unwrap_or(Error::SessionClosed)
    }

    fn is_local_id(&self, id: u32) -> bool {
        (id % 2 == 1) == (self.mode == Mode::Client)
    }

    /// Queues a frame for the writer (control frames bypass the buffer limit).
    pub(crate) fn push_frame(&self, h: Header, payload: &[u8]) {
        trace!(?h, "yamux send");
        {
            let mut out = lock(&self.out);
            out.buf.extend_from_slice(&h.encode());
            out.buf.extend_from_slice(payload);
        }
        self.write_notify.notify_one();
    }

    /// Queues a Data frame if the outbound buffer has room; otherwise registers the waker and
    /// returns `Ok(false)`.
    pub(crate) fn try_push_data(
        &self,
        cx: &mut Context<'_>,
        id: u32,
        inner: &mut StreamInner,
        data: &[u8],
    ) -> Result<bool, Error> {
        {
            let mut out = lock(&self.out);
            if out.closed {
                return Err(self.close_reason());
            }
            if out.buf.len() >= self.config.write_buffer_limit {
                if !out.waiters.iter().any(|w| w.will_wake(cx.waker())) {
                    out.waiters.push(cx.waker().clone());
                }
                return Ok(false);
            }
            let flags = inner.send_flags();
            let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
            out.buf
                .extend_from_slice(&Header::data(flags, id, len).encode());
            out.buf.extend_from_slice(data);
        }
        self.write_notify.notify_one();
        Ok(true)
    }

    /// hashicorp `sendWindowUpdate`: return consumed credit once half the window is used, or
    /// whenever a SYN/ACK flag has to go out.
    pub(crate) fn send_window_update(&self, inner: &mut StreamInner, id: u32) {
        let flags = inner.send_flags();
        if let Some(delta) = inner.window_delta(self.config.max_stream_window, flags != Flags::NONE)
        {
            self.push_frame(Header::window_update(flags, id, delta), &[]);
        }
    }

    fn add_timer(&self, st: &mut State, at: Instant, kind: TimerKind) {
        let earlier = st.timers.peek().is_none_or(|t| at < t.0.at);
        st.timer_seq += 1;
        st.timers.push(Reverse(TimerEntry {
            at,
            seq: st.timer_seq,
            kind,
        }));
        if earlier {
            self.write_notify.notify_one();
        }
    }

    fn remove_stream(&self, s: &Arc<StreamShared>) {
        let mut st = lock(&self.state);
        if st.streams.get(&s.id).is_some_and(|x| Arc::ptr_eq(x, s)) {
            st.streams.remove(&s.id);
            self.num_streams
                .store(st.streams.len(), AtomicOrdering::Relaxed);
        }
    }

    /// Sends FIN on a stream (user shutdown).
    pub(crate) fn close_stream(&self, s: &Arc<StreamShared>) {
        let finished = {
            let mut inner = lock(&s.inner);
            if inner.local_closed || inner.reset {
                return;
            }
            inner.local_closed = true;
            let flags = inner.send_flags() | Flags::FIN;
            self.push_frame(Header::window_update(flags, s.id, 0), &[]);
            inner.is_finished()
        };
        if finished {
            self.remove_stream(s);
        } else if let Some(t) = self.config.stream_close_timeout {
            let mut st = lock(&self.state);
            self.add_timer(&mut st, Instant::now() + t, TimerKind::Close(s.id));
        }
    }

    /// Sends RST on a stream (user reset, close timeout, drop with unread data).
    pub(crate) fn reset_stream(&self, s: &Arc<StreamShared>) {
        {
            let mut inner = lock(&s.inner);
            if inner.is_finished() {
                return;
            }
            inner.reset = true;
            inner.syn_permit = None;
            inner.recv.clear();
            if !self.is_closed() {
                self.push_frame(Header::window_update(Flags::RST, s.id, 0), &[]);
            }
            inner.wake_all();
        }
        self.remove_stream(s);
    }

    /// The user's [`Stream`] was dropped: FIN, or RST if unread data remains.
    pub(crate) fn stream_dropped(&self, s: &Arc<StreamShared>) {
        let action = {
            let mut inner = lock(&s.inner);
            inner.dropped = true;
            if inner.is_finished() || self.is_closed() {
                None
            } else if !inner.recv.is_empty() {
                Some(true)
            } else if !inner.local_closed {
                Some(false)
            } else {
                None
            }
        };
        match action {
            Some(true) => self.reset_stream(s),
            Some(false) => self.close_stream(s),
            None => {}
        }
    }

    /// Closes the session once: records the reason, optionally queues a GoAway, wakes every
    /// waiter and stops the driver (which still flushes what is queued, bounded in time).
    pub(crate) fn shutdown(&self, reason: Error, go_away: Option<GoAwayCode>) {
        if self.reason.set(reason.clone()).is_err() {
            return;
        }
        match &reason {
            // A Go peer ends every session by dropping TCP without GoAway: that is normal.
            Error::SessionClosed | Error::ConnectionClosed => {
                debug!(reason = %reason, "yamux session closed")
            }
            e => warn!(error = %e, "yamux session closed"),
        }
        let streams = {
            let mut st = lock(&self.state);
            if let Some(code) = go_away {
                st.local_goaway = true;
                self.push_frame(Header::go_away(code), &[]);
            }
            st.accept_tx = None;
            st.pings.clear();
            st.timers.clear();
            self.num_streams.store(0, AtomicOrdering::Relaxed);
            std::mem::take(&mut st.streams)
        };
        for s in streams.values() {
            let mut inner = lock(&s.inner);
            inner.syn_permit = None;
            inner.wake_all();
        }
        {
            let mut out = lock(&self.out);
            out.closed = true;
            for w in out.waiters.drain(..) {
                w.wake();
            }
        }
        self.syn_sem.close();
        self.cancel.cancel();
    }

    fn start_ping(&self, waiter: Option<oneshot::Sender<Duration>>) -> Result<u32, Error> {
        let mut st = lock(&self.state);
        if self.is_closed() {
            return Err(self.close_reason());
        }
        let id = st.next_ping_id;
        st.next_ping_id = id.wrapping_add(1);
        let now = Instant::now();
        if waiter.is_none() {
            self.add_timer(
                &mut st,
                now + self.config.connection_write_timeout,
                TimerKind::Ping(id),
            );
        }
        st.pings.insert(id, PendingPing { sent: now, waiter });
        self.push_frame(Header::ping(Flags::SYN, id), &[]);
        Ok(id)
    }

    fn next_deadline(&self) -> Option<Instant> {
        lock(&self.state).timers.peek().map(|t| t.0.at)
    }

    fn fire_timers(&self, now: Instant) {
        loop {
            let entry = {
                let mut st = lock(&self.state);
                match st.timers.peek() {
                    Some(t) if t.0.at <= now => st.timers.pop(),
                    _ => None,
                }
            };
            let Some(Reverse(entry)) = entry else { return };
            match entry.kind {
                TimerKind::Open(id) => {
                    let s = lock(&self.state).streams.get(&id).cloned();
                    if let Some(s) = s {
                        let unacked = {
                            let inner = lock(&s.inner);
                            inner.phase == Phase::SynSent && !inner.reset
                        };
                        if unacked {
                            self.shutdown(Error::StreamOpenTimeout(s.id), None);
                            return;
                        }
                    }
                }
                TimerKind::Close(id) => {
                    let s = lock(&self.state).streams.get(&id).cloned();
                    if let Some(s) = s {
                        debug!(stream = s.id, "yamux stream close timeout, resetting");
                        self.reset_stream(&s);
                    }
                }
                TimerKind::Ping(id) => {
                    let pending = lock(&self.state).pings.remove(&id);
                    if pending.is_some() {
                        self.shutdown(Error::KeepAliveTimeout, None);
                        return;
                    }
                }
            }
        }
    }

    /// Applies one received frame. An `Err` closes the session (with GoAway if
    /// [`Error::go_away_code`] says so).
    fn handle_frame(&self, f: Frame) -> Result<(), Error> {
        trace!(h = ?f.header, "yamux recv");
        match f.header.typ {
            FrameType::Data | FrameType::WindowUpdate => self.handle_stream_frame(f),
            FrameType::Ping => {
                let h = f.header;
                if h.flags.contains(Flags::SYN) {
                    self.push_frame(Header::ping(Flags::ACK, h.length), &[]);
                } else if h.flags.contains(Flags::ACK) {
                    let pending = lock(&self.state).pings.remove(&h.length);
                    if let Some(PendingPing {
                        sent,
                        waiter: Some(tx),
                    }) = pending
                    {
                        // The waiter may have timed out and gone; nothing to do then.
                        let _ = tx.send(sent.elapsed());
                    }
                }
                Ok(())
            }
            FrameType::GoAway => {
                lock(&self.state).remote_goaway = true;
                match f.header.length {
                    0 => {
                        debug!("yamux peer sent GoAway (normal)");
                        Ok(())
                    }
                    code => Err(Error::PeerGoAway(code)),
                }
            }
        }
    }

    fn handle_stream_frame(&self, f: Frame) -> Result<(), Error> {
        let h = f.header;
        let id = h.stream_id;
        let stream = {
            let mut st = lock(&self.state);
            if h.flags.contains(Flags::SYN) {
                self.incoming_stream(&mut st, id)?
            } else {
                match st.streams.get(&id) {
                    Some(s) => Some(s.clone()),
                    None => {
                        let never_opened = id == 0
                            || if self.is_local_id(id) {
                                id >= st.next_id
                            } else {
                                id > st.max_remote_id
                            };
                        if never_opened {
                            return Err(Error::UnknownStream(id));
                        }
                        // A stream that existed and is gone (closed, reset): like Go, drop the
                        // frame; the peer may have had data in flight.
                        trace!(
                            stream = id,
                            len = f.payload.len(),
                            "yamux frame for closed stream"
                        );
                        None
                    }
                }
            }
        };
        let Some(stream) = stream else { return Ok(()) };
        let finished = {
            let mut inner = lock(&stream.inner);
            if h.flags.contains(Flags::ACK) && inner.phase == Phase::SynSent {
                inner.phase = Phase::Established;
                inner.syn_permit = None;
            }
            if h.flags.contains(Flags::FIN) && !inner.remote_closed {
                inner.remote_closed = true;
                if let Some(w) = inner.read_waker.take() {
                    w.wake();
                }
            }
            if h.flags.contains(Flags::RST) {
                inner.reset = true;
                inner.syn_permit = None;
                inner.wake_all();
            }
            match h.typ {
                FrameType::WindowUpdate => {
                    if h.length > 0 {
                        inner.send_window = inner.send_window.saturating_add(h.length);
                        if let Some(w) = inner.write_waker.take() {
                            w.wake();
                        }
                    }
                }
                _ => {
                    let len = u32::try_from(f.payload.len()).unwrap_or(u32::MAX);
                    if len > inner.recv_window {
                        return Err(Error::WindowExceeded {
                            stream: id,
                            len,
                            window: inner.recv_window,
                        });
                    }
                    inner.recv_window -= len;
                    if len > 0 && !inner.dropped && !inner.reset {
                        inner.recv.extend_from_slice(&f.payload);
                        if let Some(w) = inner.read_waker.take() {
                            w.wake();
                        }
                    }
                }
            }
            inner.is_finished()
        };
        if finished {
            self.remove_stream(&stream);
        }
        Ok(())
    }

    /// hashicorp `incomingStream`: register, queue for accept, or RST if the backlog is full.
    fn incoming_stream(&self, st: &mut State, id: u32) -> Result<Option<Arc<StreamShared>>, Error> {
        if id == 0 || self.is_local_id(id) {
            return Err(Error::InvalidStreamId(id));
        }
        if st.streams.contains_key(&id) {
            return Err(Error::DuplicateStream(id));
        }
        st.max_remote_id = st.max_remote_id.max(id);
        if st.local_goaway || self.is_closed() {
            self.push_frame(Header::window_update(Flags::RST, id, 0), &[]);
            return Ok(None);
        }
        let s = Arc::new(StreamShared::new(
            id,
            Phase::SynReceived,
            INITIAL_STREAM_WINDOW,
            INITIAL_STREAM_WINDOW,
        ));
        let queued = st
            .accept_tx
            .as_ref()
            .is_some_and(|tx| tx.try_send(s.clone()).is_ok());
        if !queued {
            warn!(stream = id, "yamux accept backlog full, resetting stream");
            self.push_frame(Header::window_update(Flags::RST, id, 0), &[]);
            return Ok(None);
        }
        st.streams.insert(id, s.clone());
        self.num_streams
            .store(st.streams.len(), AtomicOrdering::Relaxed);
        if self.config.ack_policy == AckPolicy::OnReceipt {
            let mut inner = lock(&s.inner);
            self.send_window_update(&mut inner, id);
        }
        Ok(Some(s))
    }

    fn take_outbound(&self, spare: &mut BytesMut) -> bool {
        let mut out = lock(&self.out);
        if out.buf.is_empty() {
            return false;
        }
        std::mem::swap(&mut out.buf, spare);
        for w in out.waiters.drain(..) {
            w.wake();
        }
        true
    }
}

impl Drop for Liveness {
    fn drop(&mut self) {
        self.0
            .shutdown(Error::SessionClosed, Some(GoAwayCode::Normal));
    }
}

/// Handle to a yamux session. Cheap to clone; the session closes (GoAway 0) when the last
/// handle **and** the last [`Stream`] are dropped, or on [`Session::close`].
#[derive(Debug, Clone)]
pub struct Session {
    shared: Arc<Shared>,
    live: Arc<Liveness>,
}

impl Session {
    /// Starts a client session (odd stream ids) over `io`. Must be called inside a tokio
    /// runtime: spawns the driver task.
    pub fn client<T>(io: T, config: Config) -> Self
    where
        T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        Self::new(io, config, Mode::Client)
    }

    /// Starts a server session (even stream ids) over `io`. Must be called inside a tokio
    /// runtime: spawns the driver task.
    pub fn server<T>(io: T, config: Config) -> Self
    where
        T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        Self::new(io, config, Mode::Server)
    }

    /// Starts a session in the given mode.
    pub fn new<T>(io: T, config: Config, mode: Mode) -> Self
    where
        T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let config = config.normalized();
        let (accept_tx, accept_rx) = mpsc::channel(config.accept_backlog);
        let shared = Arc::new(Shared {
            mode,
            reason: OnceLock::new(),
            state: Mutex::new(State {
                streams: HashMap::new(),
                next_id: if mode == Mode::Client { 1 } else { 2 },
                max_remote_id: 0,
                accept_tx: Some(accept_tx),
                pings: HashMap::new(),
                next_ping_id: 0,
                remote_goaway: false,
                local_goaway: false,
                timers: BinaryHeap::new(),
                timer_seq: 0,
            }),
            out: Mutex::new(Outbound {
                // Grows on demand; idle sessions must not hold the whole coalescing budget.
                buf: BytesMut::new(),
                ..Outbound::default()
            }),
            num_streams: AtomicUsize::new(0),
            write_notify: Notify::new(),
            cancel: CancellationToken::new(),
            done: CancellationToken::new(),
            syn_sem: Arc::new(Semaphore::new(config.accept_backlog)),
            accept_rx: tokio::sync::Mutex::new(accept_rx),
            config,
        });
        tokio::spawn(drive(shared.clone(), io));
        let live = Arc::new(Liveness(shared.clone()));
        Self { shared, live }
    }

    /// Opens a stream: sends WindowUpdate|SYN (delta 0 with the default window) before any
    /// data, like Go's `OpenStream`, and returns without waiting for the ACK. Waits while
    /// `accept_backlog` of our SYNs are unacknowledged. If the ACK does not come within
    /// `stream_open_timeout`, the whole session is closed (hashicorp behaviour).
    pub async fn open_stream(&self) -> Result<Stream, Error> {
        let shared = &self.shared;
        if shared.is_closed() {
            return Err(shared.close_reason());
        }
        let permit = tokio::select! {
            p = shared.syn_sem.clone().acquire_owned() => p.map_err(|_| shared.close_reason())?,
            () = shared.cancel.cancelled() => return Err(shared.close_reason()),
        };
        let s = {
            let mut st = lock(&shared.state);
            if shared.is_closed() {
                return Err(shared.close_reason());
            }
            if st.remote_goaway {
                return Err(Error::RemoteGoAway);
            }
            let id = st.next_id;
            if id >= u32::MAX - 1 {
                return Err(Error::StreamsExhausted);
            }
            st.next_id += 2;
            let s = Arc::new(StreamShared::new(
                id,
                Phase::SynSent,
                INITIAL_STREAM_WINDOW,
                INITIAL_STREAM_WINDOW,
            ));
            st.streams.insert(id, s.clone());
            shared
                .num_streams
                .store(st.streams.len(), AtomicOrdering::Relaxed);
            if let Some(t) = shared.config.stream_open_timeout {
                shared.add_timer(&mut st, Instant::now() + t, TimerKind::Open(id));
            }
            {
                let mut inner = lock(&s.inner);
                inner.syn_permit = Some(permit);
                let delta = inner
                    .window_delta(shared.config.max_stream_window, true)
                    .unwrap_or(0);
                shared.push_frame(Header::window_update(Flags::SYN, id, delta), &[]);
            }
            s
        };
        Ok(Stream::new(s, shared.clone(), self.live.clone()))
    }

    /// Next inbound stream, or `None` once the session is closed. With
    /// [`AckPolicy::OnAccept`] the ACK is sent here.
    pub async fn accept(&self) -> Option<Stream> {
        let shared = &self.shared;
        let mut rx = shared.accept_rx.lock().await;
        let s = tokio::select! {
            s = rx.recv() => s?,
            () = shared.cancel.cancelled() => return None,
        };
        drop(rx);
        if shared.is_closed() {
            return None;
        }
        {
            let mut inner = lock(&s.inner);
            if inner.phase == Phase::SynReceived && !inner.reset {
                shared.send_window_update(&mut inner, s.id);
            }
        }
        Some(Stream::new(s, shared.clone(), self.live.clone()))
    }

    /// Round-trip time of one Ping; `Err(Timeout)` after `connection_write_timeout` (the
    /// session stays open, as in Go).
    pub async fn ping(&self) -> Result<Duration, Error> {
        let (tx, rx) = oneshot::channel();
        let id = self.shared.start_ping(Some(tx))?;
        match tokio::time::timeout(self.shared.config.connection_write_timeout, rx).await {
            Ok(Ok(rtt)) => Ok(rtt),
            Ok(Err(_)) => Err(self.shared.close_reason()),
            Err(_) => {
                lock(&self.shared.state).pings.remove(&id);
                Err(Error::Timeout)
            }
        }
    }

    /// Sends GoAway 0: the peer may open no new streams (ours get RST); existing streams and
    /// our own opens continue. hashicorp `GoAway`.
    pub fn go_away(&self) {
        let mut st = lock(&self.shared.state);
        if !st.local_goaway && !self.shared.is_closed() {
            st.local_goaway = true;
            self.shared
                .push_frame(Header::go_away(GoAwayCode::Normal), &[]);
        }
    }

    /// Closes the session: GoAway 0, flush (bounded by `connection_write_timeout`), close the
    /// connection. Resolves once the driver has released the connection.
    pub async fn close(&self) {
        self.shared
            .shutdown(Error::SessionClosed, Some(GoAwayCode::Normal));
        self.shared.done.cancelled().await;
    }

    /// Drops the session at once without a GoAway, as a crashed peer would: every stream fails
    /// and the connection is closed by the driver. Does not wait.
    pub fn abort(&self) {
        self.shared.shutdown(Error::SessionClosed, None);
    }

    /// True once the session is dead (closed locally, by the peer, or by an error).
    pub fn is_closed(&self) -> bool {
        self.shared.is_closed()
    }

    /// Resolves when the session dies, with the reason ([`Error::SessionClosed`] for a local
    /// close). Use it to replace dead sessions.
    pub async fn closed(&self) -> Error {
        self.shared.cancel.cancelled().await;
        self.shared.close_reason()
    }

    /// Streams currently known to the session (open, half-closed, or waiting for accept).
    pub fn num_streams(&self) -> usize {
        self.shared.num_streams.load(AtomicOrdering::Relaxed)
    }

    /// True once the peer sent GoAway: [`Session::open_stream`] then fails with
    /// [`Error::RemoteGoAway`].
    pub fn remote_goaway(&self) -> bool {
        lock(&self.shared.state).remote_goaway
    }

    /// Client or server end.
    pub fn mode(&self) -> Mode {
        self.shared.mode
    }
}

/// The driver task: owns the connection until the session dies.
async fn drive<T>(shared: Arc<Shared>, io: T)
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (r, mut w) = tokio::io::split(io);
    let reader = tokio::spawn(read_loop(shared.clone(), r));
    let wt = shared.config.connection_write_timeout;
    match write_loop(&shared, &mut w).await {
        Err(e) => shared.shutdown(e, None),
        Ok(()) => {
            // Session closed by someone else: flush what is queued (data, GoAway), bounded.
            let mut spare = BytesMut::new();
            let deadline = Instant::now() + wt;
            for _ in 0..4 {
                if !shared.take_outbound(&mut spare) {
                    break;
                }
                match tokio::time::timeout_at(deadline, w.write_all(&spare)).await {
                    Ok(Ok(())) => spare.clear(),
                    _ => break,
                }
            }
            let _ = tokio::time::timeout_at(deadline, w.flush()).await;
        }
    }
    let _ = tokio::time::timeout(wt, w.shutdown()).await;
    let _ = reader.await;
    drop(w);
    shared.done.cancel();
}

async fn write_loop<W>(shared: &Shared, w: &mut W) -> Result<(), Error>
where
    W: AsyncWrite + Unpin,
{
    let cfg = &shared.config;
    let mut spare = BytesMut::new();
    let mut keepalive = tokio::time::interval_at(
        Instant::now() + cfg.keepalive_interval,
        cfg.keepalive_interval.max(Duration::from_millis(1)),
    );
    keepalive.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let sleep = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(sleep);
    let mut armed: Option<Instant> = None;
    loop {
        if shared.is_closed() {
            return Ok(());
        }
        if shared.take_outbound(&mut spare) {
            let wt = cfg.connection_write_timeout;
            match tokio::time::timeout(wt, async {
                w.write_all(&spare).await?;
                w.flush().await
            })
            .await
            {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(Error::Io(Arc::new(e))),
                Err(_) => return Err(Error::WriteTimeout),
            }
            spare.clear();
            continue;
        }
        let next = shared.next_deadline();
        if next != armed {
            if let Some(at) = next {
                sleep.as_mut().reset(at);
            }
            armed = next;
        }
        tokio::select! {
            biased;
            () = shared.cancel.cancelled() => return Ok(()),
            () = shared.write_notify.notified() => {}
            () = &mut sleep, if armed.is_some() => {
                armed = None;
                shared.fire_timers(Instant::now());
            }
            _ = keepalive.tick(), if cfg.enable_keepalive => {
                // Fails only when the session is closed, which the loop notices.
                let _ = shared.start_ping(None);
            }
        }
    }
}

async fn read_loop<R>(shared: Arc<Shared>, mut r: R)
where
    R: AsyncRead + Unpin,
{
    let mut chunk = READ_CHUNK_MIN;
    let mut buf = BytesMut::with_capacity(chunk);
    let mut dec = FrameDecoder::new(shared.config.max_stream_window);
    loop {
        loop {
            match dec.decode(&mut buf) {
                Ok(Some(frame)) => {
                    if let Err(e) = shared.handle_frame(frame) {
                        let code = e.go_away_code();
                        shared.shutdown(e, code);
                        return;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    shared.shutdown(Error::Frame(e), Some(GoAwayCode::ProtocolError));
                    return;
                }
            }
        }
        buf.reserve(dec.wanted(buf.len()).max(chunk));
        let room = buf.capacity() - buf.len();
        let res = tokio::select! {
            biased;
            () = shared.cancel.cancelled() => return,
            r = r.read_buf(&mut buf) => r,
        };
        match res {
            Ok(0) => {
                shared.shutdown(Error::ConnectionClosed, None);
                return;
            }
            Ok(n) => {
                if n >= room && chunk < READ_CHUNK {
                    chunk *= 2;
                }
            }
            Err(e) => {
                shared.shutdown(Error::Io(Arc::new(e)), None);
                return;
            }
        }
    }
}
