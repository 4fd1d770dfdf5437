//! The visors this hypervisor manages: each one dials us on the hypervisor dmsg port and serves
//! its control API (HTTP/1.1) on that stream, so every accepted stream becomes a hyper client
//! connection keyed by the stream's remote key. A visor that reconnects replaces its old
//! connection; a connection that ends is dropped (the key stays known, shown offline). Requests
//! to one visor are serialized (HTTP/1.1 without pipelining). The hypervisor's own visor is
//! called in process through its control router.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use skywire_cipher::PubKey;
use skywire_dmsg::{DmsgStream, Listener};

/// Bound on one forwarded request.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Errors of a forwarded call.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// No live connection from that visor.
    #[error("visor {0} is not connected to this hypervisor")]
    Offline(PubKey),
    /// The visor's connection failed.
    #[error("visor {pk}: {source}")]
    Http {
        /// The visor.
        pk: PubKey,
        /// The cause.
        #[source]
        source: hyper::Error,
    },
    /// The request could not be built.
    #[error("building the request: {0}")]
    Request(#[from] http::Error),
    /// No answer in time.
    #[error("visor {0} did not answer within {CALL_TIMEOUT:?}")]
    Timeout(PubKey),
}

struct Conn {
    id: u64,
    sender: tokio::sync::Mutex<SendRequest<Full<Bytes>>>,
}

/// The managed visors and the local one.
pub struct Remotes {
    own: PubKey,
    local: Router,
    conns: Mutex<HashMap<PubKey, Arc<Conn>>>,
    /// Every key that ever connected (for the offline rows).
    seen: Mutex<BTreeMap<PubKey, ()>>,
    next_id: AtomicU64,
}

impl std::fmt::Debug for Remotes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remotes")
            .field("own", &self.own)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Remotes {
    /// `own` is served by `local` (the visor's control router).
    pub fn new(own: PubKey, local: Router) -> Arc<Remotes> {
        Arc::new(Remotes {
            own,
            local,
            conns: Mutex::new(HashMap::new()),
            seen: Mutex::new(BTreeMap::new()),
            next_id: AtomicU64::new(1),
        })
    }

    /// The hypervisor's own key.
    pub fn own(&self) -> PubKey {
        self.own
    }

    /// Every known visor (own first) and whether it has a live connection.
    pub fn list(&self) -> Vec<(PubKey, bool)> {
        let conns = lock(&self.conns);
        let mut out = vec![(self.own, true)];
        for pk in lock(&self.seen).keys() {
            if *pk != self.own {
                out.push((*pk, conns.contains_key(pk)));
            }
        }
        out
    }

    /// Accepts managed visors until the listener ends.
    pub async fn accept_loop(self: Arc<Self>, mut listener: Listener) {
        while let Some(stream) = listener.accept().await {
            let me = self.clone();
            tokio::spawn(async move { me.attach(stream).await });
        }
        tracing::warn!("hypervisor dmsg listener ended");
    }

    async fn attach(self: Arc<Self>, stream: DmsgStream) {
        let pk = stream.remote_addr().pk;
        let (sender, conn) =
            match hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream))
                .await
            {
                Ok(x) => x,
                Err(e) => {
                    tracing::debug!(visor = %pk, error = %e, "hypervisor link handshake");
                    return;
                }
            };
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let old = lock(&self.conns).insert(
            pk,
            Arc::new(Conn {
                id,
                sender: tokio::sync::Mutex::new(sender),
            }),
        );
        lock(&self.seen).insert(pk, ());
        tracing::info!(visor = %pk, replaced = old.is_some(), "managed visor connected");
        drop(old);
        if let Err(e) = conn.await {
            tracing::debug!(visor = %pk, error = %e, "managed visor link ended");
        }
        let mut conns = lock(&self.conns);
        if conns.get(&pk).is_some_and(|c| c.id == id) {
            conns.remove(&pk);
            tracing::info!(visor = %pk, "managed visor disconnected");
        }
    }

    /// Calls `method path` (JSON `body`) on visor `pk`'s control API: the status and body.
    pub async fn call(
        &self,
        pk: PubKey,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<(StatusCode, Bytes), CallError> {
        let mut b = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, "skywire-visor");
        if body.is_some() {
            b = b.header(header::CONTENT_TYPE, "application/json");
        }
        let data = Bytes::from(body.unwrap_or_default());
        if pk == self.own {
            let req = b.body(axum::body::Body::from(data))?;
            return tokio::time::timeout(CALL_TIMEOUT, self.call_local(req))
                .await
                .map_err(|_| CallError::Timeout(pk));
        }
        let req = b.body(Full::new(data))?;
        let conn = lock(&self.conns)
            .get(&pk)
            .cloned()
            .ok_or(CallError::Offline(pk))?;
        let fut = async {
            let mut sender = conn.sender.lock().await;
            sender
                .ready()
                .await
                .map_err(|source| CallError::Http { pk, source })?;
            let resp = sender
                .send_request(req)
                .await
                .map_err(|source| CallError::Http { pk, source })?;
            let status = resp.status();
            let body = resp
                .into_body()
                .collect()
                .await
                .map_err(|source| CallError::Http { pk, source })?
                .to_bytes();
            Ok((status, body))
        };
        tokio::time::timeout(CALL_TIMEOUT, fut)
            .await
            .map_err(|_| CallError::Timeout(pk))?
    }

    async fn call_local(&self, req: Request<axum::body::Body>) -> (StatusCode, Bytes) {
        use tower_service::Service;
        let mut router = self.local.clone();
        let _ = std::future::poll_fn(|cx| {
            <Router as Service<Request<axum::body::Body>>>::poll_ready(&mut router, cx)
        })
        .await;
        let resp = match router.call(req).await {
            Ok(r) => r,
            Err(never) => match never {},
        };
        let status = resp.status();
        match resp.into_body().collect().await {
            Ok(b) => (status, b.to_bytes()),
            Err(e) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                Bytes::from(serde_json::json!({ "error": e.to_string() }).to_string()),
            ),
        }
    }
}
