//! `skywire app pty http` (≡ reference `dmsg pty ui`, G1 `dmsgpty-ui`; pty.md 8): a browser
//! terminal on a pty host running on this machine, bridged through its local control socket
//! (`cliaddr`, `dmsgpty/pty`).
//!
//! Every path answers GET only (else 405 with the reference's JSON error). A GET with
//! `Upgrade: websocket` starts a session (`pty.Start` of `--cmd`, 100×30, `TERM=xterm-256color`)
//! and bridges it: pty output → **binary** frames; text or binary frames → `pty.Write`, except a
//! text frame `{"type":"resize","cols":C,"rows":R}` (1..65535) → `pty.SetPtySize`. A GET without
//! it returns the embedded xterm.js page; `/_xterm/*` serves the vendored xterm.js files. The
//! assets and the bridge itself are `skywire_pty::web` (shared with the hypervisor UI).
//!
//! There is **no key or user check**: anyone who can open the page gets a shell as the host
//! user. Hence: the default address is loopback, a non-loopback `--addr` is refused without
//! `--i-know-there-is-no-auth`, a warning is printed on stderr, and browsers are held to the
//! same origin (the `Origin` of a WebSocket request must match `Host`) and, on a loopback
//! address, to a loopback `Host` (no DNS rebinding).
//!
//! Not implemented (reference G3 features): `?commands=`, `?sid=` / session attach, `?scheme=`,
//! the banner, output coalescing, and the `pty.Ping` keep-alive (a WebSocket ping is sent every
//! 10 s).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use axum::Router;
use axum::extract::ws::{WebSocket, WebSocketUpgrade, rejection::WebSocketUpgradeRejection};
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use clap::Args;
use http::{HeaderMap, Method, StatusCode, header};
use skywire_pty::HostConfig;
use skywire_pty::client::PtyClient;
use skywire_pty::types::{CommandReq, WinSize};
use skywire_pty::web;

/// Bound on connecting to the control socket and starting the session.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Initial terminal size (pty.md 8.2).
const COLS: u16 = 100;
const ROWS: u16 = 30;
/// Sent to the browser when the session ends (pty.md 8.3).
const END_TEXT: &str = "[skypty-ui] Status: \r\n\x1b[33m[skywire: session closed \u{2014} reload the page to reconnect]\x1b[0m\r\n";

const PAGE: &str = include_str!("../assets/xterm/index.html");

/// `skywire app pty http [--addr 127.0.0.1:8080] [--cliaddr SOCK] [-p CONF]`.
#[derive(Debug, Args)]
pub struct HttpArgs {
    /// Listen address (`host:port`, `:port` = all interfaces). Non-loopback addresses need
    /// `--i-know-there-is-no-auth`.
    #[arg(long, default_value = "127.0.0.1:8080", value_parser = parse_listen, value_name = "ADDR")]
    pub addr: SocketAddr,

    /// Allow a non-loopback `--addr`: anyone reaching it gets a shell, without any key or
    /// password.
    #[arg(long)]
    pub i_know_there_is_no_auth: bool,

    /// Control-socket network (only `unix`).
    #[arg(short = 'n', long, alias = "hnet", value_name = "NET")]
    pub clinet: Option<String>,

    /// Control-socket path of the host (default: the config's `cliaddr`, else
    /// `<tmp>/dmsgpty.sock`).
    #[arg(short = 'r', long, alias = "haddr", value_name = "SOCK")]
    pub cliaddr: Option<PathBuf>,

    /// Host config file (must exist) whose `clinet`/`cliaddr` are used.
    #[arg(short = 'p', long, value_name = "FILE")]
    pub confpath: Option<PathBuf>,

    /// Command of each browser session.
    #[arg(short = 'c', long, default_value = "/bin/bash", value_name = "CMD")]
    pub cmd: String,

    /// Argument of `--cmd` (repeatable).
    #[arg(
        short = 'a',
        long = "arg",
        value_name = "ARG",
        allow_hyphen_values = true
    )]
    pub args: Vec<String>,
}

/// `host:port`, or `:port` for all interfaces (the reference's form).
fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    if let Some(port) = s.strip_prefix(':') {
        let port: u16 = port.parse().map_err(|e| format!("invalid port: {e}"))?;
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port));
    }
    if let Some(port) = s.strip_prefix("localhost:") {
        let port: u16 = port.parse().map_err(|e| format!("invalid port: {e}"))?;
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    s.parse()
        .map_err(|e| format!("expected IP:PORT or :PORT ({e})"))
}

struct Ctx {
    sock: PathBuf,
    cmd: String,
    args: Vec<String>,
    loopback: bool,
}

/// Runs `skywire app pty http`.
pub fn run(a: HttpArgs) -> Result<()> {
    let sock = socket_path(a.clinet.as_deref(), a.cliaddr.as_ref(), a.confpath.as_ref())?;
    let loopback = a.addr.ip().is_loopback();
    if !loopback && !a.i_know_there_is_no_auth {
        bail!(
            "refusing to listen on {}: `app pty http` has no authentication, anyone reaching it \
             gets a shell; bind a loopback address, or pass --i-know-there-is-no-auth",
            a.addr
        );
    }
    let ctx = Arc::new(Ctx {
        sock,
        cmd: a.cmd,
        args: a.args,
        loopback,
    });
    crate::util::block_on(serve(a.addr, ctx))?
}

async fn serve(addr: SocketAddr, ctx: Arc<Ctx>) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("listening on {addr}"))?;
    let bound = listener.local_addr()?;
    eprintln!("################################################################");
    eprintln!("# WARNING: `skywire app pty http` has NO AUTHENTICATION.");
    eprintln!("# Anyone who can open http://{bound}/ gets a shell as this user");
    eprintln!(
        "# (via the pty host's control socket {}).",
        ctx.sock.display()
    );
    if ctx.loopback {
        eprintln!("# It listens on loopback only: every local user/process can use it.");
    } else {
        eprintln!("# It listens on a NON-LOOPBACK address: do not expose this port.");
    }
    eprintln!("################################################################");
    eprintln!("app pty http listening on http://{bound}/");
    let app = Router::new().fallback(handle).with_state(ctx);
    axum::serve(listener, app)
        .with_graceful_shutdown(crate::util::shutdown_signal())
        .await
        .context("serving")
}

/// The single handler of every path.
async fn handle(
    State(ctx): State<Arc<Ctx>>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    req: Request,
) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    if method != Method::GET {
        let body = serde_json::json!({
            "error_code": 405,
            "error_msg": format!("http method {method} is invalid for path {path}"),
        });
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response();
    }
    let headers = req.headers();
    if ctx.loopback && !host_is_loopback(headers) {
        return (
            StatusCode::FORBIDDEN,
            "forbidden: non-loopback Host header\n",
        )
            .into_response();
    }
    let wants_ws = headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == "websocket");
    if !wants_ws {
        return static_file(&path);
    }
    if !same_origin(headers) {
        return (StatusCode::FORBIDDEN, "forbidden: cross-origin WebSocket\n").into_response();
    }
    match ws {
        Ok(ws) => ws.on_upgrade(move |socket| session(socket, ctx)),
        Err(e) => e.into_response(),
    }
}

fn static_file(path: &str) -> Response {
    let (ctype, body) = path
        .strip_prefix("/_xterm/")
        .and_then(web::asset)
        .unwrap_or(("text/html; charset=utf-8", PAGE));
    ([(header::CONTENT_TYPE, ctype)], body).into_response()
}

/// The host part of a `Host` header or an origin's authority (port and brackets removed).
fn host_name(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    authority.rsplit_once(':').map_or(authority, |(h, _)| h)
}

fn host_is_loopback(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let name = host_name(host);
    name.eq_ignore_ascii_case("localhost")
        || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// No `Origin` (a non-browser client), or an origin whose authority is the `Host`.
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

/// One browser session: a new pty on the host, bridged until either side ends.
async fn session(socket: WebSocket, ctx: Arc<Ctx>) {
    match start(&ctx).await {
        Ok(client) => web::bridge(socket, client, END_TEXT).await,
        Err(e) => {
            let msg = format!("[skypty-ui] Error: {e:#}\n\r[skypty-ui] Status: Stopped!\r\n");
            web::fail(socket, &msg).await;
        }
    }
}

/// Connects to the control socket and starts the session's command.
async fn start(ctx: &Ctx) -> Result<PtyClient> {
    let fut = async {
        let client = PtyClient::connect_unix(&ctx.sock).await?;
        let req = CommandReq {
            name: ctx.cmd.clone(),
            arg: ctx.args.clone(),
            size: Some(WinSize {
                x: COLS,
                y: ROWS,
                rows: ROWS,
                cols: COLS,
            }),
            env: vec!["TERM=xterm-256color".to_owned()],
        };
        client
            .start_req(&req)
            .await
            .with_context(|| format!("pty.Start on {}", client.target()))?;
        Ok::<_, anyhow::Error>(client)
    };
    tokio::time::timeout(CONNECT_TIMEOUT, fut)
        .await
        .map_err(|_| anyhow::anyhow!("connecting to {}: timed out", ctx.sock.display()))?
}

/// The control socket: `--cliaddr` > the config's `cliaddr` > the host's default.
fn socket_path(
    clinet: Option<&str>,
    cliaddr: Option<&PathBuf>,
    confpath: Option<&PathBuf>,
) -> Result<PathBuf> {
    let cfg = match confpath {
        Some(p) => {
            if !p.exists() {
                bail!("config file {} does not exist", p.display());
            }
            Some(HostConfig::load(p).with_context(|| format!("loading {}", p.display()))?)
        }
        None => None,
    };
    let net = clinet
        .map(str::to_owned)
        .or_else(|| cfg.as_ref().map(|c| c.cli_net.clone()))
        .unwrap_or_else(|| "unix".to_owned());
    if net != "unix" {
        bail!("control-socket network {net:?} is not supported (use \"unix\")");
    }
    if let Some(p) = cliaddr {
        return Ok(p.clone());
    }
    let addr = cfg.map_or_else(|| HostConfig::default().cli_addr, |c| c.cli_addr);
    if addr.is_empty() {
        bail!("the config's `cliaddr` is empty");
    }
    Ok(PathBuf::from(addr))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn listen_addresses() {
        assert_eq!(parse_listen(":8080").unwrap().to_string(), "0.0.0.0:8080");
        assert_eq!(
            parse_listen("localhost:1").unwrap().to_string(),
            "127.0.0.1:1"
        );
        assert_eq!(parse_listen("[::1]:2").unwrap().to_string(), "[::1]:2");
        assert!(parse_listen("nope").is_err());
    }

    #[test]
    fn origin_and_host_checks() {
        let h = |pairs: &[(&'static str, &'static str)]| {
            let mut m = HeaderMap::new();
            for (k, v) in pairs {
                m.insert(*k, v.parse().unwrap());
            }
            m
        };
        assert!(same_origin(&h(&[("host", "127.0.0.1:80")])));
        assert!(same_origin(&h(&[
            ("host", "127.0.0.1:80"),
            ("origin", "http://127.0.0.1:80")
        ])));
        assert!(!same_origin(&h(&[
            ("host", "127.0.0.1:80"),
            ("origin", "http://evil.example")
        ])));
        assert!(host_is_loopback(&h(&[("host", "localhost:8080")])));
        assert!(host_is_loopback(&h(&[("host", "[::1]:8080")])));
        assert!(host_is_loopback(&h(&[("host", "127.0.0.2")])));
        assert!(!host_is_loopback(&h(&[("host", "evil.example:8080")])));
        assert!(!host_is_loopback(&h(&[])));
    }
}
