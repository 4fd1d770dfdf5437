//! skysocks and the resolving proxy as real `skywire` processes on a `skywire testnet`:
//!
//! * `curl --socks5-hostname` through `app skysocks-client` → `app skysocks` (dmsg port 3) to
//!   an HTTP server run by the test, by IP and by name (resolved at the exit); the passcode as
//!   username or password; a wrong passcode and no credentials refused (curl exit 97); the
//!   `--http` CONNECT front (`curl -p -x`);
//! * `cli resolver up`: `curl` and a real headless Chromium (`--proxy-server=socks5://…`)
//!   load `http://<pk>.dmsg/` from a testnet client's dmsghttp site and the page text is
//!   checked; other names pass through the chain; `resolver down` really stops it.
//!
//! Needs `curl` and `/usr/bin/chromium`. Waits are bounded; children are killed on drop.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{Proc, STOP, Testnet, http_server, run_bounded};

const BOUND: Duration = Duration::from_secs(60);
const CHROMIUM: &str = "/usr/bin/chromium";

/// Runs `cmd` to completion within `bound` (killed otherwise).
pub fn run_cmd(mut cmd: Command, bound: Duration) -> Output {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = child.id();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let d2 = done.clone();
    std::thread::spawn(move || {
        let deadline = Instant::now() + bound;
        while Instant::now() < deadline {
            if d2.load(std::sync::atomic::Ordering::Relaxed) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
    });
    let out = child.wait_with_output().unwrap();
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    out
}

fn curl(args: &[&str]) -> Output {
    let mut c = Command::new("curl");
    c.args(["-sS", "--max-time", "30"]).args(args);
    run_cmd(c, BOUND)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn skysocks_curl_passcode_and_http_connect() {
    let dir = tempfile::tempdir().unwrap();
    let net = Testnet::start(dir.path(), 1, 0);
    let web = http_server("hello through skysocks");

    let mut server = Proc::start(
        &[
            "app",
            "skysocks",
            "--disc",
            &net.disc,
            "--passcode",
            "s3cret",
        ],
        dir.path(),
    );
    let srv_pk: String = server.wait_for(|l| {
        l.strip_prefix("skysocks serving SOCKS5 on dmsg://")
            .map(|r| r.split(':').next().unwrap().to_owned())
    });
    let mut client = Proc::start(
        &[
            "app",
            "skysocks-client",
            "--srv",
            &srv_pk,
            "--addr",
            "127.0.0.1:0",
            "--http",
            "127.0.0.1:0",
            "--passcode",
            "s3cret",
            "--disc",
            &net.disc,
        ],
        dir.path(),
    );
    let socks: String = client.wait_for(|l| {
        l.strip_prefix("skysocks-client listening on socks5://")
            .map(str::to_owned)
    });
    let http: String = client.wait_for(|l| {
        l.strip_prefix("skysocks-client listening on http://")
            .map(str::to_owned)
    });

    let port = web.port().to_string();
    for (creds, url) in [
        ("s3cret:s3cret", format!("http://127.0.0.1:{port}/")),
        ("anyone:s3cret", format!("http://localhost:{port}/by-name")),
        ("s3cret:x", format!("http://[::ffff:127.0.0.1]:{port}/")),
    ] {
        let out = curl(&["--socks5-hostname", &socks, "-U", creds, &url]);
        assert!(out.status.success(), "{creds} {url}: {out:?}");
        assert_eq!(text(&out.stdout), "hello through skysocks");
    }
    // Wrong passcode, and no credentials at all: refused at SOCKS auth (curl 97).
    let out = curl(&[
        "--socks5-hostname",
        &socks,
        "-U",
        "bad:worse",
        &format!("http://127.0.0.1:{port}/"),
    ]);
    assert_eq!(out.status.code(), Some(97), "{out:?}");
    let out = curl(&[
        "--socks5-hostname",
        &socks,
        &format!("http://127.0.0.1:{port}/"),
    ]);
    assert_eq!(out.status.code(), Some(97), "{out:?}");
    // The HTTP CONNECT front uses the client's --passcode.
    let out = curl(&[
        "-p",
        "-x",
        &format!("http://{http}"),
        &format!("http://127.0.0.1:{port}/"),
    ]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(text(&out.stdout), "hello through skysocks");
}

fn read_state(dir: &Path, name: &str) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join(format!("{name}.json"))).unwrap()).unwrap()
}

fn alive(pid: u64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.rsplit_once(')').unwrap().1.trim_start().starts_with('Z'))
        .unwrap_or(false)
}

/// Stops the resolver if the test failed half-way.
struct Down<'a>(&'a Path);
impl Drop for Down<'_> {
    fn drop(&mut self) {
        let _ = run_bounded(
            &[
                "cli",
                "resolver",
                "down",
                "--state-dir",
                self.0.to_str().unwrap(),
            ],
            self.0,
            None,
            STOP,
        );
    }
}

#[test]
fn resolver_serves_dmsg_pages_to_curl_and_chromium() {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing (Debian: apt-get install -y chromium)"
    );
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let st = state.to_str().unwrap();
    let net = Testnet::start(dir.path(), 1, 1);
    let pk = net.layout["clients"][0]["pk"].as_str().unwrap().to_owned();
    let web = http_server("plain site");

    let out = run_bounded(
        &[
            "cli",
            "resolver",
            "up",
            "--disc",
            &net.disc,
            "--dmsg-port",
            "0",
            "--skynet-port",
            "0",
            "--state-dir",
            st,
        ],
        dir.path(),
        None,
        BOUND,
    );
    assert!(out.status.success(), "{out:?}");
    let _down = Down(&state);
    let inst = read_state(&state, "resolver");
    let socks = inst["addrs"]["dmsg"].as_str().unwrap().to_owned();
    let pid = inst["pid"].as_u64().unwrap();
    let status = run_bounded(
        &["cli", "resolver", "status", "--state-dir", st],
        dir.path(),
        None,
        STOP,
    );
    assert!(text(&status.stdout).contains(&socks), "{status:?}");

    let out = curl(&["--socks5-hostname", &socks, &format!("http://{pk}.dmsg/")]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        text(&out.stdout).contains("skywire testnet client 0"),
        "{out:?}"
    );
    // vhost label and explicit port.
    let out = curl(&[
        "--socks5-hostname",
        &socks,
        &format!("http://www.{pk}.dmsg:80/index.html"),
    ]);
    assert!(text(&out.stdout).contains(&pk), "{out:?}");
    // Other names: through the chain (4445 → 4446 → direct).
    let out = curl(&[
        "--socks5-hostname",
        &socks,
        &format!("http://localhost:{}/", web.port()),
    ]);
    assert_eq!(text(&out.stdout), "plain site", "{out:?}");

    let profile = dir.path().join("chromium-profile");
    let mut c = Command::new(CHROMIUM);
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        &format!("--proxy-server=socks5://{socks}"),
        &format!("--user-data-dir={}", profile.display()),
        "--dump-dom",
        &format!("http://{pk}.dmsg/"),
    ]);
    let out = run_cmd(c, BOUND);
    let dom = text(&out.stdout);
    assert!(
        dom.contains("<h1>skywire testnet client 0</h1>") && dom.contains(&pk),
        "chromium did not render the page: {out:?}"
    );

    let out = run_bounded(
        &["cli", "resolver", "down", "--state-dir", st],
        dir.path(),
        None,
        STOP,
    );
    assert!(out.status.success(), "{out:?}");
    assert!(!alive(pid), "resolver still running");
    assert!(TcpStream::connect(&socks).is_err(), "port still open");
    assert!(!state.join("resolver.json").exists());
    let status = run_bounded(
        &["cli", "resolver", "status", "--state-dir", st],
        dir.path(),
        None,
        STOP,
    );
    assert!(text(&status.stdout).contains("not running"), "{status:?}");
}
