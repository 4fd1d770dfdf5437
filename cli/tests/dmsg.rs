//! Runs the real `skywire` binary as a user would: `skywire testnet --json` plus
//! `skywire dmsg curl` (page, `-O`, `-o`, `-d`, errors), `skywire dmsg http serve --dir`, and a
//! `skywire dmsg server` from a generated config registering in a `skywire dmsg disc`, with its
//! `/health` and `/metrics`. Every process binds port 0 and reports its address; readiness is
//! polled with deadlines; SIGTERM must stop each one with exit code 0. Children are killed in
//! `Drop`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use common::{Proc, STARTUP};
use sha2::{Digest, Sha256};

const COMMAND: Duration = Duration::from_secs(90);

/// Runs `skywire args` to completion (killed after `COMMAND`).
fn run(args: &[&str], dir: &Path) -> Output {
    common::run_bounded(args, dir, None, COMMAND)
}

fn run_ok(args: &[&str], dir: &Path) -> String {
    let out = run(args, dir);
    assert!(
        out.status.success(),
        "`skywire {}` failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Minimal HTTP/1.0 GET: (status code, body).
fn http_get(addr: &str, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(COMMAND)).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let (head, body) = resp.split_once("\r\n\r\n").unwrap();
    let code = head.split(' ').nth(1).unwrap().parse().unwrap();
    (code, body.to_owned())
}

/// A testnet with 2 servers and its client keys.
struct Testnet {
    proc: Proc,
    disc: String,
    clients: Vec<String>,
}

fn start_testnet(dir: &Path, clients: usize) -> Testnet {
    let common::Testnet { proc, layout, disc } = common::Testnet::start(dir, 2, clients);
    assert_eq!(layout["servers"].as_array().unwrap().len(), 2);
    for s in layout["servers"].as_array().unwrap() {
        assert_eq!(s["pk"].as_str().unwrap().len(), 66);
        assert!(s["addr"].as_str().unwrap().starts_with("127.0.0.1:"));
    }
    let clients: Vec<String> = layout["clients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let sk = skywire_cipher::SecKey::from_hex(c["sk"].as_str().unwrap()).unwrap();
            assert_eq!(sk.pub_key().to_hex(), c["pk"].as_str().unwrap());
            c["pk"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(clients.len(), 2);
    Testnet {
        proc,
        disc,
        clients,
    }
}

#[test]
fn testnet_pages_fetched_with_curl() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut net = start_testnet(dir, 2);
    let disc = net.disc.clone();
    let (c0, c1) = (net.clients[0].clone(), net.clients[1].clone());

    // Body to stdout.
    let page = run_ok(
        &["dmsg", "curl", "--disc", &disc, &format!("dmsg://{c0}/")],
        dir,
    );
    assert!(page.contains("skywire testnet client 0"), "{page}");
    assert!(page.contains(&c0), "{page}");

    // -O names the file after the URL; -o names it explicitly (port given explicitly too).
    let out = run_ok(
        &[
            "dmsg",
            "curl",
            "-c",
            &disc,
            "-O",
            &format!("dmsg://{c1}/index.html"),
        ],
        dir,
    );
    assert!(out.is_empty(), "stdout should be empty with -O: {out}");
    let saved = std::fs::read_to_string(dir.join("index.html")).unwrap();
    assert!(saved.contains("skywire testnet client 1") && saved.contains(&c1));
    run_ok(
        &[
            "dmsg",
            "curl",
            "--disc",
            &disc,
            "-o",
            "named.html",
            &format!("dmsg://{c1}:80/"),
        ],
        dir,
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("named.html")).unwrap(),
        saved
    );

    // -d posts the data (POST /echo answers with the body).
    let echoed = run_ok(
        &[
            "dmsg",
            "curl",
            "--disc",
            &disc,
            "-d",
            "hello dmsg",
            &format!("dmsg://{c0}/echo"),
        ],
        dir,
    );
    assert_eq!(echoed, "hello dmsg");

    // Non-2xx: exit 1, the status on stderr, no file written.
    let out = run(
        &[
            "dmsg",
            "curl",
            "--disc",
            &disc,
            "-o",
            "missing.html",
            &format!("dmsg://{c0}/missing"),
        ],
        dir,
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("404 Not Found"), "{err}");
    assert_eq!(err.matches("Error:").count(), 1, "{err}");
    assert!(!dir.join("missing.html").exists());

    // Bad URLs and -O without a file name fail before touching the network.
    let out = run(
        &["dmsg", "curl", "--disc", &disc, "http://example.com/"],
        dir,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid dmsg URL"));
    let out = run(
        &[
            "dmsg",
            "curl",
            "--disc",
            &disc,
            "-O",
            &format!("dmsg://{c0}/"),
        ],
        dir,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("-O needs a file name"));

    let status = net.proc.terminate();
    assert!(status.success(), "testnet exit status {status:?}");
}

#[test]
fn http_serve_directory_over_dmsg() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let site = dir.join("site");
    std::fs::create_dir_all(site.join("sub")).unwrap();
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    let data: Vec<u8> = (0..3 * 1024 * 1024 + 17)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    std::fs::write(site.join("sub/blob.bin"), &data).unwrap();
    std::fs::write(site.join("hello.txt"), "hi over dmsg\n").unwrap();

    let mut net = start_testnet(dir, 2);
    let disc = net.disc.clone();
    let sk = skywire_cipher::SecKey::generate();
    let pk = sk.pub_key().to_hex();
    let mut server = Proc::start(
        &[
            "dmsg",
            "http",
            "serve",
            "--dir",
            "site",
            "--port",
            "8080",
            "--disc",
            &disc,
            "--sk",
            &sk.to_hex(),
        ],
        dir,
    );
    let url = server.wait_for(|l| {
        l.strip_prefix("serving ")
            .and_then(|r| r.split(" at ").nth(1))
            .map(str::to_owned)
    });
    assert_eq!(url, format!("dmsg://{pk}:8080/"));

    let text = run_ok(
        &["dmsg", "curl", "--disc", &disc, &format!("{url}hello.txt")],
        dir,
    );
    assert_eq!(text, "hi over dmsg\n");
    let listing = run_ok(&["dmsg", "curl", "--disc", &disc, &url], dir);
    assert!(
        listing.contains("hello.txt") && listing.contains("sub/"),
        "{listing}"
    );
    run_ok(
        &[
            "dmsg",
            "curl",
            "--disc",
            &disc,
            "-O",
            &format!("{url}sub/blob.bin"),
        ],
        dir,
    );
    let got = std::fs::read(dir.join("blob.bin")).unwrap();
    assert_eq!(got.len(), data.len());
    assert_eq!(Sha256::digest(&got), Sha256::digest(&data));
    let out = run(
        &[
            "dmsg",
            "curl",
            "--disc",
            &disc,
            &format!("{url}..%2f..%2fetc/passwd"),
        ],
        dir,
    );
    assert_eq!(out.status.code(), Some(1));

    assert!(server.terminate().success());
    assert!(net.proc.terminate().success());
}

#[test]
fn dmsg_server_registers_and_serves_health() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut disc = Proc::start(
        &[
            "dmsg",
            "disc",
            "--store",
            "memory",
            "-t",
            "-a",
            "127.0.0.1:0",
        ],
        dir,
    );
    let disc_addr = disc.wait_for(|l| {
        l.strip_prefix("dmsg discovery listening on ")
            .and_then(|r| r.split(' ').next())
            .map(str::to_owned)
    });

    run_ok(
        &[
            "dmsg",
            "server",
            "config",
            "gen",
            "-o",
            "server.json",
            "--discovery",
            &format!("http://{disc_addr}"),
            "--local-address",
            "127.0.0.1:0",
            "--public-address",
            "",
            "--health-address",
            "127.0.0.1:0",
        ],
        dir,
    );
    let cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("server.json")).unwrap()).unwrap();
    let pk = cfg["public_key"].as_str().unwrap().to_owned();
    assert_eq!(cfg["max_sessions"], 2048);
    // A second gen does not overwrite the file without --force.
    let out = run(
        &["dmsg", "server", "config", "gen", "-o", "server.json"],
        dir,
    );
    assert_eq!(out.status.code(), Some(1));

    let mut server = Proc::start(&["dmsg", "server", "-c", "server.json"], dir);
    let health_addr = server.wait_for(|l| {
        l.strip_prefix("dmsg server health endpoint on http://")
            .and_then(|r| r.strip_suffix("/health"))
            .map(str::to_owned)
    });

    // The server's entry appears in discovery.
    let deadline = Instant::now() + STARTUP;
    let entry = loop {
        let (code, body) = http_get(&disc_addr, &format!("/dmsg-discovery/entry/{pk}"));
        if code == 200 {
            break body;
        }
        assert!(Instant::now() < deadline, "server never registered: {body}");
        std::thread::sleep(Duration::from_millis(50));
    };
    let entry: serde_json::Value = serde_json::from_str(&entry).unwrap();
    assert_eq!(entry["static"], pk.as_str());
    assert!(
        entry["server"]["address"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:")
    );

    let (code, body) = http_get(&health_addr, "/health");
    assert_eq!(code, 200);
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["build_info"]["version"], env!("CARGO_PKG_VERSION"));
    assert!(health["started_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(health["public_key"], pk.as_str());
    assert_eq!(health["sessions_count"], 0);
    assert_eq!(health["available_sessions"], 2048);
    let (code, metrics) = http_get(&health_addr, "/metrics");
    assert_eq!(code, 200);
    for name in [
        "dmsg_server_sessions 0",
        "dmsg_server_dials_total 0",
        "dmsg_server_dials_relayed_total 0",
        "dmsg_server_dials_failed_total 0",
        "dmsg_server_bytes_relayed_total 0",
        "# TYPE dmsg_server_sessions gauge",
    ] {
        assert!(
            metrics.lines().any(|l| l == name),
            "{name} missing:\n{metrics}"
        );
    }
    assert_eq!(http_get(&health_addr, "/nope").0, 404);

    // SIGTERM: exit 0 and the entry is gone from discovery.
    assert!(server.terminate().success());
    let (code, _) = http_get(&disc_addr, &format!("/dmsg-discovery/entry/{pk}"));
    assert_eq!(code, 404, "the server did not deregister");
    assert!(disc.terminate().success());
}
