//! `PtyClient` against an in-process `PtyHost`: over noise-XK TCP on 127.0.0.1:0 (exec output and
//! exit code, timeout → 124, a non-whitelisted key refused, a wrong host key failing the
//! handshake) and over the unix control socket (interactive session start/write/read/resize/stop,
//! and the end of a session after the child exits).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use skywire_cipher::SecKey;
use skywire_pty::client::{ClientError, PtyClient, Target, is_read_end};
use skywire_pty::types::{self, WinSize};
use skywire_pty::{HostHandle, PtyHost, PtyHostConfig, WhitelistStore};
use tokio::net::TcpListener;

const BOUND: Duration = Duration::from_secs(20);

async fn bounded<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(BOUND, f)
        .await
        .expect("bounded wait expired")
}

/// A host whitelisting `allowed`, serving TCP on 127.0.0.1:0.
async fn tcp_host(allowed: &SecKey) -> (PtyHost, HostHandle, Target) {
    let host = PtyHost::new(
        PtyHostConfig::new(SecKey::generate())
            .with_whitelist(WhitelistStore::memory([allowed.pub_key()])),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = host.serve_tcp(listener);
    let target = format!("tcp://{}@{addr}", host.pk()).parse().unwrap();
    (host, handle, target)
}

fn sh(script: &str) -> Vec<String> {
    vec!["-c".into(), script.into()]
}

#[tokio::test]
async fn tcp_exec_output_exit_code_and_timeout() {
    let sk = SecKey::generate();
    let (_host, handle, target) = tcp_host(&sk).await;
    let c = bounded(PtyClient::connect(&target, &sk, None))
        .await
        .unwrap();
    assert!(c.target().starts_with("tcp://"));

    let r = bounded(c.exec(
        "sh",
        &sh("echo out; echo err >&2; exit 7"),
        &[],
        Vec::new(),
        Duration::from_secs(10),
    ))
    .await
    .unwrap();
    assert_eq!(r.stdout, b"out\n");
    assert_eq!(r.stderr, b"err\n");
    assert_eq!(r.exit_code, 7);
    assert!(!r.timed_out);
    assert_eq!(types::client_exit_code(&r), 7);

    // stdin and env reach the command; several execs on one stream.
    let r = bounded(c.exec(
        "sh",
        &sh("cat; echo \"$FOO\""),
        &["FOO=bar".into()],
        b"in\n".to_vec(),
        Duration::from_secs(10),
    ))
    .await
    .unwrap();
    assert_eq!(r.stdout, b"in\nbar\n");
    assert_eq!(r.exit_code, 0);

    let r = bounded(c.exec(
        "sleep",
        &["5".into()],
        &[],
        Vec::new(),
        Duration::from_millis(300),
    ))
    .await
    .unwrap();
    assert!(r.timed_out);
    assert_eq!(types::client_exit_code(&r), 124);
    assert_eq!(
        types::client_exit_notes(&r),
        [format!("[timed out after {}ms]", r.duration_ms)]
    );
    c.close();
    handle.shutdown().await;
}

#[tokio::test]
async fn tcp_refusals_are_clear() {
    let allowed = SecKey::generate();
    let (host, handle, target) = tcp_host(&allowed).await;

    let stranger = SecKey::generate();
    let err = bounded(PtyClient::connect(&target, &stranger, None))
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Refused { .. }), "{err:?}");
    let text = format!("{err}");
    assert!(text.contains("not in its whitelist"), "{text}");
    assert!(text.contains(&stranger.pub_key().to_string()), "{text}");

    // A wrong host key fails the handshake.
    let Target::Tcp { addr, .. } = &target else {
        unreachable!()
    };
    let wrong = SecKey::generate().pub_key();
    assert_ne!(wrong, host.pk());
    let err = bounded(PtyClient::connect_tcp(addr, wrong, &allowed))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Handshake { .. } | ClientError::Refused { .. }
        ),
        "{err:?}"
    );

    // Nothing listening.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = l.local_addr().unwrap().to_string();
    drop(l);
    let err = bounded(PtyClient::connect_tcp(&dead, host.pk(), &allowed))
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Connect { .. }), "{err:?}");
    handle.shutdown().await;
}

#[tokio::test]
async fn unix_session_start_write_read_resize_stop() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pty.sock");
    let host = PtyHost::new(PtyHostConfig::new(SecKey::generate()));
    let handle = host.serve_unix(&path).unwrap();
    let target: Target = format!("unix://{}", path.display()).parse().unwrap();
    let c = bounded(PtyClient::connect(&target, &SecKey::generate(), None))
        .await
        .unwrap();

    c.start("sh", &[], Some(WinSize::from_cols_rows(100, 30)))
        .await
        .unwrap();
    assert_eq!(
        c.write(b"stty size; echo mark-$((40+2))\n").await.unwrap(),
        31
    );
    let out = read_until(&c, "mark-42").await;
    assert!(out.contains("30 100"), "{out:?}");

    c.set_size(WinSize::from_cols_rows(120, 40)).await.unwrap();
    c.write(b"stty size; echo mark-$((40+3))\n").await.unwrap();
    let out = read_until(&c, "mark-43").await;
    assert!(out.contains("40 120"), "{out:?}");

    c.stop().await.unwrap();
    let err = c.read(4096).await.unwrap_err();
    assert_eq!(err.remote_text(), Some(types::errors::NO_ACTIVE_SESSION));

    // A second session on a fresh stream ends by itself when its command exits.
    let c2 = bounded(PtyClient::connect_unix(&path)).await.unwrap();
    c2.start("sh", &sh("echo bye"), None).await.unwrap();
    let end = bounded(async {
        let mut acc = Vec::new();
        loop {
            match c2.read(4096).await {
                Ok(b) => acc.extend_from_slice(&b),
                Err(e) => return (acc, e),
            }
        }
    })
    .await;
    assert!(String::from_utf8_lossy(&end.0).contains("bye"));
    assert!(is_read_end(&end.1), "{:?}", end.1);
    handle.shutdown().await;
}

async fn read_until(c: &PtyClient, needle: &str) -> String {
    let mut acc = String::new();
    bounded(async {
        while !acc.contains(needle) {
            let b = c.read(4096).await.unwrap();
            acc.push_str(&String::from_utf8_lossy(&b));
        }
    })
    .await;
    acc
}
