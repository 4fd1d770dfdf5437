//! Helpers shared by the `host_*` integration tests: clients over duplex pipes, bounded waits,
//! pty read loops and process checks through `/proc`.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::time::Duration;

use skywire_cipher::PubKey;
use skywire_pty::types::{self, CommandExecReq};
use skywire_pty::{Carrier, HostError, PtyHost, RpcClient, uri};
use tokio::task::JoinHandle;

/// Upper bound of every wait in these tests (never reached when things work).
pub const BOUND: Duration = Duration::from_secs(20);

/// Awaits `f`, failing the test after [`BOUND`].
pub async fn bounded<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(BOUND, f)
        .await
        .expect("bounded wait expired")
}

/// Polls `cond` every 10 ms until it holds, failing the test after [`BOUND`].
pub async fn wait_until(mut cond: impl FnMut() -> bool) {
    bounded(async {
        while !cond() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

/// A host serving one end of a duplex pipe; returns an RPC client on the other end after the
/// request for `uri_path` was accepted, and the serving task.
pub async fn duplex_client(
    host: &PtyHost,
    uri_path: &str,
    remote: Option<PubKey>,
    carrier: Carrier,
) -> (RpcClient, JoinHandle<Result<(), HostError>>) {
    let (mut c, s) = tokio::io::duplex(64 * 1024);
    let h = host.clone();
    let task = tokio::spawn(async move { h.serve_stream(s, remote, carrier).await });
    bounded(uri::request_uri(&mut c, uri_path)).await.unwrap();
    (RpcClient::new(c), task)
}

/// `sh -c script` as an exec request.
pub fn sh_exec(script: &str) -> CommandExecReq {
    CommandExecReq {
        name: "sh".into(),
        arg: vec!["-c".into(), script.into()],
        ..Default::default()
    }
}

/// Reads pty output until it contains `needle`; returns everything read.
pub async fn read_until(client: &RpcClient, needle: &str) -> String {
    let mut acc = String::new();
    bounded(async {
        while !acc.contains(needle) {
            match client.call_method::<types::Read>(&4096).await {
                Ok(b) => acc.push_str(&String::from_utf8_lossy(&b)),
                Err(e) => panic!("read error {e} before {needle:?}; got {acc:?}"),
            }
        }
    })
    .await;
    acc
}

/// Reads until `Read` fails; returns the error text.
pub async fn read_to_end(client: &RpcClient) -> String {
    bounded(async {
        loop {
            if let Err(e) = client.call_method::<types::Read>(&4096).await {
                return e.remote_text().expect("remote error").to_owned();
            }
        }
    })
    .await
}

/// Decimal numbers in `out`.
pub fn pids_in(out: &[u8]) -> Vec<i32> {
    String::from_utf8_lossy(out)
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect()
}

/// The number after `prefix` in `out`.
pub fn pid_after(out: &str, prefix: &str) -> i32 {
    let rest = &out[out.find(prefix).expect("prefix") + prefix.len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().expect("pid")
}

/// Whether `/proc/<pid>` exists (running or zombie).
pub fn pid_exists(pid: i32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// Whether `pid` exists and is not a zombie.
pub fn is_running(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat.rsplit_once(')').map(|(_, r)| r.trim_start());
            !state.is_some_and(|s| s.starts_with('Z'))
        }
        Err(_) => false,
    }
}

/// Waits (bounded) until `pid` is gone or a zombie of some other parent.
pub async fn wait_not_running(pid: i32) {
    wait_until(|| !is_running(pid)).await;
}
