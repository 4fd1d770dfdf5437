//! `skywire cli pty shell <pk>@127.0.0.1:<port>` driven through a REAL pty: the test opens a
//! pty pair (`pty-process`), runs the client with the slave as its stdin/stdout/stderr and
//! controlling terminal (so it enters raw mode and sends the window size), against a `skywire dmsg
//! pty host --no-dmsg` it starts with the client's key whitelisted. It types a command and reads
//! its output, resizes the terminal (SIGWINCH → `pty.SetPtySize`) and checks `stty size` on the
//! remote side, then types `exit` and expects the client to end with exit code 0. Every wait is
//! bounded; the client and the host are killed on `Drop`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use common::PtyHost;

use pty_process::Size;
use skywire_cipher::{PubKey, SecKey};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BOUND: Duration = Duration::from_secs(20);

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_skywire")
}

/// Starts `dmsg pty host --no-dmsg --tcplisten 127.0.0.1:0` whitelisting `client`; returns it
/// with its key and TCP address once it printed `pty host ready`.
fn start_host(dir: &Path, client: &PubKey) -> (PtyHost, PubKey, SocketAddr) {
    let hex = client.to_hex();
    let host = PtyHost::start(
        dir,
        "host.json",
        "pty.sock",
        &["--no-dmsg", "--tcplisten", "127.0.0.1:0", "--wl", &hex],
        "pty host ready",
    );
    let (pk, addr) = (host.pk, host.addr.expect("host tcp address line"));
    (host, pk, addr)
}

/// The test's side of the pty and everything read from it.
struct Term {
    pty: pty_process::Pty,
    out: Vec<u8>,
}

impl Term {
    async fn send(&mut self, s: &str) {
        self.pty.write_all(s.as_bytes()).await.unwrap();
        self.pty.flush().await.unwrap();
    }

    /// Reads until `done(output since from)` holds (bounded by `deadline`).
    async fn read_until(
        &mut self,
        from: usize,
        deadline: tokio::time::Instant,
        done: impl Fn(&str) -> bool,
    ) {
        let mut buf = [0u8; 4096];
        while !done(&String::from_utf8_lossy(&self.out[from..])) {
            match tokio::time::timeout_at(deadline, self.pty.read(&mut buf)).await {
                Ok(Ok(n)) if n > 0 => self.out.extend_from_slice(&buf[..n]),
                other => panic!(
                    "terminal output ended or timed out ({other:?}); so far: {:?}",
                    String::from_utf8_lossy(&self.out)
                ),
            }
        }
    }
}

#[test]
fn shell_through_a_real_pty_with_resize_and_exit() {
    let dir = tempfile::tempdir().unwrap();
    let sk = SecKey::generate();
    let (_host, pk, addr) = start_host(dir.path(), &sk.pub_key());

    common::runtime().block_on(async {
        let (pty, pts) = pty_process::open().unwrap();
        pty.resize(Size::new(24, 80)).unwrap();
        let mut client = pty_process::Command::new(bin())
            .args([
                "cli",
                "pty",
                "shell",
                &format!("{pk}@{addr}"),
                "--sk",
                &sk.to_hex(),
            ])
            .env("TERM", "dumb")
            .env_remove("SKYWIRE_LOG")
            .env_remove("DMSGPTY_SK")
            .current_dir(dir.path())
            .kill_on_drop(true)
            .spawn(pts)
            .unwrap();
        let mut term = Term {
            pty,
            out: Vec::new(),
        };

        // A command typed into the remote shell; its output (not the echoed input) comes back.
        let deadline = tokio::time::Instant::now() + BOUND;
        term.send("echo hello-$((6*7))\r").await;
        term.read_until(0, deadline, |s| s.contains("hello-42"))
            .await;

        // The session started with our size; a resize reaches the remote pty. The SIGWINCH and
        // the typed line travel separately, so `stty size` is retyped until the new size shows.
        let deadline = tokio::time::Instant::now() + BOUND;
        let from = term.out.len();
        term.send("stty size\r").await;
        term.read_until(from, deadline, |s| s.contains("24 80"))
            .await;
        term.pty.resize(Size::new(33, 101)).unwrap();
        loop {
            let from = term.out.len();
            term.send("stty size\r").await;
            term.read_until(from, deadline, |s| {
                s.contains("33 101") || s.contains("24 80")
            })
            .await;
            if String::from_utf8_lossy(&term.out[from..]).contains("33 101") {
                break;
            }
        }

        // `exit` ends the remote shell and with it the client, exit code 0.
        term.send("exit\r").await;
        let status = tokio::time::timeout(BOUND, client.wait())
            .await
            .expect("the client did not exit after `exit`")
            .unwrap();
        assert!(
            status.success(),
            "{status:?}; output: {:?}",
            String::from_utf8_lossy(&term.out)
        );
    });
}
