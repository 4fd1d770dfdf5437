//! dmsghttp (`dmsg-wire.md` 4.9): HTTP/1.1 spoken directly on dmsg streams, port 80 by default.
//! This module owns the glue between hyper and [`DmsgStream`](crate::DmsgStream)s:
//! * [`serve`]: runs any tower service (an axum `Router`, a `service_fn`) on every stream a
//!   [`Listener`] accepts, one hyper HTTP/1.1 connection per stream;
//! * [`request`] / [`get`]: dial `dmsg://<pk>[:<port>]/path` and send one request over a fresh
//!   stream; the response body streams from the peer while it is read;
//! * [`DmsgUrl`]: parsing of those URLs (`http://<pk>[:<port>]/...` as the Go transport writes
//!   them is accepted too).
//!
//! The `Host` header is the peer's key (`<pk>:<port>` for a port other than 80), as the Go
//! `dmsghttp` transport sends it.

use std::error::Error as StdError;
use std::fmt;
use std::str::FromStr;

use bytes::Bytes;
use http::{Request, Response, Uri, header};
use http_body_util::Empty;
use hyper::body::{Body, Incoming};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use skywire_cipher::PubKey;
use tokio::task::JoinSet;

use crate::addr::Addr;
use crate::client::Client;
use crate::error::DmsgError;
use crate::stream::Listener;

/// The reference's `DefaultDmsgHTTPPort`.
pub const DEFAULT_PORT: u16 = 80;

type BoxError = Box<dyn StdError + Send + Sync>;

/// Errors of dmsghttp requests.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The URL is not `dmsg://<pk>[:<port>]/path`.
    #[error("invalid dmsg URL {url:?}: {reason}")]
    Url {
        /// The text given.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The stream to the peer could not be opened.
    #[error("cannot reach {addr}")]
    Dial {
        /// The peer.
        addr: Addr,
        /// Why.
        #[source]
        source: Box<DmsgError>,
    },
    /// The HTTP exchange failed (connection lost, malformed response).
    #[error("HTTP exchange with {addr} failed")]
    Http {
        /// The peer.
        addr: Addr,
        /// hyper's error.
        #[source]
        source: hyper::Error,
    },
    /// The request could not be rebuilt for the wire.
    #[error("invalid request")]
    Request(#[from] http::Error),
}

/// A parsed `dmsg://<pk>[:<port>]/path?query` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DmsgUrl {
    /// The peer's key and port (80 when the URL has none).
    pub addr: Addr,
    /// Path and query, always starting with `/`.
    pub path_and_query: String,
}

impl DmsgUrl {
    /// Parses `dmsg://<pk>[:<port>][/path][?query]` (also `http://`; a `.dmsg` suffix on the key
    /// is allowed; a `#fragment` is dropped).
    pub fn parse(text: &str) -> Result<DmsgUrl, HttpError> {
        let err = |reason| HttpError::Url {
            url: text.to_owned(),
            reason,
        };
        let without_fragment = text.split('#').next().unwrap_or_default();
        let uri: Uri = without_fragment
            .parse()
            .map_err(|_| err("not a URL (expected dmsg://<pk>[:<port>]/path)"))?;
        match uri.scheme_str() {
            Some(s) if s.eq_ignore_ascii_case("dmsg") || s.eq_ignore_ascii_case("http") => {}
            Some(_) => return Err(err("the scheme must be dmsg:// (or http://)")),
            None => return Err(err("missing scheme (expected dmsg://<pk>[:<port>]/path)")),
        }
        let authority = uri.authority().ok_or_else(|| err("missing public key"))?;
        if authority.as_str().contains('@') {
            return Err(err("user information is not supported"));
        }
        let host = authority.host();
        let host = host
            .strip_suffix(".dmsg")
            .or_else(|| host.strip_suffix(".DMSG"))
            .unwrap_or(host);
        let pk = PubKey::from_hex(host).map_err(|_| err("the host is not a public key"))?;
        if pk.is_null() {
            return Err(err("the null public key is not an address"));
        }
        // Read the port from the text: `Authority::port` hides ports above 65535.
        let port = match authority.as_str().rsplit_once(':') {
            Some((_, p)) => p
                .parse::<u16>()
                .map_err(|_| err("the port must be 1..=65535"))?,
            None => DEFAULT_PORT,
        };
        if port == 0 {
            return Err(err("port 0 is not a dmsg port"));
        }
        let path_and_query = match uri.path_and_query() {
            Some(pq) if pq.as_str().starts_with('/') => pq.as_str().to_owned(),
            Some(pq) => format!("/{}", pq.as_str()),
            None => "/".to_owned(),
        };
        Ok(DmsgUrl {
            addr: Addr::new(pk, port),
            path_and_query,
        })
    }

    /// The `Host` header: `<pk>` on port 80, `<pk>:<port>` otherwise.
    pub fn host_header(&self) -> String {
        if self.addr.port == DEFAULT_PORT {
            self.addr.pk.to_hex()
        } else {
            format!("{}:{}", self.addr.pk, self.addr.port)
        }
    }

    /// The path without the query.
    pub fn path(&self) -> &str {
        self.path_and_query
            .split('?')
            .next()
            .unwrap_or(&self.path_and_query)
    }

    /// The last path segment, if it is not empty (what `curl -O` names its file after).
    pub fn file_name(&self) -> Option<&str> {
        self.path().rsplit('/').next().filter(|s| !s.is_empty())
    }
}

impl FromStr for DmsgUrl {
    type Err = HttpError;

    fn from_str(s: &str) -> Result<DmsgUrl, HttpError> {
        DmsgUrl::parse(s)
    }
}

impl fmt::Display for DmsgUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "dmsg://{}:{}{}",
            self.addr.pk, self.addr.port, self.path_and_query
        )
    }
}

/// Serves HTTP/1.1 on every stream `listener` accepts, with `service` (cloned per stream).
///
/// Runs until the listener ends (its client is closed). Dropping the returned future stops
/// serving and aborts the connections in progress.
pub async fn serve<S, B>(mut listener: Listener, service: S)
where
    S: tower_service::Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            accepted = listener.accept() => {
                let Some(stream) = accepted else { break };
                let remote = stream.remote_addr();
                let svc = TowerToHyperService::new(service.clone());
                conns.spawn(async move {
                    let conn = hyper::server::conn::http1::Builder::new()
                        .timer(TokioTimer::new())
                        .serve_connection(TokioIo::new(stream), svc);
                    if let Err(e) = conn.await {
                        tracing::debug!(%remote, error = %e, "dmsghttp connection ended with an error");
                    }
                });
            }
        }
    }
    tracing::debug!(addr = %listener.local_addr(), "dmsghttp listener closed");
}

/// Sends `req` to the dmsg URL in its URI (`dmsg://<pk>[:<port>]/path`) over a new stream and
/// returns the response once its head has arrived; the body streams as it is read.
///
/// A `Host` header is added unless the request has one.
pub async fn request<B>(client: &Client, req: Request<B>) -> Result<Response<Incoming>, HttpError>
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let url = DmsgUrl::parse(&req.uri().to_string())?;
    let (mut parts, body) = req.into_parts();
    parts.uri = Uri::try_from(url.path_and_query.as_str()).map_err(http::Error::from)?;
    if !parts.headers.contains_key(header::HOST) {
        let host = header::HeaderValue::from_str(&url.host_header()).map_err(http::Error::from)?;
        parts.headers.insert(header::HOST, host);
    }
    let req = Request::from_parts(parts, body);

    let addr = url.addr;
    let stream = client.dial(addr).await.map_err(|e| HttpError::Dial {
        addr,
        source: Box::new(e),
    })?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|source| HttpError::Http { addr, source })?;
    // The connection task drives the body too; it ends when the response has been read (the
    // sender is dropped below) or the stream fails.
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(%addr, error = %e, "dmsghttp client connection ended with an error");
        }
    });
    sender
        .send_request(req)
        .await
        .map_err(|source| HttpError::Http { addr, source })
}

/// `GET url` (see [`request`]).
pub async fn get(client: &Client, url: &str) -> Result<Response<Incoming>, HttpError> {
    let parsed = DmsgUrl::parse(url)?;
    let req = Request::get(parsed.to_string()).body(Empty::<Bytes>::new())?;
    request(client, req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    const PK: &str = "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798";

    #[test]
    fn parses_dmsg_urls() -> Result<(), HttpError> {
        let pk = PubKey::from_hex(PK).map_err(|_| HttpError::Url {
            url: PK.into(),
            reason: "test key",
        })?;
        let u = DmsgUrl::parse(&format!("dmsg://{PK}"))?;
        assert_eq!(u.addr, Addr::new(pk, 80));
        assert_eq!(u.path_and_query, "/");
        assert_eq!(u.host_header(), PK);
        assert_eq!(u.file_name(), None);

        let u = DmsgUrl::parse(&format!("dmsg://{PK}:8080/a/b.txt?x=1#frag"))?;
        assert_eq!(u.addr, Addr::new(pk, 8080));
        assert_eq!(u.path_and_query, "/a/b.txt?x=1");
        assert_eq!(u.path(), "/a/b.txt");
        assert_eq!(u.file_name(), Some("b.txt"));
        assert_eq!(u.host_header(), format!("{PK}:8080"));
        assert_eq!(u.to_string(), format!("dmsg://{PK}:8080/a/b.txt?x=1"));
        assert_eq!(DmsgUrl::parse(&u.to_string())?, u);

        let u = DmsgUrl::parse(&format!("http://{PK}.dmsg/dir/"))?;
        assert_eq!(u.addr.port, 80);
        assert_eq!(u.file_name(), None);
        Ok(())
    }

    #[test]
    fn rejects_bad_urls() {
        for bad in [
            String::new(),
            PK.to_owned(),
            format!("https://{PK}/"),
            format!("ftp://{PK}/"),
            "dmsg://nothex/".to_owned(),
            format!("dmsg://{}/", "00".repeat(33)),
            format!("dmsg://{PK}:0/"),
            format!("dmsg://{PK}:70000/"),
            format!("dmsg://{PK}:/"),
            format!("dmsg://user@{PK}/"),
        ] {
            assert!(DmsgUrl::parse(&bad).is_err(), "{bad:?} was accepted");
        }
    }
}
