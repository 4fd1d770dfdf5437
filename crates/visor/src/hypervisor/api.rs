//! The hypervisor's HTTP surface on `http_addr`: the embedded single-page UI (`ui/`, plain
//! HTML/JS/CSS, xterm.js from `skywire_pty::web`) and a JSON API under `/api` shaped like the
//! reference's where that was cheap (spec apps.md §7.3): ping, account, login/logout, visors,
//! apps (list, start/stop/autostart, logs), transports, and the terminal WebSocket
//! `/api/visors/{pk}/pty` (a pty session on that visor through dmsg, or the local pty host for the
//! hypervisor's own key). Errors are `{"error": "..."}`; everything but ping, create-account and
//! login needs the `swm-session` cookie (401 otherwise) unless auth is off.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::ws::{WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};
use skywire_cipher::PubKey;
use skywire_pty::PtyClient;
use skywire_pty::types::{CommandReq, WinSize};

use super::auth::{self, Auth, AuthError};
use super::remotes::{CallError, Remotes};
use crate::visor::Visor;

const INDEX: &str = include_str!("ui/index.html");
const APP_JS: &str = include_str!("ui/app.js");
const STYLE: &str = include_str!("ui/style.css");

/// Shell of a terminal session and its first size.
const SHELL: &str = "/bin/bash";
const COLS: u16 = 100;
const ROWS: u16 = 30;
/// Bound on opening a terminal session.
const PTY_TIMEOUT: Duration = Duration::from_secs(30);
const PTY_END: &str = "\r\n\x1b[33m[hypervisor: session closed]\x1b[0m\r\n";

/// Shared state of the handlers.
pub struct Hv {
    /// The hypervisor's own visor.
    pub visor: Arc<Visor>,
    /// Managed visors.
    pub remotes: Arc<Remotes>,
    /// The account; `None` when auth is off.
    pub auth: Option<Arc<Auth>>,
}

impl std::fmt::Debug for Hv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hv")
            .field("auth", &self.auth.is_some())
            .finish_non_exhaustive()
    }
}

type S = State<Arc<Hv>>;

fn err(code: StatusCode, msg: impl Into<String>) -> Response {
    (code, Json(json!({ "error": msg.into() }))).into_response()
}

/// The router (static UI + `/api`).
pub fn router(hv: Arc<Hv>) -> Router {
    let open = Router::new()
        .route("/api/ping", get(ping))
        .route("/api/create-account", post(create_account))
        .route("/api/login", post(login));
    let guarded = Router::new()
        .route("/api/logout", post(logout))
        .route("/api/user", get(user))
        .route("/api/visors", get(visors))
        .route("/api/visors/{pk}", get(visor_summary))
        .route("/api/visors/{pk}/apps", get(apps))
        .route("/api/visors/{pk}/apps/{app}", put(app_put).get(app_get))
        .route("/api/visors/{pk}/apps/{app}/logs", get(app_logs))
        .route("/api/visors/{pk}/transports", get(transports))
        .route("/api/visors/{pk}/pty", get(pty))
        .route("/api/{*rest}", axum::routing::any(not_found))
        .layer(middleware::from_fn_with_state(hv.clone(), require_session));
    open.merge(guarded)
        .route(
            "/",
            get(|| async { page("text/html; charset=utf-8", INDEX) }),
        )
        .route(
            "/app.js",
            get(|| async { page("text/javascript; charset=utf-8", APP_JS) }),
        )
        .route(
            "/style.css",
            get(|| async { page("text/css; charset=utf-8", STYLE) }),
        )
        .route("/_xterm/{name}", get(xterm))
        .with_state(hv)
}

fn page(ctype: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, ctype),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

async fn xterm(Path(name): Path<String>) -> Response {
    match skywire_pty::web::asset(&name) {
        Some((ctype, body)) => page(ctype, body),
        None => err(StatusCode::NOT_FOUND, "no such file"),
    }
}

async fn not_found() -> Response {
    err(StatusCode::NOT_FOUND, "no such API endpoint")
}

fn session_of(hv: &Hv, headers: &HeaderMap) -> Option<String> {
    let auth = hv.auth.as_ref()?;
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(auth::cookie_token)
        .and_then(|t| auth.session(t))
}

async fn require_session(State(hv): S, req: Request, next: Next) -> Response {
    if hv.auth.is_some() && session_of(&hv, req.headers()).is_none() {
        return err(StatusCode::UNAUTHORIZED, "not logged in");
    }
    next.run(req).await
}

async fn ping(State(hv): S) -> Json<Value> {
    Json(json!({
        "ping": "pong",
        "auth": hv.auth.is_some(),
        "account": hv.auth.as_ref().is_some_and(|a| a.has_account()),
    }))
}

#[derive(Debug, Deserialize)]
struct Credentials {
    #[serde(default = "default_user")]
    username: String,
    password: String,
}

fn default_user() -> String {
    "admin".into()
}

fn auth_error(e: &AuthError) -> Response {
    let code = match e {
        AuthError::Exists => StatusCode::FORBIDDEN,
        AuthError::Invalid(_) => StatusCode::BAD_REQUEST,
        AuthError::Denied => StatusCode::UNAUTHORIZED,
        AuthError::Db { .. } | AuthError::Parse { .. } => StatusCode::INTERNAL_SERVER_ERROR,
    };
    err(code, crate::control::error_chain(e))
}

/// The PBKDF2 work runs on the blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, AuthError> + Send + 'static,
) -> Result<T, Response> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(auth_error(&e)),
        Err(e) => Err(err(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
    }
}

async fn create_account(State(hv): S, Json(c): Json<Credentials>) -> Response {
    let Some(auth) = hv.auth.clone() else {
        return err(StatusCode::FORBIDDEN, "authentication is disabled");
    };
    match blocking(move || auth.create(&c.username, &c.password)).await {
        Ok(()) => Json(json!(true)).into_response(),
        Err(r) => r,
    }
}

async fn login(State(hv): S, Json(c): Json<Credentials>) -> Response {
    let Some(auth) = hv.auth.clone() else {
        return err(StatusCode::FORBIDDEN, "authentication is disabled");
    };
    match blocking(move || auth.login(&c.username, &c.password)).await {
        Ok(token) => {
            let mut r = Json(json!(true)).into_response();
            if let Ok(v) = HeaderValue::from_str(&auth::set_cookie(&token)) {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            r
        }
        Err(r) => r,
    }
}

async fn logout(State(hv): S, headers: HeaderMap) -> Response {
    if let Some(a) = &hv.auth {
        for t in headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(auth::cookie_token)
        {
            a.logout(t);
        }
    }
    let mut r = Json(json!(true)).into_response();
    if let Ok(v) = HeaderValue::from_str(&auth::clear_cookie()) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

async fn user(State(hv): S) -> Json<Value> {
    match hv.auth.as_ref().and_then(|a| a.user()) {
        Some((name, created)) => Json(json!({ "username": name, "created": created })),
        None => Json(json!({ "username": null, "auth": false })),
    }
}

fn parse_pk(s: &str) -> Result<PubKey, Box<Response>> {
    s.parse()
        .map_err(|e| Box::new(err(StatusCode::BAD_REQUEST, format!("{s:?}: {e}"))))
}

fn call_error(e: &CallError) -> Response {
    let code = match e {
        CallError::Offline(_) => StatusCode::NOT_FOUND,
        CallError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
        CallError::Http { .. } | CallError::Request(_) => StatusCode::BAD_GATEWAY,
    };
    err(code, crate::control::error_chain(e))
}

/// Forwards the visor's answer as it is (status and JSON body).
fn relay(r: Result<(StatusCode, Bytes), CallError>) -> Response {
    match r {
        Ok((status, body)) => {
            (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
        }
        Err(e) => call_error(&e),
    }
}

async fn forward(hv: &Hv, pk: &str, method: Method, path: &str, body: Option<Value>) -> Response {
    let pk = match parse_pk(pk) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let body = body.map(|b| b.to_string().into_bytes());
    relay(hv.remotes.call(pk, method, path, body).await)
}

/// `GET /api/visor` of one visor, parsed.
async fn summary(hv: &Hv, pk: PubKey) -> Option<Value> {
    let r = tokio::time::timeout(
        Duration::from_secs(5),
        hv.remotes.call(pk, Method::GET, "/api/visor", None),
    )
    .await;
    match r {
        Ok(Ok((s, b))) if s.is_success() => serde_json::from_slice(&b).ok(),
        _ => None,
    }
}

async fn visors(State(hv): S) -> Json<Value> {
    let list = hv.remotes.list();
    let own = hv.remotes.own();
    let rows = futures::future::join_all(list.into_iter().map(|(pk, connected)| {
        let hv = hv.clone();
        async move {
            let s = if connected {
                summary(&hv, pk).await
            } else {
                None
            };
            json!({
                "pk": pk,
                "local": pk == own,
                "online": s.is_some(),
                "summary": s,
            })
        }
    }))
    .await;
    Json(Value::Array(rows))
}

async fn visor_summary(State(hv): S, Path(pk): Path<String>) -> Response {
    forward(&hv, &pk, Method::GET, "/api/visor", None).await
}

async fn apps(State(hv): S, Path(pk): Path<String>) -> Response {
    forward(&hv, &pk, Method::GET, "/api/apps", None).await
}

async fn app_get(State(hv): S, Path((pk, app)): Path<(String, String)>) -> Response {
    forward(
        &hv,
        &pk,
        Method::GET,
        &format!("/api/apps/{}", enc(&app)),
        None,
    )
    .await
}

/// Percent-encodes an app name for a path segment.
fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `PUT /api/visors/{pk}/apps/{app}` body (the reference's field names).
#[derive(Debug, Deserialize)]
struct AppPut {
    /// 1 start, 0 stop.
    #[serde(default)]
    status: Option<u8>,
    #[serde(default)]
    autostart: Option<bool>,
}

async fn app_put(
    State(hv): S,
    Path((pk, app)): Path<(String, String)>,
    Json(p): Json<AppPut>,
) -> Response {
    let pk = match parse_pk(&pk) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let name = enc(&app);
    let mut last = None;
    if let Some(a) = p.autostart {
        let body = json!({ "auto_start": a }).to_string().into_bytes();
        let r = hv
            .remotes
            .call(pk, Method::PUT, &format!("/api/apps/{name}"), Some(body))
            .await;
        match r {
            Ok((s, _)) if s.is_success() => last = Some(r),
            other => return relay(other),
        }
    }
    match p.status {
        Some(1) => {
            let r = hv
                .remotes
                .call(pk, Method::POST, &format!("/api/apps/{name}/start"), None)
                .await;
            last = Some(r);
        }
        Some(0) => {
            let r = hv
                .remotes
                .call(pk, Method::POST, &format!("/api/apps/{name}/stop"), None)
                .await;
            last = Some(r);
        }
        Some(s) => {
            return err(
                StatusCode::BAD_REQUEST,
                format!("status {s}: expected 1 (start) or 0 (stop)"),
            );
        }
        None => {}
    }
    match last {
        Some(r) => relay(r),
        None => err(
            StatusCode::BAD_REQUEST,
            "nothing to change (status, autostart)",
        ),
    }
}

#[derive(Debug, Deserialize)]
struct LogQuery {
    #[serde(default)]
    lines: Option<usize>,
}

async fn app_logs(
    State(hv): S,
    Path((pk, app)): Path<(String, String)>,
    Query(q): Query<LogQuery>,
) -> Response {
    let path = format!(
        "/api/apps/{}/log?lines={}",
        enc(&app),
        q.lines.unwrap_or(200).min(10_000)
    );
    forward(&hv, &pk, Method::GET, &path, None).await
}

async fn transports(State(hv): S, Path(pk): Path<String>) -> Response {
    forward(&hv, &pk, Method::GET, "/api/transports", None).await
}

/// No `Origin` (a non-browser client) or one whose authority is the `Host`.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let (Ok(origin), Some(host)) = (
        origin.to_str(),
        headers.get(header::HOST).and_then(|v| v.to_str().ok()),
    ) else {
        return false;
    };
    origin
        .split_once("://")
        .is_some_and(|(_, authority)| authority.eq_ignore_ascii_case(host))
}

async fn pty(
    State(hv): S,
    Path(pk): Path<String>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let pk = match parse_pk(&pk) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    if !same_origin(&headers) {
        return err(StatusCode::FORBIDDEN, "cross-origin WebSocket");
    }
    ws.on_upgrade(move |socket| terminal(socket, hv, pk))
}

async fn terminal(socket: WebSocket, hv: Arc<Hv>, pk: PubKey) {
    match tokio::time::timeout(PTY_TIMEOUT, open_pty(&hv, pk)).await {
        Ok(Ok(client)) => skywire_pty::web::bridge(socket, client, PTY_END).await,
        Ok(Err(e)) => {
            let msg = format!("\x1b[31m[hypervisor] {e}\x1b[0m\r\n");
            skywire_pty::web::fail(socket, &msg).await;
        }
        Err(_) => {
            let msg = format!("\x1b[31m[hypervisor] opening a shell on {pk}: timed out\x1b[0m\r\n");
            skywire_pty::web::fail(socket, &msg).await;
        }
    }
}

/// A started shell on `pk`: the local pty host's control socket for our own key, else a dmsg
/// stream to the visor's pty port.
async fn open_pty(hv: &Hv, pk: PubKey) -> Result<PtyClient, String> {
    let cfg = hv.visor.config();
    let client = if pk == hv.remotes.own()
        && cfg.dmsgpty.cli_network == "unix"
        && !cfg.dmsgpty.cli_address.is_empty()
    {
        PtyClient::connect_unix(std::path::Path::new(&cfg.dmsgpty.cli_address))
            .await
            .map_err(|e| crate::control::error_chain(&e))?
    } else {
        let port = summary(hv, pk)
            .await
            .and_then(|s| s["pty_dmsg_port"].as_u64())
            .and_then(|p| u16::try_from(p).ok())
            .unwrap_or(cfg.dmsgpty.dmsg_port);
        PtyClient::connect_dmsg(hv.visor.dmsg(), pk, port)
            .await
            .map_err(|e| crate::control::error_chain(&e))?
    };
    let req = CommandReq {
        name: SHELL.into(),
        arg: Vec::new(),
        size: Some(WinSize {
            x: COLS,
            y: ROWS,
            rows: ROWS,
            cols: COLS,
        }),
        env: vec!["TERM=xterm-256color".into()],
    };
    client
        .start_req(&req)
        .await
        .map_err(|e| format!("pty.Start on {}: {e}", client.target()))?;
    Ok(client)
}

/// Whether `enable_auth: false` may be honoured for a listener on `ip`.
pub fn auth_may_be_off(ip: IpAddr) -> bool {
    ip.is_loopback()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn helpers() {
        assert_eq!(enc("sky socks/1"), "sky%20socks%2F1");
        assert_eq!(enc("vpn-client"), "vpn-client");
        assert!(auth_may_be_off("127.0.0.1".parse().unwrap()));
        assert!(!auth_may_be_off("0.0.0.0".parse().unwrap()));
        let mut h = HeaderMap::new();
        h.insert(header::HOST, "127.0.0.1:8000".parse().unwrap());
        assert!(same_origin(&h));
        h.insert(header::ORIGIN, "http://127.0.0.1:8000".parse().unwrap());
        assert!(same_origin(&h));
        h.insert(header::ORIGIN, "http://evil.example".parse().unwrap());
        assert!(!same_origin(&h));
    }
}
