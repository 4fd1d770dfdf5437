//! Runs the real `skywire app pty http` browser terminal against a real
//! `skywire dmsg pty host --no-dmsg` through its control socket:
//!
//! * a WebSocket client (tokio-tungstenite) types `echo hello-$((6*7))` and reads `hello-42`
//!   from the binary output frames, sends a resize message and sees `stty size` follow it;
//! * the HTTP surface: the page and the vendored xterm.js, 405 JSON for non-GET, cross-origin
//!   WebSockets and non-loopback `Host` headers refused, a non-loopback `--addr` refused without
//!   `--i-know-there-is-no-auth`;
//! * a real headless Chromium (`/usr/bin/chromium`, Debian package `chromium`; **required**, the
//!   test fails without it) loads the page with its `?run=` test hook, driven over the DevTools
//!   protocol until the terminal shows the command's output.
//!
//! Waits are bounded; every child is killed on `Drop`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Proc, PtyHost, runtime, skywire};

use futures::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const BOUND: Duration = Duration::from_secs(30);
const CHROMIUM: &str = "/usr/bin/chromium";

/// Spawns `cmd` and waits (bounded) for a stderr line for which `done` returns a value.
fn spawn_until<T>(cmd: Command, what: &str, done: impl Fn(&str) -> Option<T>) -> (Proc, T) {
    let mut proc = Proc::spawn_named(cmd, what, Stdio::null());
    let v = proc.wait_for(done);
    (proc, v)
}

/// A pty host with its control socket in `dir`, and `app pty http` on it.
struct Setup {
    _host: PtyHost,
    _http: Proc,
    /// `127.0.0.1:<port>` of `app pty http`.
    addr: String,
}

fn setup(dir: &Path) -> Setup {
    let host = PtyHost::start(
        dir,
        "host.json",
        "pty.sock",
        &["--no-dmsg", "--tcplisten", "127.0.0.1:0"],
        "pty host ready",
    );
    let sock = &host.sock;

    let mut http = skywire();
    http.args(["app", "pty", "http", "--addr", "127.0.0.1:0", "--cliaddr"])
        .arg(sock)
        .current_dir(dir);
    let (http, addr) = spawn_until(http, "app pty http", |l| {
        l.strip_prefix("app pty http listening on http://")
            .map(|a| a.trim_end_matches('/').to_owned())
    });
    Setup {
        _host: host,
        _http: http,
        addr,
    }
}

/// A plain HTTP/1.0 request; returns (status, body).
fn http_req(addr: &str, req: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(BOUND)).unwrap();
    s.write_all(req.as_bytes()).unwrap();
    let mut v = Vec::new();
    s.read_to_end(&mut v).unwrap();
    let text = String::from_utf8_lossy(&v).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("bad response {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map_or(String::new(), |(_, b)| b.to_owned());
    (status, body)
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Reads output frames until the accumulated text contains `want` (bounded).
async fn read_until(ws: &mut Ws, acc: &mut String, want: &str) {
    let deadline = tokio::time::Instant::now() + BOUND;
    while !acc.contains(want) {
        let m = tokio::time::timeout_at(deadline, ws.next())
            .await
            .unwrap_or_else(|_| panic!("no {want:?} within {BOUND:?}; got {acc:?}"))
            .unwrap_or_else(|| panic!("closed before {want:?}; got {acc:?}"))
            .unwrap();
        match m {
            Message::Binary(b) => acc.push_str(&String::from_utf8_lossy(&b)),
            Message::Text(t) => panic!("unexpected text frame {t:?}"),
            _ => {}
        }
    }
}

#[test]
fn websocket_echo_and_resize() {
    let dir = tempfile::tempdir().unwrap();
    let s = setup(dir.path());
    runtime().block_on(async {
        let url = format!("ws://{}/", s.addr);
        let (mut ws, _) = tokio::time::timeout(BOUND, tokio_tungstenite::connect_async(&url))
            .await
            .unwrap()
            .unwrap();
        let mut acc = String::new();
        ws.send(Message::text("echo hello-$((6*7))\r"))
            .await
            .unwrap();
        read_until(&mut ws, &mut acc, "hello-42").await;

        ws.send(Message::text(r#"{"type":"resize","cols":123,"rows":45}"#))
            .await
            .unwrap();
        // Not forwarded as input; `stty size` prints "rows cols".
        ws.send(Message::binary(b"stty size\r".to_vec()))
            .await
            .unwrap();
        read_until(&mut ws, &mut acc, "45 123").await;
        assert!(
            !acc.contains("resize"),
            "the resize message was typed: {acc:?}"
        );

        // The session ends on the host: the closing notice, then the close.
        ws.send(Message::text("exit\r")).await.unwrap();
        read_until(&mut ws, &mut acc, "session closed").await;
        let end = tokio::time::timeout(BOUND, async {
            while let Some(Ok(m)) = ws.next().await {
                if matches!(m, Message::Close(_)) {
                    break;
                }
            }
        })
        .await;
        assert!(end.is_ok(), "no close after the session ended");
    });
}

#[test]
fn http_surface_and_guards() {
    let dir = tempfile::tempdir().unwrap();
    let s = setup(dir.path());
    let get = |path: &str, host: &str| {
        http_req(
            &s.addr,
            &format!("GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n"),
        )
    };
    let (code, body) = get("/any/path?x=1", &s.addr);
    assert_eq!(code, 200);
    assert!(body.contains("/_xterm/xterm.js"), "{body}");
    let (code, body) = get("/_xterm/xterm.js", &s.addr);
    assert_eq!(code, 200);
    assert!(body.contains("Terminal"));
    let (code, body) = get("/_xterm/LICENSE", "localhost");
    assert_eq!(code, 200);
    assert!(body.contains("MIT") || body.contains("Permission is hereby granted"));

    // DNS rebinding: a non-loopback Host on a loopback listener.
    let (code, _) = get("/", "evil.example:8080");
    assert_eq!(code, 403);

    let (code, body) = http_req(
        &s.addr,
        &format!(
            "POST /x HTTP/1.0\r\nHost: {}\r\nContent-Length: 0\r\n\r\n",
            s.addr
        ),
    );
    assert_eq!(code, 405);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error_code"], 405);
    assert_eq!(v["error_msg"], "http method POST is invalid for path /x");

    // A cross-origin WebSocket (a browser on another site) is refused.
    runtime().block_on(async {
        let mut req = format!("ws://{}/", s.addr).into_client_request().unwrap();
        req.headers_mut()
            .insert("Origin", "http://evil.example".parse().unwrap());
        let r = tokio::time::timeout(BOUND, tokio_tungstenite::connect_async(req))
            .await
            .unwrap();
        match r {
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
                assert_eq!(resp.status(), 403);
            }
            other => panic!("cross-origin upgrade not refused: {other:?}"),
        }
    });

    // A non-loopback listen address needs the explicit flag.
    let out = skywire()
        .args(["app", "pty", "http", "--addr", "0.0.0.0:0", "--cliaddr"])
        .arg(dir.path().join("pty.sock"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--i-know-there-is-no-auth"), "{err}");
}

/// A `stty size` output line ("rows cols").
fn size_line(text: &str) -> Option<&str> {
    text.lines().map(str::trim).find(|l| {
        let mut w = l.split(' ');
        matches!((w.next(), w.next(), w.next()), (Some(a), Some(b), None)
            if a.parse::<u16>().is_ok() && b.parse::<u16>().is_ok())
    })
}

/// The DevTools WebSocket URL of the first page target of the Chromium on `port`.
fn devtools_page(port: u16) -> Option<String> {
    // Chromium's DevTools server wants HTTP/1.1 and keeps the connection open: read by
    // Content-Length.
    let s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(BOUND)).ok()?;
    (&s).write_all(b"GET /json/list HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut r = BufReader::new(&s);
    let mut len = None;
    loop {
        let mut line = String::new();
        r.read_line(&mut line).ok()?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            len = v.trim().parse::<usize>().ok();
        }
    }
    let mut body = vec![0u8; len?];
    r.read_exact(&mut body).ok()?;
    let body = String::from_utf8_lossy(&body);
    let list: serde_json::Value = serde_json::from_str(&body).ok()?;
    list.as_array()?.iter().find(|t| t["type"] == "page")?["webSocketDebuggerUrl"]
        .as_str()
        // With `--remote-debugging-port=0` the advertised port may not be the listening one.
        .and_then(|u| {
            u.find("/devtools/")
                .map(|i| format!("ws://127.0.0.1:{port}{}", &u[i..]))
        })
}

#[test]
fn chromium_renders_the_terminal() {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: this test drives a real browser; install it \
         (Debian/Ubuntu: `apt-get install -y chromium`)"
    );
    let dir = tempfile::tempdir().unwrap();
    let s = setup(dir.path());
    let profile: PathBuf = dir.path().join("chromium-profile");
    let url = format!(
        "http://{}/?run=echo%20hello-%24((6*7))%3B%20stty%20size",
        s.addr
    );
    let mut cmd = Command::new(CHROMIUM);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1000,700",
        "--remote-debugging-address=127.0.0.1",
        "--remote-debugging-port=0",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .arg(&url);
    let (_chromium, port) = spawn_until(cmd, "chromium", |l| {
        l.strip_prefix("DevTools listening on ws://127.0.0.1:")
            .and_then(|r| r.split('/').next())
            .and_then(|p| p.parse::<u16>().ok())
    });

    let deadline = Instant::now() + BOUND;
    let page = loop {
        if let Some(p) = devtools_page(port) {
            break p;
        }
        assert!(Instant::now() < deadline, "no page target in chromium");
        std::thread::sleep(Duration::from_millis(100));
    };

    runtime().block_on(async {
        let (mut cdp, _) = tokio::time::timeout(BOUND, tokio_tungstenite::connect_async(&page))
            .await
            .unwrap()
            .unwrap();
        let deadline = tokio::time::Instant::now() + BOUND;
        let mut id = 0u64;
        let mut last = String::new();
        loop {
            id += 1;
            let req = serde_json::json!({
                "id": id,
                "method": "Runtime.evaluate",
                "params": {
                    "expression": "(document.getElementById('out') || {}).textContent || ''",
                    "returnByValue": true,
                },
            });
            cdp.send(Message::text(req.to_string())).await.unwrap();
            // Answers to this id (events are skipped).
            loop {
                let m = tokio::time::timeout_at(deadline, cdp.next())
                    .await
                    .unwrap_or_else(|_| {
                        panic!("terminal text never showed hello-42 and a size: {last:?}")
                    })
                    .expect("devtools closed")
                    .unwrap();
                let Message::Text(t) = m else { continue };
                let v: serde_json::Value = serde_json::from_str(t.as_str()).unwrap();
                if v["id"] == id {
                    last = v["result"]["result"]["value"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned();
                    break;
                }
            }
            // The output lines, not the typed command line.
            if last.lines().any(|l| l.trim() == "hello-42") && size_line(&last).is_some() {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "terminal text never showed hello-42 and a size: {last:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // The page sent the fitted size: `stty size` is not the initial 30×100.
        let size = size_line(&last);
        assert!(
            size.is_some_and(|s| s != "30 100"),
            "stty size did not follow the browser's fitted size: {last:?}"
        );
    });
}
