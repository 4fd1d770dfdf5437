//! The tokio `net/rpc` server: a [`Router`] maps `"<service>.<Method>"` names to async handlers
//! with their argument and reply types, and [`RpcServer`] serves one connection with it, reading
//! requests in order and running calls concurrently (replies go out in completion order, as Go's
//! server does). Unknown services/methods and undecodable arguments get Go's error replies and
//! the connection stays usable.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::Deserialize;
use skywire_gob::{Encoder, GobType, Limits, SharedRegistry};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::task::JoinSet;

use super::codec::{DecodeFn, ErasedBody, RpcServerCodec, decode_as};
use super::{Request, RpcError, ill_formed_text, unknown_method_text, unknown_service_text};
use crate::types::Method;

/// An application error returned by a handler; only its text travels (Go's `err.Error()`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceError(String);

impl ServiceError {
    /// An error with the given text (use the reference's exact texts, clients compare some).
    pub fn new(text: impl Into<String>) -> Self {
        ServiceError(text.into())
    }

    /// The text sent to the client.
    pub fn text(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ServiceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<String> for ServiceError {
    fn from(s: String) -> Self {
        ServiceError(s)
    }
}

impl From<&str> for ServiceError {
    fn from(s: &str) -> Self {
        ServiceError(s.to_owned())
    }
}

impl From<std::io::Error> for ServiceError {
    fn from(e: std::io::Error) -> Self {
        ServiceError(e.to_string())
    }
}

/// A reply value of any [`GobType`], encoded by the connection's writer.
trait ErasedReply: Send {
    fn encode(&self, enc: &mut Encoder, out: &mut Vec<u8>) -> skywire_gob::Result<()>;
}

impl<T: GobType + Send> ErasedReply for T {
    fn encode(&self, enc: &mut Encoder, out: &mut Vec<u8>) -> skywire_gob::Result<()> {
        enc.encode(self, out)
    }
}

type ReplyResult = Result<Box<dyn ErasedReply>, ServiceError>;
type ReplyFuture = Pin<Box<dyn Future<Output = ReplyResult> + Send>>;
type CallFn<S> = dyn Fn(Arc<S>, ErasedBody) -> ReplyFuture + Send + Sync;

struct Route<S> {
    decode: DecodeFn,
    call: Box<CallFn<S>>,
    ordered: bool,
}

/// The method table of a server: `"<service>.<Method>"` → async handler `(Arc<S>, Arg) ->
/// Result<Reply, ServiceError>`, where `S` is per-connection state (e.g. the stream's pty
/// gateway). Build it once, share it with `Arc`, serve each connection with its own state.
pub struct Router<S> {
    services: HashSet<String>,
    routes: HashMap<String, Route<S>>,
}

impl<S> std::fmt::Debug for Router<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<&String> = self.routes.keys().collect();
        names.sort();
        f.debug_struct("Router").field("methods", &names).finish()
    }
}

impl<S: Send + Sync + 'static> Default for Router<S> {
    fn default() -> Self {
        Self::new()
    }
}

impl<S: Send + Sync + 'static> Router<S> {
    /// An empty table.
    pub fn new() -> Self {
        Router {
            services: HashSet::new(),
            routes: HashMap::new(),
        }
    }

    /// Adds a method run concurrently with every other call.
    pub fn route<A, R, F, Fut>(self, service_method: &str, f: F) -> Self
    where
        A: for<'de> Deserialize<'de> + GobType + Send,
        R: GobType + Send,
        F: Fn(Arc<S>, A) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, ServiceError>> + Send + 'static,
    {
        self.add(service_method, f, false)
    }

    /// Adds a method whose calls run one at a time in arrival order (with every other ordered
    /// method of the connection), still concurrently with unordered methods. Meant for
    /// `pty.Write`, which clients pipeline.
    pub fn route_ordered<A, R, F, Fut>(self, service_method: &str, f: F) -> Self
    where
        A: for<'de> Deserialize<'de> + GobType + Send,
        R: GobType + Send,
        F: Fn(Arc<S>, A) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, ServiceError>> + Send + 'static,
    {
        self.add(service_method, f, true)
    }

    /// [`route`](Self::route) for a typed [`Method`].
    pub fn method<M, F, Fut>(self, f: F) -> Self
    where
        M: Method,
        F: Fn(Arc<S>, M::Arg) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<M::Reply, ServiceError>> + Send + 'static,
    {
        self.add(M::NAME, f, false)
    }

    /// [`route_ordered`](Self::route_ordered) for a typed [`Method`].
    pub fn method_ordered<M, F, Fut>(self, f: F) -> Self
    where
        M: Method,
        F: Fn(Arc<S>, M::Arg) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<M::Reply, ServiceError>> + Send + 'static,
    {
        self.add(M::NAME, f, true)
    }

    fn add<A, R, F, Fut>(mut self, service_method: &str, f: F, ordered: bool) -> Self
    where
        A: for<'de> Deserialize<'de> + GobType + Send,
        R: GobType + Send,
        F: Fn(Arc<S>, A) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, ServiceError>> + Send + 'static,
    {
        if let Some((service, _)) = service_method.rsplit_once('.') {
            self.services.insert(service.to_owned());
        }
        let call = move |state: Arc<S>, body: ErasedBody| -> ReplyFuture {
            match body.downcast::<A>() {
                Ok(arg) => {
                    let fut = f(state, *arg);
                    Box::pin(async move { fut.await.map(|r| Box::new(r) as Box<dyn ErasedReply>) })
                }
                Err(_) => Box::pin(std::future::ready(Err(ServiceError::new(
                    "rpc: internal error: argument type",
                )))),
            }
        };
        self.routes.insert(
            service_method.to_owned(),
            Route {
                decode: decode_as::<A>,
                call: Box::new(call),
                ordered,
            },
        );
        self
    }

    /// Whether `service_method` is served.
    pub fn contains(&self, service_method: &str) -> bool {
        self.routes.contains_key(service_method)
    }

    /// The route for a method, or the error text Go's server sends for it.
    fn lookup(&self, service_method: &str) -> Result<&Route<S>, String> {
        let Some((service, _)) = service_method.rsplit_once('.') else {
            return Err(ill_formed_text(service_method));
        };
        if !self.services.contains(service) {
            return Err(unknown_service_text(service_method));
        }
        self.routes
            .get(service_method)
            .ok_or_else(|| unknown_method_text(service_method))
    }
}

/// A reply on its way to the writer.
struct Outgoing {
    seq: u64,
    method: String,
    result: Result<Box<dyn ErasedReply>, String>,
}

/// A call for the per-connection ordered worker.
struct OrderedJob {
    req: Request,
    fut: ReplyFuture,
    _permit: OwnedSemaphorePermit,
}

enum Action {
    Call {
        req: Request,
        fut: ReplyFuture,
        ordered: bool,
    },
    Fail {
        req: Request,
        text: String,
    },
}

/// Serves one connection with a [`Router`] and that connection's state.
pub struct RpcServer<S> {
    router: Arc<Router<S>>,
    state: Arc<S>,
    max_in_flight: usize,
    limits: Limits,
    registry: Option<SharedRegistry>,
}

impl<S> std::fmt::Debug for RpcServer<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcServer")
            .field("router", &self.router)
            .field("max_in_flight", &self.max_in_flight)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl<S: Send + Sync + 'static> RpcServer<S> {
    /// Default bound on calls running at once on one connection (reading pauses beyond it).
    pub const DEFAULT_MAX_IN_FLIGHT: usize = 1024;

    /// A server for one connection.
    pub fn new(router: Arc<Router<S>>, state: Arc<S>) -> Self {
        RpcServer {
            router,
            state,
            max_in_flight: Self::DEFAULT_MAX_IN_FLIGHT,
            limits: Limits::default(),
            registry: None,
        }
    }

    /// Sets the bound on concurrently running calls (at least 1).
    pub fn max_in_flight(mut self, n: usize) -> Self {
        self.max_in_flight = n.max(1);
        self
    }

    /// Sets the gob limits (message size, nesting, definitions) for both directions.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Takes reply type ids from a shared registry (tests reproducing a Go process).
    pub fn shared_registry(mut self, reg: SharedRegistry) -> Self {
        self.registry = Some(reg);
        self
    }

    /// Serves until the client closes the stream (`Ok`), the stream fails or carries something
    /// that is not net/rpc gob (`Err`). Calls still running then are cancelled (their replies
    /// could not be delivered anyway); replies already produced are flushed first.
    pub async fn serve<IO>(self, io: IO) -> Result<(), RpcError>
    where
        IO: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (mut rd, wr) = tokio::io::split(io);
        let codec = Arc::new(Mutex::new(RpcServerCodec::with_options(
            self.registry.clone(),
            self.limits,
        )));
        let (out_tx, out_rx) = mpsc::channel::<Outgoing>(256);
        let writer = tokio::spawn(writer_loop(codec.clone(), wr, out_rx));
        let sem = Arc::new(Semaphore::new(self.max_in_flight));
        let mut tasks = JoinSet::new();
        let (ordered_tx, ordered_rx) = mpsc::unbounded_channel::<OrderedJob>();
        tasks.spawn(ordered_worker(ordered_rx, out_tx.clone()));

        let mut buf = vec![0u8; 64 * 1024];
        let result = 'conn: loop {
            let actions = match self.take_actions(&codec) {
                Ok(a) => a,
                Err(e) => break 'conn Err(e),
            };
            for action in actions {
                match action {
                    Action::Fail { req, text } => {
                        let o = Outgoing {
                            seq: req.seq,
                            method: req.service_method,
                            result: Err(text),
                        };
                        if out_tx.send(o).await.is_err() {
                            break 'conn Ok(());
                        }
                    }
                    Action::Call { req, fut, ordered } => {
                        let Ok(permit) = sem.clone().acquire_owned().await else {
                            break 'conn Ok(());
                        };
                        if ordered {
                            let job = OrderedJob {
                                req,
                                fut,
                                _permit: permit,
                            };
                            if ordered_tx.send(job).is_err() {
                                break 'conn Ok(());
                            }
                        } else {
                            let out_tx = out_tx.clone();
                            tasks.spawn(async move {
                                let result = fut.await.map_err(|e| e.0);
                                let o = Outgoing {
                                    seq: req.seq,
                                    method: req.service_method,
                                    result,
                                };
                                let _ = out_tx.send(o).await;
                                drop(permit);
                            });
                        }
                    }
                }
            }
            while tasks.try_join_next().is_some() {}
            match rd.read(&mut buf).await {
                Ok(0) => break Ok(()),
                Ok(n) => lock(&codec).feed(&buf[..n]),
                Err(e) => break Err(e.into()),
            }
        };
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
        drop(ordered_tx);
        drop(out_tx);
        let written = writer
            .await
            .unwrap_or_else(|e| Err(RpcError::ConnectionLost(format!("writer task: {e}"))));
        result.and(written.or_else(|e| match e {
            // The client went away before reading every reply: not a server failure.
            RpcError::Io(_) => Ok(()),
            other => Err(other),
        }))
    }

    /// Pulls every complete request out of the codec and turns it into an action.
    fn take_actions(&self, codec: &Mutex<RpcServerCodec>) -> Result<Vec<Action>, RpcError> {
        let mut c = lock(codec);
        let mut actions = Vec::new();
        while let Some(req) = c.poll_request()? {
            match self.router.lookup(&req.service_method) {
                Ok(route) => {
                    let Some(arg) = c.poll_body_with(route.decode)? else {
                        break;
                    };
                    match arg {
                        Ok(arg) => {
                            let fut = (route.call)(self.state.clone(), arg);
                            actions.push(Action::Call {
                                req,
                                fut,
                                ordered: route.ordered,
                            });
                        }
                        Err(e) => actions.push(Action::Fail {
                            req,
                            text: e.to_string(),
                        }),
                    }
                }
                Err(text) => {
                    if c.poll_skip_body()?.is_none() {
                        break;
                    }
                    actions.push(Action::Fail { req, text });
                }
            }
        }
        Ok(actions)
    }
}

async fn ordered_worker(mut rx: mpsc::UnboundedReceiver<OrderedJob>, out: mpsc::Sender<Outgoing>) {
    while let Some(job) = rx.recv().await {
        let result = job.fut.await.map_err(|e| e.0);
        let o = Outgoing {
            seq: job.req.seq,
            method: job.req.service_method,
            result,
        };
        if out.send(o).await.is_err() {
            return;
        }
    }
}

/// Most reply bytes gathered into one write.
const WRITE_BATCH: usize = 256 * 1024;

async fn writer_loop<W: AsyncWrite + Unpin>(
    codec: Arc<Mutex<RpcServerCodec>>,
    mut wr: W,
    mut rx: mpsc::Receiver<Outgoing>,
) -> Result<(), RpcError> {
    let mut out = Vec::new();
    while let Some(first) = rx.recv().await {
        out.clear();
        {
            let mut c = lock(&codec);
            encode_outgoing(&mut c, first, &mut out);
            while out.len() < WRITE_BATCH {
                match rx.try_recv() {
                    Ok(o) => encode_outgoing(&mut c, o, &mut out),
                    Err(_) => break,
                }
            }
        }
        wr.write_all(&out).await?;
        wr.flush().await?;
    }
    let _ = wr.shutdown().await;
    Ok(())
}

fn encode_outgoing(c: &mut RpcServerCodec, o: Outgoing, out: &mut Vec<u8>) {
    let r = match o.result {
        Ok(reply) => c.encode_reply_with(&o.method, o.seq, |enc, out| reply.encode(enc, out), out),
        Err(text) => c.encode_error(&o.method, o.seq, &text, out),
    };
    if let Err(e) = r {
        tracing::warn!(method = %o.method, seq = o.seq, error = %e, "rpc: encoding reply failed");
    }
}
