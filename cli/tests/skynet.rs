//! skynet forwards as real detached `skywire cli skynet` instances on a `skywire testnet`:
//! `srv start --ports <http>,<echo> --wl <client>` exposes an HTTP server and a raw TCP echo
//! run by the test; clients map them to local ports over dmsg and over the direct noise-XK
//! path (`--skynet --peer`). Checked: HTTP mode through curl, raw mode with 100 concurrent
//! connections of checksummed data, a key not on the whitelist refused, the 2025 handshake
//! (no ready byte, port 47), `status`, and `stop` really stopping (process gone, port
//! closed, state file removed). Waits are bounded; every instance is stopped on drop.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::{STOP, Testnet, http_server, run_bounded};
use sha2::{Digest, Sha256};
use skywire_cipher::SecKey;

const BOUND: Duration = Duration::from_secs(60);

fn echo_server() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { break };
            std::thread::spawn(move || {
                s.set_read_timeout(Some(BOUND)).unwrap();
                let mut buf = [0u8; 16 * 1024];
                loop {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if s.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                    }
                }
                let _ = s.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    addr
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn state(dir: &Path, name: &str) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join(format!("{name}.json"))).unwrap()).unwrap()
}

fn alive(pid: u64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.rsplit_once(')').unwrap().1.trim_start().starts_with('Z'))
        .unwrap_or(false)
}

/// `skywire args...` (bounded), asserting success; returns stdout.
fn sw(dir: &Path, args: &[&str]) -> String {
    let out = run_bounded(args, dir, None, BOUND);
    assert!(out.status.success(), "skywire {}: {out:?}", args.join(" "));
    text(&out.stdout)
}

/// Stops every instance in a state directory on drop.
struct Cleanup(PathBuf);
impl Drop for Cleanup {
    fn drop(&mut self) {
        let st = self.0.to_str().unwrap();
        let _ = run_bounded(
            &["cli", "skynet", "stop", "--state-dir", st],
            &self.0,
            None,
            STOP,
        );
        let _ = run_bounded(
            &["cli", "skynet", "srv", "stop", "--state-dir", st],
            &self.0,
            None,
            STOP,
        );
    }
}

/// Starts a client; returns (name, local address).
fn client(dir: &Path, st: &str, extra: &[&str]) -> (String, String) {
    let mut args = vec!["cli", "skynet", "start", "--local", "0", "--state-dir", st];
    args.extend_from_slice(extra);
    let out = sw(dir, &args);
    let name = out.split_whitespace().next().unwrap().to_owned();
    assert!(name.starts_with("skynet-client-"), "{out}");
    let local = state(Path::new(st), &name)["addrs"]["local"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        name,
        format!("skynet-client-{}", local.rsplit(':').next().unwrap())
    );
    (name, local)
}

/// 100 concurrent connections, each echoing 64 KiB of distinct data, checked by SHA-256.
fn echo_many(local: &str) {
    let threads: Vec<_> = (0..100u32)
        .map(|i| {
            let local = local.to_owned();
            std::thread::spawn(move || {
                let data: Vec<u8> = (0..64 * 1024u32)
                    .map(|j| (j.wrapping_mul(31).wrapping_add(i * 7) % 251) as u8)
                    .collect();
                let mut s = TcpStream::connect(&local).unwrap();
                s.set_read_timeout(Some(BOUND)).unwrap();
                let mut w = s.try_clone().unwrap();
                let sent = data.clone();
                let writer = std::thread::spawn(move || {
                    w.write_all(&sent).unwrap();
                    w.shutdown(std::net::Shutdown::Write).unwrap();
                });
                let mut got = Vec::new();
                s.read_to_end(&mut got).unwrap();
                writer.join().unwrap();
                assert_eq!(
                    Sha256::digest(&got),
                    Sha256::digest(&data),
                    "connection {i}: {} of {} bytes",
                    got.len(),
                    data.len()
                );
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

fn curl(url: &str) -> Output {
    let mut c = Command::new("curl");
    c.args(["-sS", "--max-time", "30", url])
        .stdin(Stdio::null());
    c.output().unwrap()
}

#[test]
fn skynet_forwards_http_and_raw_over_dmsg_and_direct() {
    let dir = tempfile::tempdir().unwrap();
    let st_path = dir.path().join("state");
    let st = st_path.to_str().unwrap().to_owned();
    let _cleanup = Cleanup(st_path.clone());
    let net = Testnet::start(dir.path(), 1, 0);
    let web = http_server("forwarded page");
    let echo = echo_server();
    // Each process with a dmsg client needs its own key (one key = one dmsg client), so the
    // HTTP-over-dmsg client gets a second whitelisted key.
    let (srv_sk, cli_sk, cli2_sk, other_sk) = (
        SecKey::generate(),
        SecKey::generate(),
        SecKey::generate(),
        SecKey::generate(),
    );
    let srv_pk = srv_sk.pub_key().to_hex();
    let ports = format!("{},{}", web.port(), echo.port());

    let out = sw(
        dir.path(),
        &[
            "cli",
            "skynet",
            "srv",
            "start",
            "--ports",
            &ports,
            "--wl",
            &format!("{},{}", cli_sk.pub_key(), cli2_sk.pub_key()),
            "--tcp-listen",
            "127.0.0.1:0",
            "--sk",
            &srv_sk.to_hex(),
            "--disc",
            &net.disc,
            "--state-dir",
            &st,
        ],
    );
    assert!(out.contains("skynet-srv started"), "{out}");
    let srv = state(&st_path, "skynet-srv");
    let tcp = srv["addrs"]["tcp"].as_str().unwrap().to_owned();
    let srv_pid = srv["pid"].as_u64().unwrap();
    let peer = format!("{srv_pk}@{tcp}");
    let (web_p, echo_p) = (web.port().to_string(), echo.port().to_string());
    let cli = cli_sk.to_hex();
    let cli2 = cli2_sk.to_hex();

    // Raw TCP over dmsg: 100 concurrent checksummed echoes.
    let (raw_dmsg, raw_dmsg_addr) = client(
        dir.path(),
        &st,
        &[
            "--pk",
            &srv_pk,
            "--remote",
            &echo_p,
            "--raw-tcp",
            "--dmsg",
            "--sk",
            &cli,
            "--disc",
            &net.disc,
        ],
    );
    echo_many(&raw_dmsg_addr);

    // Raw TCP over the direct noise path.
    let (_, raw_direct_addr) = client(
        dir.path(),
        &st,
        &[
            "--pk",
            &srv_pk,
            "--remote",
            &echo_p,
            "--raw-tcp",
            "--skynet",
            "--peer",
            &peer,
            "--sk",
            &cli,
        ],
    );
    echo_many(&raw_direct_addr);

    // HTTP mode, both carriers.
    for extra in [
        vec!["--dmsg", "--disc", &net.disc, "--sk", &cli2],
        vec!["--skynet", "--peer", &peer, "--sk", &cli],
    ] {
        let mut args = vec!["--pk", &srv_pk, "--remote", &web_p];
        args.extend(extra);
        let (_, addr) = client(dir.path(), &st, &args);
        let out = curl(&format!("http://{addr}/"));
        assert!(out.status.success(), "{out:?}");
        assert_eq!(text(&out.stdout), "forwarded page");
    }

    // A port the server does not expose, and a key not on the whitelist: refused, the local
    // connection is closed without data.
    let closed_port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    for (sk, remote) in [
        (other_sk.to_hex(), echo_p.clone()),
        (cli.clone(), closed_port.to_string()),
    ] {
        let (_, addr) = client(
            dir.path(),
            &st,
            &[
                "--pk",
                &srv_pk,
                "--remote",
                &remote,
                "--raw-tcp",
                "--skynet",
                "--peer",
                &peer,
                "--sk",
                &sk,
            ],
        );
        let mut s = TcpStream::connect(&addr).unwrap();
        s.set_read_timeout(Some(BOUND)).unwrap();
        let _ = s.write_all(b"ping");
        let mut got = Vec::new();
        let _ = s.read_to_end(&mut got);
        assert!(got.is_empty(), "refused forward returned {got:?}");
    }
    let logs: String = std::fs::read_dir(&st_path)
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "log"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .collect();
    assert!(logs.contains("not authorized"), "{logs}");
    assert!(
        logs.contains(&format!("port {closed_port} not exposed")),
        "{logs}"
    );

    // status lists the clients; stop one by name really stops it.
    let status = sw(dir.path(), &["cli", "skynet", "status", "--state-dir", &st]);
    assert_eq!(status.matches("skynet-client-").count(), 6, "{status}");
    let pid = state(&st_path, &raw_dmsg)["pid"].as_u64().unwrap();
    sw(
        dir.path(),
        &["cli", "skynet", "stop", &raw_dmsg, "--state-dir", &st],
    );
    assert!(!alive(pid), "{raw_dmsg} still running");
    assert!(
        TcpStream::connect(&raw_dmsg_addr).is_err(),
        "port still open"
    );
    assert!(!st_path.join(format!("{raw_dmsg}.json")).exists());
    let status = sw(dir.path(), &["cli", "skynet", "status", "--state-dir", &st]);
    assert_eq!(status.matches("skynet-client-").count(), 5, "{status}");

    // stop without a name stops all clients; srv stop the server.
    sw(dir.path(), &["cli", "skynet", "stop", "--state-dir", &st]);
    assert!(TcpStream::connect(&raw_direct_addr).is_err());
    let status = sw(dir.path(), &["cli", "skynet", "status", "--state-dir", &st]);
    assert!(status.contains("no instances running"), "{status}");
    sw(
        dir.path(),
        &["cli", "skynet", "srv", "stop", "--state-dir", &st],
    );
    assert!(!alive(srv_pid));
    assert!(TcpStream::connect(&tcp).is_err());
}

#[test]
fn skynet_2025_handshake_direct() {
    let dir = tempfile::tempdir().unwrap();
    let st_path = dir.path().join("state");
    let st = st_path.to_str().unwrap().to_owned();
    let _cleanup = Cleanup(st_path.clone());
    let echo = echo_server();
    let srv_sk = SecKey::generate();
    sw(
        dir.path(),
        &[
            "cli",
            "skynet",
            "srv",
            "start",
            "--ports",
            &echo.port().to_string(),
            "--no-dmsg",
            "--tcp-listen",
            "127.0.0.1:0",
            "--handshake",
            "2025",
            "--sk",
            &srv_sk.to_hex(),
            "--state-dir",
            &st,
        ],
    );
    let tcp = state(&st_path, "skynet-srv")["addrs"]["tcp"]
        .as_str()
        .unwrap()
        .to_owned();
    let peer = format!("{}@{tcp}", srv_sk.pub_key());
    let (_, addr) = client(
        dir.path(),
        &st,
        &[
            "--pk",
            &srv_sk.pub_key().to_hex(),
            "--remote",
            &echo.port().to_string(),
            "--raw-tcp",
            "--skynet",
            "--peer",
            &peer,
            "--handshake",
            "2025",
        ],
    );
    let mut s = TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(BOUND)).unwrap();
    s.write_all(b"hello 2025").unwrap();
    let mut got = [0u8; 10];
    s.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"hello 2025");
}
