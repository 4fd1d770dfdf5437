//! The tokio `net/rpc` client: a cloneable [`RpcClient`] handle over one connection, with any
//! number of calls in flight, replies matched by `Seq`. A reader task decodes replies, a writer
//! task sends requests; losing the connection fails every pending call with the same error.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::Deserialize;
use skywire_gob::{GobType, Limits, SharedRegistry};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::task::AbortHandle;

use super::RpcError;
use super::codec::{ErasedBody, RpcClientCodec};
use crate::types::Method;

type Waiter = oneshot::Sender<Result<ErasedBody, RpcError>>;

struct State {
    codec: RpcClientCodec,
    waiters: HashMap<u64, Waiter>,
    closed: Option<RpcError>,
}

struct Shared {
    state: Mutex<State>,
    /// Wakes the writer when the connection is closed.
    close_writer: Notify,
    reader: Mutex<Option<AbortHandle>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    /// Marks the connection closed with `err` (first error wins) and fails every pending call.
    fn fail_all(&self, err: RpcError) {
        let waiters: Vec<Waiter> = {
            let mut st = lock(&self.state);
            if st.closed.is_none() {
                st.closed = Some(err);
            }
            st.codec.take_pending();
            st.waiters.drain().map(|(_, w)| w).collect()
        };
        let err = lock(&self.state)
            .closed
            .clone()
            .unwrap_or(RpcError::Shutdown);
        for w in waiters {
            let _ = w.send(Err(err.clone()));
        }
        self.close_writer.notify_one();
        if let Some(h) = lock(&self.reader).take() {
            h.abort();
        }
    }
}

/// Owned by the handles; the last drop stops the reader.
struct Inner {
    shared: Arc<Shared>,
    tx: mpsc::Sender<Vec<u8>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.shared.fail_all(RpcError::Shutdown);
    }
}

/// A `net/rpc` client over one stream (after the `0x00` of the URI exchange). Clone it freely;
/// all clones share the connection, which closes when the last clone is dropped or on
/// [`close`](Self::close).
#[derive(Clone)]
pub struct RpcClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RpcClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = lock(&self.inner.shared.state);
        f.debug_struct("RpcClient")
            .field("pending", &st.waiters.len())
            .field("closed", &st.closed)
            .finish()
    }
}

/// Removes a call's waiter if the caller stops waiting (future dropped).
struct CancelGuard<'a> {
    shared: &'a Shared,
    seq: u64,
    armed: bool,
}

impl Drop for CancelGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            let mut st = lock(&self.shared.state);
            st.waiters.remove(&self.seq);
            st.codec.cancel(self.seq);
        }
    }
}

impl RpcClient {
    /// Starts the client on `io`; spawns its reader and writer tasks (needs a tokio runtime).
    pub fn new<IO>(io: IO) -> Self
    where
        IO: AsyncRead + AsyncWrite + Send + 'static,
    {
        Self::with_options(io, None, Limits::default())
    }

    /// [`new`](Self::new) with a shared type registry and gob limits.
    pub fn with_options<IO>(io: IO, reg: Option<SharedRegistry>, limits: Limits) -> Self
    where
        IO: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (rd, wr) = tokio::io::split(io);
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                codec: RpcClientCodec::with_options(reg, limits),
                waiters: HashMap::new(),
                closed: None,
            }),
            close_writer: Notify::new(),
            reader: Mutex::new(None),
        });
        let (tx, rx) = mpsc::channel::<Vec<u8>>(64);
        let reader = tokio::spawn(reader_loop(shared.clone(), rd));
        *lock(&shared.reader) = Some(reader.abort_handle());
        tokio::spawn(writer_loop(shared.clone(), wr, rx));
        RpcClient {
            inner: Arc::new(Inner { shared, tx }),
        }
    }

    /// Calls `service_method` with `arg` and waits for the reply, decoded as `R`. Any number of
    /// calls may run at once. Dropping the future abandons the call (its reply is discarded).
    pub async fn call<A, R>(&self, service_method: &str, arg: &A) -> Result<R, RpcError>
    where
        A: GobType + ?Sized,
        R: for<'de> Deserialize<'de> + GobType + Send + 'static,
    {
        let shared = &*self.inner.shared;
        let permit = match self.inner.tx.reserve().await {
            Ok(p) => p,
            Err(_) => return Err(self.closed_error()),
        };
        let (seq, rx) = {
            let mut st = lock(&shared.state);
            if let Some(e) = &st.closed {
                return Err(e.clone());
            }
            let mut out = Vec::new();
            let r = st.codec.encode_call::<A, R>(service_method, arg, &mut out);
            match r {
                Ok(seq) => {
                    let (tx, rx) = oneshot::channel();
                    st.waiters.insert(seq, tx);
                    permit.send(out);
                    (seq, rx)
                }
                Err(e) => {
                    // Type definitions the encoder counts as sent must reach the peer.
                    if !out.is_empty() {
                        permit.send(out);
                    }
                    return Err(e);
                }
            }
        };
        let mut guard = CancelGuard {
            shared,
            seq,
            armed: true,
        };
        let res = rx.await;
        guard.armed = false;
        match res {
            Ok(Ok(body)) => body
                .downcast::<R>()
                .map(|b| *b)
                .map_err(|_| RpcError::ReplyType(service_method.to_owned())),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(self.closed_error()),
        }
    }

    /// [`call`](Self::call) for a typed [`Method`].
    pub async fn call_method<M: Method>(&self, arg: &M::Arg) -> Result<M::Reply, RpcError> {
        self.call::<M::Arg, M::Reply>(M::NAME, arg).await
    }

    /// Number of calls waiting for a reply.
    pub fn pending(&self) -> usize {
        lock(&self.inner.shared.state).waiters.len()
    }

    /// The error that closed the connection, if it is closed.
    pub fn closed(&self) -> Option<RpcError> {
        lock(&self.inner.shared.state).closed.clone()
    }

    /// Closes the connection: pending and later calls fail with [`RpcError::Shutdown`].
    pub fn close(&self) {
        self.inner.shared.fail_all(RpcError::Shutdown);
    }

    fn closed_error(&self) -> RpcError {
        self.closed().unwrap_or(RpcError::Shutdown)
    }
}

async fn reader_loop<R: AsyncRead + Unpin>(shared: Arc<Shared>, mut rd: R) {
    let mut buf = vec![0u8; 64 * 1024];
    let err = loop {
        let n = match rd.read(&mut buf).await {
            Ok(0) => break RpcError::ConnectionLost("unexpected EOF".into()),
            Ok(n) => n,
            Err(e) => break RpcError::ConnectionLost(e.to_string()),
        };
        let mut done = Vec::new();
        let failed = {
            let mut st = lock(&shared.state);
            st.codec.feed(&buf[..n]);
            loop {
                match st.codec.poll_completed() {
                    Ok(Some(c)) => {
                        if let Some(w) = st.waiters.remove(&c.seq) {
                            done.push((w, c.result));
                        }
                    }
                    Ok(None) => break None,
                    Err(e) => break Some(e),
                }
            }
        };
        for (w, r) in done {
            let _ = w.send(r);
        }
        if let Some(e) = failed {
            break e;
        }
    };
    shared.fail_all(err);
}

async fn writer_loop<W: AsyncWrite + Unpin>(
    shared: Arc<Shared>,
    mut wr: W,
    mut rx: mpsc::Receiver<Vec<u8>>,
) {
    loop {
        let first = tokio::select! {
            m = rx.recv() => m,
            () = shared.close_writer.notified() => None,
        };
        let Some(mut out) = first else { break };
        while let Ok(more) = rx.try_recv() {
            out.extend_from_slice(&more);
        }
        let r = async {
            wr.write_all(&out).await?;
            wr.flush().await
        }
        .await;
        if let Err(e) = r {
            shared.fail_all(RpcError::ConnectionLost(format!("write: {e}")));
            break;
        }
    }
    let _ = wr.shutdown().await;
}
