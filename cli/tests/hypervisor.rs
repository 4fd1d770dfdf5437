//! The hypervisor web UI with real processes: a local testnet (discovery + two relays), a
//! hypervisor visor (`config gen -i`) and two visors managed by it (`-j <hypervisor pk>`), all
//! `skywire visor` processes.
//!
//! * HTTP: 401 without a login, create-account (once, password >= 8), login (session cookie
//!   `swm-session`, HttpOnly, SameSite=Strict), the 3 visors online, an app stopped and started
//!   through `PUT /api/visors/{pk}/apps/{app}` and seen in that visor's own `cli visor app ls`,
//!   its log and transports, logout.
//! * A real headless Chromium (`/usr/bin/chromium`, Debian package `chromium`; **required**)
//!   driven over the DevTools protocol: logs in through the form, sees the 3 keys, clicks Stop
//!   and Start on an app and sees its status change, opens the terminal of a managed visor,
//!   types `echo hv-$((6*7))` and reads `hv-42` from the page.
//!
//! Waits are bounded; every child is killed on `Drop`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Proc, STOP, Testnet, run_bounded, runtime, text};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

const BOUND: Duration = Duration::from_secs(60);
const CHROMIUM: &str = "/usr/bin/chromium";
const PASSWORD: &str = "hv-test-password";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `cli config gen` with per-visor sockets and paths; `edit` adjusts the JSON. Returns the
/// config path, the control address and the key.
fn gen_config(
    dir: &Path,
    name: &str,
    disc: &str,
    extra: &[&str],
    edit: impl FnOnce(&mut Value),
) -> (PathBuf, String, String) {
    let conf = dir.join(format!("{name}.json"));
    let rpc = format!("unix:{}", dir.join(format!("{name}.rpc.sock")).display());
    let mut args = vec![
        "cli",
        "config",
        "gen",
        "-o",
        conf.to_str().unwrap(),
        "--dmsg-disc",
        disc,
        "--cli-addr",
        &rpc,
        "--stcp-local-address",
        "",
        "--app-server-addr",
        "127.0.0.1:0",
    ];
    args.extend_from_slice(extra);
    let out = run_bounded(&args, dir, None, STOP);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&conf).unwrap()).unwrap();
    v["dmsgpty"]["cli_address"] =
        Value::String(dir.join(format!("{name}.pty.sock")).display().to_string());
    v["local_path"] = Value::String(dir.join(format!("{name}-local")).display().to_string());
    edit(&mut v);
    std::fs::write(&conf, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    let pk = v["pk"].as_str().unwrap().to_string();
    (conf, rpc, pk)
}

fn start_visor(dir: &Path, conf: &Path) -> Proc {
    let mut p = Proc::start(&["visor", "-c", conf.to_str().unwrap()], dir);
    p.wait_for(|l| (l.starts_with("visor ") && l.ends_with(" running")).then_some(()));
    p
}

/// `skywire cli visor app ls --json` on the visor at `rpc`.
fn app_status(rpc: &str, app: &str) -> u64 {
    let out = run_bounded(
        &["cli", "visor", "--rpc", rpc, "app", "ls", "--json"],
        Path::new("/"),
        None,
        BOUND,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let apps: Value = serde_json::from_slice(&out.stdout).unwrap();
    apps.as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == app)
        .unwrap_or_else(|| panic!("no {app} in {apps}"))["status"]
        .as_u64()
        .unwrap()
}

struct Resp {
    status: u16,
    head: String,
    body: String,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {:?}", self.body))
    }
}

/// One HTTP/1.0 request (the server closes after the answer).
fn http(addr: &str, method: &str, path: &str, body: Option<Value>, cookie: Option<&str>) -> Resp {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(BOUND)).unwrap();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut req = format!("{method} {path} HTTP/1.0\r\nHost: {addr}\r\n");
    if let Some(c) = cookie {
        req.push_str(&format!("Cookie: {c}\r\n"));
    }
    if !body.is_empty() {
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    req.push_str("\r\n");
    req.push_str(&body);
    s.write_all(req.as_bytes()).unwrap();
    let mut v = Vec::new();
    s.read_to_end(&mut v).unwrap();
    let t = String::from_utf8_lossy(&v).into_owned();
    let (head, body) = t.split_once("\r\n\r\n").unwrap_or((&t, ""));
    let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap();
    Resp {
        status,
        head: head.to_string(),
        body: body.to_string(),
    }
}

/// The DevTools WebSocket URL of the first page target of the Chromium on `port`.
fn devtools_page(port: u16) -> Option<String> {
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
    let list: Value = serde_json::from_slice(&body).ok()?;
    list.as_array()?.iter().find(|t| t["type"] == "page")?["webSocketDebuggerUrl"]
        .as_str()
        .and_then(|u| {
            u.find("/devtools/")
                .map(|i| format!("ws://127.0.0.1:{port}{}", &u[i..]))
        })
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A DevTools connection to one page.
struct Cdp {
    ws: Ws,
    id: u64,
}

impl Cdp {
    async fn call(&mut self, method: &str, params: Value) -> Value {
        self.id += 1;
        let id = self.id;
        let req = json!({ "id": id, "method": method, "params": params });
        self.ws.send(Message::text(req.to_string())).await.unwrap();
        loop {
            let m = tokio::time::timeout(BOUND, self.ws.next())
                .await
                .unwrap_or_else(|_| panic!("no answer to {method}"))
                .expect("devtools closed")
                .unwrap();
            let Message::Text(t) = m else { continue };
            let v: Value = serde_json::from_str(t.as_str()).unwrap();
            if v["id"] == id {
                assert!(v.get("error").is_none(), "{method}: {v}");
                return v["result"].clone();
            }
        }
    }

    async fn eval(&mut self, expr: &str) -> Value {
        let r = self
            .call(
                "Runtime.evaluate",
                json!({ "expression": expr, "returnByValue": true, "awaitPromise": true }),
            )
            .await;
        assert!(r.get("exceptionDetails").is_none(), "{expr}: {r}");
        r["result"]["value"].clone()
    }

    /// Polls `expr` until it is `true` (bounded); `what` and the last value of `show` in the
    /// failure message.
    async fn wait(&mut self, what: &str, expr: &str, show: &str) {
        let deadline = tokio::time::Instant::now() + BOUND;
        loop {
            // While the page is still loading the expression may throw (elements not there yet):
            // that counts as "not yet".
            let r = self
                .call(
                    "Runtime.evaluate",
                    json!({ "expression": expr, "returnByValue": true, "awaitPromise": true }),
                )
                .await;
            if r.get("exceptionDetails").is_none() && r["result"]["value"] == Value::Bool(true) {
                return;
            }
            if tokio::time::Instant::now() >= deadline {
                let last = self
                    .call(
                        "Runtime.evaluate",
                        json!({ "expression": show, "returnByValue": true }),
                    )
                    .await;
                panic!("{what}: not within {BOUND:?}; page: {last}");
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }
}

/// JS for the row of `app` in the apps table.
fn app_row(app: &str) -> String {
    format!("document.querySelector('#apps tr[data-app=\"{app}\"]')")
}

#[test]
fn hypervisor_api_and_browser() {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: this test drives a real browser; install it \
         (Debian/Ubuntu: `apt-get install -y chromium`)"
    );
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let net = Testnet::start(dir, 2, 0);

    let ui = format!("127.0.0.1:{}", free_port());
    let db = dir.join("hv-users.db");
    let (conf_h, _rpc_h, hv_pk) = gen_config(dir, "hv", &net.disc, &["-i"], |v| {
        v["hypervisor"]["http_addr"] = Value::String(ui.clone());
        v["hypervisor"]["db_path"] = Value::String(db.display().to_string());
    });
    let (conf_a, rpc_a, a_pk) = gen_config(dir, "a", &net.disc, &["-j", &hv_pk], |_| {});
    let (conf_b, _rpc_b, b_pk) = gen_config(dir, "b", &net.disc, &["-j", &hv_pk], |_| {});
    let _hv = start_visor(dir, &conf_h);
    let _a = start_visor(dir, &conf_a);
    let _b = start_visor(dir, &conf_b);

    // No login yet.
    let r = http(&ui, "GET", "/api/ping", None, None);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["account"], false);
    let r = http(&ui, "GET", "/api/visors", None, None);
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"], "not logged in");
    let r = http(&ui, "GET", "/api/visors", None, Some("swm-session=00"));
    assert_eq!(r.status, 401);
    let r = http(
        &ui,
        "POST",
        "/api/login",
        Some(json!({"username": "admin", "password": PASSWORD})),
        None,
    );
    assert_eq!(r.status, 401);
    let r = http(
        &ui,
        "POST",
        "/api/create-account",
        Some(json!({"username": "admin", "password": "short"})),
        None,
    );
    assert_eq!(r.status, 400, "{}", r.body);
    let r = http(
        &ui,
        "POST",
        "/api/create-account",
        Some(json!({"username": "admin", "password": PASSWORD})),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let r = http(
        &ui,
        "POST",
        "/api/create-account",
        Some(json!({"username": "evil", "password": "another-pw"})),
        None,
    );
    assert_eq!(r.status, 403, "{}", r.body);
    let stored = std::fs::read_to_string(&db).unwrap();
    assert!(!stored.contains(PASSWORD), "{stored}");
    let r = http(
        &ui,
        "POST",
        "/api/login",
        Some(json!({"username": "admin", "password": "wrong-password"})),
        None,
    );
    assert_eq!(r.status, 401);
    let r = http(
        &ui,
        "POST",
        "/api/login",
        Some(json!({"username": "admin", "password": PASSWORD})),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let set = r
        .head
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .unwrap_or_else(|| panic!("no cookie: {}", r.head))
        .to_string();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    let cookie = set
        .split_once(':')
        .unwrap()
        .1
        .trim()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    assert!(
        cookie.starts_with("swm-session=") && cookie.len() == 12 + 64,
        "{cookie}"
    );
    let c = Some(cookie.as_str());
    assert_eq!(
        http(&ui, "GET", "/api/user", None, c).json()["username"],
        "admin"
    );

    // All three visors online.
    let deadline = Instant::now() + BOUND;
    loop {
        let v = http(&ui, "GET", "/api/visors", None, c).json();
        let online: Vec<&str> = v
            .as_array()
            .unwrap()
            .iter()
            .filter(|x| x["online"] == true)
            .map(|x| x["pk"].as_str().unwrap())
            .collect();
        if [&hv_pk, &a_pk, &b_pk]
            .iter()
            .all(|k| online.contains(&k.as_str()))
        {
            let own = v
                .as_array()
                .unwrap()
                .iter()
                .find(|x| x["pk"] == hv_pk.as_str())
                .unwrap();
            assert_eq!(own["local"], true);
            assert_eq!(own["summary"]["hypervisor_ui"], ui.as_str());
            break;
        }
        assert!(Instant::now() < deadline, "not all visors online: {v}");
        std::thread::sleep(Duration::from_millis(200));
    }

    // Stop and start an app of A through the hypervisor; A's own CLI agrees.
    let apps = http(&ui, "GET", &format!("/api/visors/{a_pk}/apps"), None, c).json();
    assert!(apps.to_string().contains("skysocks"), "{apps}");
    assert_eq!(app_status(&rpc_a, "skysocks"), 1);
    let path = format!("/api/visors/{a_pk}/apps/skysocks");
    let r = http(&ui, "PUT", &path, Some(json!({"status": 0})), c);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["status"], 0);
    assert_eq!(app_status(&rpc_a, "skysocks"), 0);
    let r = http(
        &ui,
        "PUT",
        &path,
        Some(json!({"status": 1, "autostart": true})),
        c,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(matches!(app_status(&rpc_a, "skysocks"), 1 | 3));
    let r = http(&ui, "PUT", &path, Some(json!({"status": 7})), c);
    assert_eq!(r.status, 400);
    let r = http(
        &ui,
        "PUT",
        &format!("/api/visors/{a_pk}/apps/nope"),
        Some(json!({"status": 1})),
        c,
    );
    assert_eq!(r.status, 404, "{}", r.body);
    let log = http(&ui, "GET", &format!("{path}/logs"), None, c).json();
    assert!(log.to_string().contains("stopped"), "{log}");
    let tps = http(
        &ui,
        "GET",
        &format!("/api/visors/{a_pk}/transports"),
        None,
        c,
    );
    assert_eq!(tps.status, 200, "{}", tps.body);
    assert!(tps.json().is_array());
    // An unknown visor.
    let r = http(
        &ui,
        "GET",
        &format!("/api/visors/02{}/apps", "1".repeat(64)),
        None,
        c,
    );
    assert!(r.status == 400 || r.status == 404, "{}", r.body);
    // Logout ends the session.
    let r = http(&ui, "POST", "/api/logout", None, c);
    assert_eq!(r.status, 200);
    assert_eq!(http(&ui, "GET", "/api/visors", None, c).status, 401);

    // The browser.
    let profile: PathBuf = dir.join("chromium-profile");
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
        "--window-size=1200,900",
        "--remote-debugging-address=127.0.0.1",
        "--remote-debugging-port=0",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .arg(format!("http://{ui}/"));
    let mut chromium = Proc::spawn_named(cmd, "chromium", Stdio::null());
    let port: u16 = chromium.wait_for(|l| {
        l.strip_prefix("DevTools listening on ws://127.0.0.1:")
            .and_then(|r| r.split('/').next())
            .and_then(|p| p.parse().ok())
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
        let (ws, _) = tokio::time::timeout(BOUND, tokio_tungstenite::connect_async(&page))
            .await
            .unwrap()
            .unwrap();
        let mut cdp = Cdp { ws, id: 0 };
        let body = "document.body.innerText";

        // The login form (the account exists).
        cdp.wait(
            "login form",
            "!document.getElementById('auth').hidden && \
             document.getElementById('auth-form').dataset.mode === 'login'",
            body,
        )
        .await;
        cdp.eval(&format!(
            "document.getElementById('username').value = 'admin'; \
             document.getElementById('password').value = '{PASSWORD}'; \
             document.getElementById('auth-submit').click(); true"
        ))
        .await;

        // The three keys, online.
        let all_online = format!(
            "[{}].every(k => {{ const r = document.querySelector('#visors tr[data-pk=\"' + k + '\"]'); \
             return r && r.dataset.online === 'true'; }})",
            [&hv_pk, &a_pk, &b_pk]
                .iter()
                .map(|k| format!("'{k}'"))
                .collect::<Vec<_>>()
                .join(",")
        );
        cdp.wait("three visors online", &all_online, body).await;

        // Select B, stop and start its skysocks.
        cdp.eval(&format!(
            "document.querySelector('#visors tr[data-pk=\"{b_pk}\"]').click(); true"
        ))
        .await;
        let row = app_row("skysocks");
        cdp.wait(
            "B's apps",
            &format!("!!{row} && document.getElementById('detail-pk').textContent === '{b_pk}'"),
            body,
        )
        .await;
        cdp.eval(&format!("{row}.querySelector('button.stop').click(); true"))
            .await;
        cdp.wait(
            "skysocks stopped",
            &format!("{row}.querySelector('.status').textContent.startsWith('stopped')"),
            body,
        )
        .await;
        assert_eq!(app_status(&format!("unix:{}", dir.join("b.rpc.sock").display()), "skysocks"), 0);
        cdp.eval(&format!("{row}.querySelector('button.start').click(); true"))
            .await;
        cdp.wait(
            "skysocks running",
            &format!("{row}.querySelector('.status').textContent.startsWith('running')"),
            body,
        )
        .await;

        // B's terminal: type into xterm.js like a user.
        cdp.eval("document.getElementById('open-term').click(); true")
            .await;
        cdp.wait(
            "a shell prompt",
            "window.hv.termText().trim().length > 0",
            "window.hv.termText()",
        )
        .await;
        cdp.eval("document.querySelector('#term textarea').focus(); true")
            .await;
        cdp.call("Input.insertText", json!({ "text": "echo hv-$((6*7))" }))
            .await;
        for kind in ["keyDown", "keyUp"] {
            cdp.call(
                "Input.dispatchKeyEvent",
                json!({
                    "type": kind, "key": "Enter", "code": "Enter",
                    "windowsVirtualKeyCode": 13, "nativeVirtualKeyCode": 13,
                    "text": if kind == "keyDown" { "\r" } else { "" },
                }),
            )
            .await;
        }
        cdp.wait(
            "hv-42 in the terminal",
            "window.hv.termText().split('\\n').some(l => l.trim() === 'hv-42')",
            "window.hv.termText()",
        )
        .await;
    });
}
