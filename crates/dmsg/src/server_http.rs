//! The relay server's HTTP health endpoint (`skywire dmsg server`, reference
//! `health_endpoint_address`, default `:8082`). This module owns:
//! * `GET /health`: JSON with the reference's `build_info` and `started_at`, plus the server's
//!   key, its current sessions and the sessions it still advertises as available;
//! * `GET /metrics`: Prometheus text exposition of [`ServerStats`](crate::ServerStats) and the
//!   session gauges.
//!
//! It borrows the [`ServerHandle`] instead of sharing it, so the owner can still call
//! [`ServerHandle::shutdown`] once [`serve_health`] has returned.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::future::Future;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use serde::Serialize;
use tokio::net::{TcpListener, TcpStream};

use crate::disc::BuildInfo;
use crate::server::ServerHandle;

/// Static facts the endpoint reports next to the live counters.
#[derive(Debug, Clone)]
pub struct HealthInfo {
    /// `build_info` of `/health`.
    pub build_info: BuildInfo,
    /// Start time in Go's `time.Time` JSON form (RFC 3339, nanoseconds).
    pub started_at: String,
    /// The configured session limit (available = limit − current sessions).
    pub max_sessions: usize,
}

#[derive(Debug, Serialize)]
struct HealthBody<'a> {
    build_info: &'a BuildInfo,
    started_at: &'a str,
    public_key: String,
    sessions_count: usize,
    available_sessions: usize,
    max_sessions: usize,
}

/// Serves `/health` and `/metrics` for `server` on `listener` until `shutdown` completes.
/// Connections are served on the caller's task; they are dropped when this returns.
pub async fn serve_health<F>(
    listener: TcpListener,
    server: &ServerHandle,
    info: &HealthInfo,
    shutdown: F,
) where
    F: Future<Output = ()>,
{
    let mut conns = FuturesUnordered::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            Some(()) = conns.next(), if !conns.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => conns.push(serve_conn(tcp, server, info)),
                Err(e) => {
                    tracing::warn!(error = %e, "health endpoint: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
}

async fn serve_conn(tcp: TcpStream, server: &ServerHandle, info: &HealthInfo) {
    let service = hyper::service::service_fn(|req: Request<Incoming>| {
        let resp = respond(req.method(), req.uri().path(), server, info);
        async move { Ok::<_, Infallible>(resp) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(3))
        .serve_connection(TokioIo::new(tcp), service);
    if let Err(e) = conn.await {
        tracing::debug!(error = %e, "health endpoint connection ended with an error");
    }
}

fn respond(
    method: &Method,
    path: &str,
    server: &ServerHandle,
    info: &HealthInfo,
) -> Response<Full<Bytes>> {
    let (status, content_type, body) = match (path, method) {
        ("/health" | "/metrics", m) if m != Method::GET && m != Method::HEAD => (
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain; charset=utf-8",
            "405 method not allowed\n".to_owned(),
        ),
        ("/health", _) => (
            StatusCode::OK,
            "application/json",
            health_json(server, info),
        ),
        ("/metrics", _) => (
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            metrics_text(server, info),
        ),
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "404 page not found\n".to_owned(),
        ),
    };
    let body = if method == Method::HEAD {
        Bytes::new()
    } else {
        Bytes::from(body)
    };
    let mut resp = Response::new(Full::new(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    resp
}

/// The `/health` body.
pub fn health_json(server: &ServerHandle, info: &HealthInfo) -> String {
    let sessions = server.session_count();
    let body = HealthBody {
        build_info: &info.build_info,
        started_at: &info.started_at,
        public_key: server.pk().to_hex(),
        sessions_count: sessions,
        available_sessions: info.max_sessions.saturating_sub(sessions),
        max_sessions: info.max_sessions,
    };
    serde_json::to_string(&body).unwrap_or_else(|_| "{}".to_owned())
}

/// The `/metrics` body (Prometheus text format 0.0.4).
pub fn metrics_text(server: &ServerHandle, info: &HealthInfo) -> String {
    let stats = server.stats();
    let sessions = server.session_count();
    let gauges: [(&str, &str, u64); 2] = [
        (
            "dmsg_server_sessions",
            "Client sessions currently open.",
            u64::try_from(sessions).unwrap_or(u64::MAX),
        ),
        (
            "dmsg_server_available_sessions",
            "Sessions still advertised as available in discovery.",
            u64::try_from(info.max_sessions.saturating_sub(sessions)).unwrap_or(u64::MAX),
        ),
    ];
    let counters: [(&str, &str, u64); 6] = [
        (
            "dmsg_server_sessions_total",
            "Sessions established since start.",
            stats.sessions_total.load(Ordering::Relaxed),
        ),
        (
            "dmsg_server_handshakes_failed_total",
            "Connections refused or failed before a session existed.",
            stats.handshakes_failed.load(Ordering::Relaxed),
        ),
        (
            "dmsg_server_dials_total",
            "Dial requests received.",
            stats.dials_total.load(Ordering::Relaxed),
        ),
        (
            "dmsg_server_dials_relayed_total",
            "Dials relayed successfully.",
            stats.dials_relayed.load(Ordering::Relaxed),
        ),
        (
            "dmsg_server_dials_failed_total",
            "Dials refused or failed.",
            stats.dials_failed.load(Ordering::Relaxed),
        ),
        (
            "dmsg_server_bytes_relayed_total",
            "Payload bytes relayed in both directions (counted as they flow).",
            stats.bytes_relayed.load(Ordering::Relaxed),
        ),
    ];
    let mut out = String::new();
    for (kind, list) in [("gauge", &gauges[..]), ("counter", &counters[..])] {
        for (name, help, value) in list {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            let _ = writeln!(out, "{name} {value}");
        }
    }
    out
}
