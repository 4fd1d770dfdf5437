//! The control API: JSON over HTTP/1.1, served on `cli_addr` (TCP `localhost:3435` or `unix:/path`) for
//! `skywire cli`, and over a dmsg stream to each configured hypervisor (the visor dials the hypervisor
//! on dmsg port 46 and serves this same API on that stream). The reference uses Go net/rpc with gob
//! here (spec apps.md §7.2); that interface is large, changes between versions and has no interop
//! value, so this is a documented JSON API instead (see `API.md` beside this crate).
//!
//! Also here: [`ControlClient`], the client used by the CLI, the hypervisor and the tests, including
//! the `dial` upgrade that turns one request into a raw byte stream to `pk:port` over the visor's
//! dmsg client (how `cli pty exec <pk>` and `cli pty fs mount <pk>` go through the visor).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use skywire_cipher::PubKey;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::apps::{AppError, AppState, set_flag};
use crate::config::AppConfig;
use crate::visor::Visor;

/// The upgrade token of the raw-stream dial.
pub const STREAM_UPGRADE: &str = "skywire-stream";

/// An API error: a status and a message, sent as `{"error": "..."}`.
#[derive(Debug)]
pub struct ApiError(pub StatusCode, pub String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        let code = match e {
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::Exists(_) => StatusCode::CONFLICT,
            AppError::Invalid(_) => StatusCode::BAD_REQUEST,
        };
        ApiError(code, e.to_string())
    }
}

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, msg.into())
}

fn unavailable(msg: impl Into<String>) -> ApiError {
    ApiError(StatusCode::SERVICE_UNAVAILABLE, msg.into())
}

type ApiResult<T> = Result<Json<T>, ApiError>;

/// The whole API on one router (paths in `API.md`).
pub fn router(visor: Arc<Visor>) -> Router {
    Router::new()
        .route("/api/health", get(health))
        .route("/api/visor", get(info))
        .route("/api/shutdown", post(shutdown))
        .route("/api/apps", get(apps_list).post(apps_add))
        .route("/api/apps/{name}", get(app_get).put(app_update))
        .route("/api/apps/{name}/start", post(app_start))
        .route("/api/apps/{name}/stop", post(app_stop))
        .route("/api/apps/{name}/restart", post(app_restart))
        .route("/api/apps/{name}/log", get(app_log))
        .route("/api/transport-types", get(tp_types))
        .route("/api/transports", get(tp_list).post(tp_add))
        .route("/api/transports/{id}", axum::routing::delete(tp_remove))
        .route("/api/vpn/start", post(vpn_start))
        .route("/api/vpn/stop", post(vpn_stop))
        .route("/api/vpn/status", get(vpn_status))
        .route("/api/vpn/list", get(vpn_list))
        .route("/api/proxy/start", post(proxy_start))
        .route("/api/proxy/stop", post(proxy_stop))
        .route("/api/proxy/status", get(proxy_status))
        .route("/api/skynet", get(skynet_status))
        .route("/api/skynet/srv", axum::routing::put(skynet_srv))
        .route("/api/skynet/clients", post(skynet_add))
        .route(
            "/api/skynet/clients/{name}",
            axum::routing::delete(skynet_rm),
        )
        .route("/api/dmsg", get(dmsg_info))
        .route("/api/dmsg/dial", post(dmsg_dial))
        .with_state(visor)
}

async fn health() -> Json<Value> {
    Json(json!({ "ok": true }))
}

async fn info(State(v): State<Arc<Visor>>) -> Json<crate::visor::VisorInfo> {
    Json(v.info())
}

async fn shutdown(State(v): State<Arc<Visor>>) -> Json<Value> {
    v.request_shutdown();
    Json(json!({ "ok": true }))
}

async fn apps_list(State(v): State<Arc<Visor>>) -> Json<Vec<AppState>> {
    Json(v.apps().list())
}

async fn apps_add(State(v): State<Arc<Visor>>, Json(cfg): Json<AppConfig>) -> ApiResult<AppState> {
    let name = cfg.name.clone();
    v.apps().add(cfg)?;
    v.save_apps();
    Ok(Json(v.apps().get(&name)?))
}

async fn app_get(State(v): State<Arc<Visor>>, Path(name): Path<String>) -> ApiResult<AppState> {
    Ok(Json(v.apps().get(&name)?))
}

/// `PUT /api/apps/{name}` body.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct AppUpdate {
    /// Replace the args.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<String>>,
    /// Set auto_start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_start: Option<bool>,
    /// Set (string) or remove (null) individual flags, e.g. `{"srv": "<pk>", "passcode": null}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub settings: BTreeMap<String, Option<String>>,
}

async fn app_update(
    State(v): State<Arc<Visor>>,
    Path(name): Path<String>,
    Json(u): Json<AppUpdate>,
) -> ApiResult<AppState> {
    let st = apply_update(&v, &name, u)?;
    v.save_apps();
    Ok(Json(st))
}

fn apply_update(v: &Visor, name: &str, u: AppUpdate) -> Result<AppState, ApiError> {
    let cur = v.apps().get(name)?;
    let mut args = u.args.unwrap_or(cur.args);
    for (k, val) in &u.settings {
        let k = k.trim_start_matches('-');
        set_flag(&mut args, k, val.as_deref());
    }
    Ok(v.apps().update(name, Some(args), u.auto_start)?)
}

async fn app_start(State(v): State<Arc<Visor>>, Path(name): Path<String>) -> ApiResult<AppState> {
    Ok(Json(v.apps().start(&name)?))
}

async fn app_stop(State(v): State<Arc<Visor>>, Path(name): Path<String>) -> ApiResult<AppState> {
    Ok(Json(v.apps().stop(&name).await?))
}

async fn app_restart(State(v): State<Arc<Visor>>, Path(name): Path<String>) -> ApiResult<AppState> {
    v.apps().stop(&name).await?;
    Ok(Json(v.apps().start(&name)?))
}

#[derive(Debug, Deserialize)]
struct LogQuery {
    #[serde(default = "default_lines")]
    lines: usize,
}

fn default_lines() -> usize {
    100
}

async fn app_log(
    State(v): State<Arc<Visor>>,
    Path(name): Path<String>,
    Query(q): Query<LogQuery>,
) -> ApiResult<Value> {
    let lines = v.apps().log_tail(&name, q.lines)?;
    Ok(Json(json!({ "name": name, "lines": lines })))
}

async fn tp_types(State(v): State<Arc<Visor>>) -> ApiResult<Vec<String>> {
    let tm = v
        .transports()
        .ok_or_else(|| unavailable("transports are not running on this visor"))?;
    Ok(Json(tm.types()))
}

async fn tp_list(State(v): State<Arc<Visor>>) -> ApiResult<Value> {
    let Some(tm) = v.transports() else {
        return Ok(Json(json!([])));
    };
    serde_json::to_value(tm.list())
        .map(Json)
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

/// `POST /api/transports` body.
#[derive(Debug, Serialize, Deserialize)]
pub struct AddTransport {
    /// The remote visor.
    pub remote_pk: PubKey,
    /// `stcp` or `dmsg`.
    #[serde(rename = "type")]
    pub tp_type: String,
    /// Dial deadline in seconds (default 20).
    #[serde(default)]
    pub timeout_secs: Option<u64>,
}

async fn tp_add(State(v): State<Arc<Visor>>, Json(a): Json<AddTransport>) -> ApiResult<Value> {
    let tm = v
        .transports()
        .ok_or_else(|| unavailable("transports are not running on this visor"))?;
    let timeout = Duration::from_secs(a.timeout_secs.unwrap_or(20));
    let s = tm
        .add(a.remote_pk, &a.tp_type, timeout)
        .await
        .map_err(|e| ApiError(StatusCode::BAD_GATEWAY, error_chain(&e)))?;
    serde_json::to_value(s)
        .map(Json)
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

async fn tp_remove(State(v): State<Arc<Visor>>, Path(id): Path<String>) -> ApiResult<Value> {
    let tm = v
        .transports()
        .ok_or_else(|| unavailable("transports are not running on this visor"))?;
    let id = id
        .parse()
        .map_err(|_| bad(format!("{id:?} is not a transport ID (a UUID)")))?;
    tm.remove(id)
        .await
        .map_err(|e| ApiError(StatusCode::NOT_FOUND, error_chain(&e)))?;
    Ok(Json(json!({ "ok": true })))
}

/// The text of an error and its causes, joined with `: `.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.ends_with(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

/// `POST /api/vpn/start` body.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct VpnStart {
    /// The VPN server.
    pub pk: PubKey,
    /// Passcode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passcode: Option<String>,
    /// Kill switch.
    #[serde(default)]
    pub killswitch: bool,
    /// DNS servers, comma separated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<String>,
}

const VPN_APP: &str = "vpn-client";
const PROXY_APP: &str = "skysocks-client";

async fn vpn_start(State(v): State<Arc<Visor>>, Json(s): Json<VpnStart>) -> ApiResult<AppState> {
    v.apps().stop(VPN_APP).await?;
    let mut settings = BTreeMap::new();
    settings.insert("srv".to_string(), Some(s.pk.to_string()));
    settings.insert("passcode".to_string(), s.passcode.filter(|p| !p.is_empty()));
    settings.insert("dns".to_string(), s.dns.filter(|p| !p.is_empty()));
    let mut st = apply_update(
        &v,
        VPN_APP,
        AppUpdate {
            settings,
            ..AppUpdate::default()
        },
    )?;
    let mut args = st.args.clone();
    set_flag(&mut args, "killswitch", None);
    if s.killswitch {
        args.push("--killswitch".into());
    }
    st = v.apps().update(VPN_APP, Some(args), None)?;
    v.save_apps();
    drop(st);
    Ok(Json(v.apps().start(VPN_APP)?))
}

async fn vpn_stop(State(v): State<Arc<Visor>>) -> ApiResult<AppState> {
    Ok(Json(v.apps().stop(VPN_APP).await?))
}

async fn vpn_status(State(v): State<Arc<Visor>>) -> ApiResult<AppState> {
    Ok(Json(v.apps().get(VPN_APP)?))
}

async fn vpn_list(State(v): State<Arc<Visor>>) -> ApiResult<Value> {
    v.service_list("vpn").await.map(Json)
}

/// `POST /api/proxy/start` body.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct ProxyStart {
    /// The skysocks server.
    pub pk: PubKey,
    /// Local SOCKS5 address (default `:1080`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addr: Option<String>,
    /// Passcode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passcode: Option<String>,
    /// Also an HTTP CONNECT proxy on this address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<String>,
}

async fn proxy_start(
    State(v): State<Arc<Visor>>,
    Json(s): Json<ProxyStart>,
) -> ApiResult<AppState> {
    v.apps().stop(PROXY_APP).await?;
    let mut settings = BTreeMap::new();
    settings.insert("srv".to_string(), Some(s.pk.to_string()));
    settings.insert("passcode".to_string(), s.passcode.filter(|p| !p.is_empty()));
    settings.insert("http".to_string(), s.http.filter(|p| !p.is_empty()));
    if let Some(a) = s.addr.filter(|a| !a.is_empty()) {
        settings.insert("addr".to_string(), Some(a));
    }
    apply_update(
        &v,
        PROXY_APP,
        AppUpdate {
            settings,
            ..AppUpdate::default()
        },
    )?;
    v.save_apps();
    Ok(Json(v.apps().start(PROXY_APP)?))
}

async fn proxy_stop(State(v): State<Arc<Visor>>) -> ApiResult<AppState> {
    Ok(Json(v.apps().stop(PROXY_APP).await?))
}

async fn proxy_status(State(v): State<Arc<Visor>>) -> ApiResult<AppState> {
    Ok(Json(v.apps().get(PROXY_APP)?))
}

fn skynet_of(v: &Visor) -> Result<&Arc<crate::skynet::Skynet>, ApiError> {
    v.skynet()
        .ok_or_else(|| unavailable("skynet forwarding is not running on this visor"))
}

fn skynet_err(e: crate::skynet::SkynetError) -> ApiError {
    use crate::skynet::SkynetError as E;
    let code = match e {
        E::Invalid(_) => StatusCode::BAD_REQUEST,
        E::NotFound(_) => StatusCode::NOT_FOUND,
        E::Io(_) => StatusCode::CONFLICT,
    };
    ApiError(code, e.to_string())
}

async fn skynet_status(State(v): State<Arc<Visor>>) -> ApiResult<crate::skynet::SkynetStatus> {
    Ok(Json(skynet_of(&v)?.status()))
}

async fn skynet_srv(
    State(v): State<Arc<Visor>>,
    Json(s): Json<crate::skynet::ServerSettings>,
) -> ApiResult<crate::skynet::ServerSettings> {
    Ok(Json(
        skynet_of(&v)?.set_server(s).await.map_err(skynet_err)?,
    ))
}

async fn skynet_add(
    State(v): State<Arc<Visor>>,
    Json(s): Json<crate::skynet::ClientSpec>,
) -> ApiResult<crate::skynet::ClientInfo> {
    Ok(Json(
        skynet_of(&v)?.add_client(s).await.map_err(skynet_err)?,
    ))
}

async fn skynet_rm(
    State(v): State<Arc<Visor>>,
    Path(name): Path<String>,
) -> ApiResult<crate::skynet::ClientInfo> {
    Ok(Json(
        skynet_of(&v)?.remove_client(&name).map_err(skynet_err)?,
    ))
}

async fn dmsg_info(State(v): State<Arc<Visor>>) -> Json<Value> {
    Json(v.dmsg_info())
}

#[derive(Debug, Deserialize)]
struct DialQuery {
    pk: String,
    port: u16,
}

/// `POST /api/dmsg/dial?pk=<pk>&port=<port>` with `Upgrade: skywire-stream`: dials `pk:port` over the
/// visor's dmsg client and, on success, answers 101 and pipes the connection to the stream.
async fn dmsg_dial(
    State(v): State<Arc<Visor>>,
    Query(q): Query<DialQuery>,
    mut req: Request,
) -> Result<Response, ApiError> {
    let pk: PubKey =
        q.pk.parse()
            .map_err(|e| bad(format!("pk {:?}: {e}", q.pk)))?;
    let wants = req
        .headers()
        .get(header::UPGRADE)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|u| u.eq_ignore_ascii_case(STREAM_UPGRADE));
    if !wants {
        return Err(bad(format!(
            "dial needs the header Upgrade: {STREAM_UPGRADE}"
        )));
    }
    let on_upgrade = req
        .extensions_mut()
        .remove::<hyper::upgrade::OnUpgrade>()
        .ok_or_else(|| bad("this connection cannot be upgraded"))?;
    let stream = tokio::time::timeout(
        Duration::from_secs(30),
        v.dmsg().dial(skywire_dmsg::Addr::new(pk, q.port)),
    )
    .await
    .map_err(|_| {
        ApiError(
            StatusCode::GATEWAY_TIMEOUT,
            format!("dialling {pk}:{}: timed out", q.port),
        )
    })?
    .map_err(|e| {
        ApiError(
            StatusCode::BAD_GATEWAY,
            format!("dialling {pk}:{}: {}", q.port, error_chain(&e)),
        )
    })?;
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(up) => {
                let mut up = TokioIo::new(up);
                let mut stream = stream;
                if let Err(e) = tokio::io::copy_bidirectional(&mut up, &mut stream).await {
                    tracing::debug!(error = %e, "control dial stream ended");
                }
            }
            Err(e) => tracing::debug!(error = %e, "control dial: upgrade failed"),
        }
    });
    let mut resp = Response::new(axum::body::Body::empty());
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    resp.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    resp.headers_mut()
        .insert(header::UPGRADE, HeaderValue::from_static(STREAM_UPGRADE));
    Ok(resp)
}

/// Serves the API on one accepted byte stream (used for the hypervisor's dmsg streams).
pub async fn serve_stream<IO>(router: Router, io: IO) -> Result<(), hyper::Error>
where
    IO: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let svc = hyper_util::service::TowerToHyperService::new(router);
    hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(io), svc)
        .with_upgrades()
        .await
}

/// Errors of [`ControlClient`].
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Could not connect to the control address.
    #[error("connecting to the visor at {addr}: {source} (is `skywire visor` running? see --rpc)")]
    Connect {
        /// The address.
        addr: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// HTTP-level failure.
    #[error("talking to the visor: {0}")]
    Http(#[from] hyper::Error),
    /// Request could not be built.
    #[error("building the request: {0}")]
    Request(#[from] http::Error),
    /// The visor answered with an error.
    #[error("{message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// The visor's message.
        message: String,
    },
    /// The answer was not the expected JSON.
    #[error("unexpected answer from the visor: {0}")]
    Decode(#[from] serde_json::Error),
    /// Deadline.
    #[error("the visor did not answer within {0:?}")]
    Timeout(Duration),
}

/// A boxed raw stream from [`ControlClient::dial`].
pub type RawStream = Pin<Box<dyn RawIo>>;
/// Read + write + send.
pub trait RawIo: AsyncRead + AsyncWrite + Send {}
impl<T: AsyncRead + AsyncWrite + Send> RawIo for T {}

/// Where the control API is: TCP `host:port` or `unix:/path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlAddr {
    /// TCP.
    Tcp(String),
    /// A unix socket.
    Unix(PathBuf),
}

impl ControlAddr {
    /// Parses `unix:/path`, `unix:///path`, `/path`, or `host:port` (`:port` means localhost).
    pub fn parse(s: &str) -> ControlAddr {
        if let Some(p) = s.strip_prefix("unix://") {
            return ControlAddr::Unix(PathBuf::from(p));
        }
        if let Some(p) = s.strip_prefix("unix:") {
            return ControlAddr::Unix(PathBuf::from(p));
        }
        if s.starts_with('/') {
            return ControlAddr::Unix(PathBuf::from(s));
        }
        if let Some(p) = s.strip_prefix(':') {
            return ControlAddr::Tcp(format!("127.0.0.1:{p}"));
        }
        ControlAddr::Tcp(s.to_string())
    }
}

impl std::fmt::Display for ControlAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ControlAddr::Tcp(a) => f.write_str(a),
            ControlAddr::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

/// Client of the control API (one connection per request; the API is local and cheap).
#[derive(Debug, Clone)]
pub struct ControlClient {
    addr: ControlAddr,
    timeout: Duration,
}

impl ControlClient {
    /// A client for `addr` (30 s per request).
    pub fn new(addr: ControlAddr) -> ControlClient {
        ControlClient {
            addr,
            timeout: Duration::from_secs(30),
        }
    }

    /// Another per-request deadline.
    pub fn with_timeout(mut self, timeout: Duration) -> ControlClient {
        self.timeout = timeout;
        self
    }

    /// The address.
    pub fn addr(&self) -> &ControlAddr {
        &self.addr
    }

    async fn connect(&self) -> Result<RawStream, ClientError> {
        let err = |source| ClientError::Connect {
            addr: self.addr.to_string(),
            source,
        };
        Ok(match &self.addr {
            ControlAddr::Tcp(a) => {
                let s = tokio::net::TcpStream::connect(a).await.map_err(err)?;
                let _ = s.set_nodelay(true);
                Box::pin(s)
            }
            ControlAddr::Unix(p) => {
                Box::pin(tokio::net::UnixStream::connect(p).await.map_err(err)?)
            }
        })
    }

    async fn send(
        &self,
        method: http::Method,
        path: &str,
        body: Option<Vec<u8>>,
        upgrade: bool,
    ) -> Result<http::Response<hyper::body::Incoming>, ClientError> {
        let io = self.connect().await?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake::<_, Full<bytes::Bytes>>(TokioIo::new(io))
                .await?;
        tokio::spawn(async move {
            if let Err(e) = conn.with_upgrades().await {
                tracing::debug!(error = %e, "control connection ended");
            }
        });
        let mut b = http::Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, "skywire-visor");
        if body.is_some() {
            b = b.header(header::CONTENT_TYPE, "application/json");
        }
        if upgrade {
            b = b
                .header(header::CONNECTION, "upgrade")
                .header(header::UPGRADE, STREAM_UPGRADE);
        }
        let req = b.body(Full::new(bytes::Bytes::from(body.unwrap_or_default())))?;
        Ok(sender.send_request(req).await?)
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: http::Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<T, ClientError> {
        let fut = async {
            let resp = self.send(method, path, body, false).await?;
            let status = resp.status();
            let bytes = resp.into_body().collect().await?.to_bytes();
            if !status.is_success() {
                let message = serde_json::from_slice::<Value>(&bytes)
                    .ok()
                    .and_then(|v| v.get("error").and_then(Value::as_str).map(String::from))
                    .unwrap_or_else(|| {
                        format!("HTTP {status}: {}", String::from_utf8_lossy(&bytes).trim())
                    });
                return Err(ClientError::Api {
                    status: status.as_u16(),
                    message,
                });
            }
            Ok(serde_json::from_slice(&bytes)?)
        };
        tokio::time::timeout(self.timeout, fut)
            .await
            .map_err(|_| ClientError::Timeout(self.timeout))?
    }

    /// `GET path` as JSON.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.call(http::Method::GET, path, None).await
    }

    /// `POST path` with a JSON body.
    pub async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        self.call(http::Method::POST, path, Some(serde_json::to_vec(body)?))
            .await
    }

    /// `PUT path` with a JSON body.
    pub async fn put<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        self.call(http::Method::PUT, path, Some(serde_json::to_vec(body)?))
            .await
    }

    /// `DELETE path`.
    pub async fn delete<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.call(http::Method::DELETE, path, None).await
    }

    /// A raw byte stream to `pk:port` over the visor's dmsg client.
    pub async fn dial(&self, pk: PubKey, port: u16) -> Result<RawStream, ClientError> {
        let path = format!("/api/dmsg/dial?pk={pk}&port={port}");
        let fut = async {
            let resp = self.send(http::Method::POST, &path, None, true).await?;
            if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
                let status = resp.status();
                let bytes = resp.into_body().collect().await?.to_bytes();
                let message = serde_json::from_slice::<Value>(&bytes)
                    .ok()
                    .and_then(|v| v.get("error").and_then(Value::as_str).map(String::from))
                    .unwrap_or_else(|| format!("HTTP {status}"));
                return Err(ClientError::Api {
                    status: status.as_u16(),
                    message,
                });
            }
            let up = hyper::upgrade::on(resp).await?;
            Ok(Box::pin(TokioIo::new(up)) as RawStream)
        };
        tokio::time::timeout(self.timeout, fut)
            .await
            .map_err(|_| ClientError::Timeout(self.timeout))?
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn control_addresses() {
        assert_eq!(
            ControlAddr::parse("localhost:3435"),
            ControlAddr::Tcp("localhost:3435".into())
        );
        assert_eq!(
            ControlAddr::parse(":3435"),
            ControlAddr::Tcp("127.0.0.1:3435".into())
        );
        assert_eq!(
            ControlAddr::parse("unix:/run/s.sock"),
            ControlAddr::Unix("/run/s.sock".into())
        );
        assert_eq!(
            ControlAddr::parse("/run/s.sock"),
            ControlAddr::Unix("/run/s.sock".into())
        );
    }
}
