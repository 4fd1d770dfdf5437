//! The host's listeners on real sockets: the unix control socket in a temp dir (mode 0600, stale
//! file replaced, removed at shutdown; exec and pty sessions; whitelist service persisted to the
//! config file) and the noise-XK TCP listener on 127.0.0.1:0 (non-whitelisted key closed without
//! a byte, whitelisted and own key served, whitelist changes over the control socket honoured).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod host_common;

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::time::Duration;

use host_common::*;
use skywire_cipher::{PubKey, SecKey};
use skywire_noise::NoiseStream;
use skywire_pty::types::{self, CommandReq};
use skywire_pty::uri::{self, PTY_URI, UriError, WHITELIST_URI};
use skywire_pty::{PtyHost, PtyHostConfig, RpcClient, WhitelistFile, WhitelistStore};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream, UnixStream};

async fn unix_client(path: &std::path::Path, uri_path: &str) -> RpcClient {
    let mut s = bounded(UnixStream::connect(path)).await.unwrap();
    bounded(uri::request_uri(&mut s, uri_path)).await.unwrap();
    RpcClient::new(s)
}

async fn noise_connect(
    addr: std::net::SocketAddr,
    sk: &SecKey,
    host: PubKey,
) -> NoiseStream<TcpStream> {
    let tcp = bounded(TcpStream::connect(addr)).await.unwrap();
    NoiseStream::xk_initiator(tcp, sk, host, Duration::from_secs(10))
        .await
        .unwrap()
}

/// Connects with `sk` and reports whether the host served `dmsgpty/pty` (an exec round trip) or
/// closed the connection without a byte.
async fn tcp_served(addr: std::net::SocketAddr, sk: &SecKey, host: PubKey) -> bool {
    let mut ns = noise_connect(addr, sk, host).await;
    match bounded(uri::request_uri(&mut ns, PTY_URI)).await {
        Ok(()) => {
            let client = RpcClient::new(ns);
            let res = client
                .call_method::<types::Exec>(&sh_exec("echo out; echo err >&2; exit 7"))
                .await
                .unwrap();
            assert_eq!(res.stdout, b"out\n");
            assert_eq!(res.stderr, b"err\n");
            assert_eq!(res.exit_code, 7);
            true
        }
        Err(UriError::ClosedWithoutResponse | UriError::Io(_)) => false,
        Err(e) => panic!("unexpected request outcome {e}"),
    }
}

#[tokio::test]
async fn control_socket_serves_exec_pty_and_whitelist() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("pty.sock");
    let conf = dir.path().join("config.json");
    std::fs::write(&conf, r#"{"cli_net":"unix","wl":null}"#).unwrap();

    // A stale socket file from an earlier run is replaced.
    drop(std::os::unix::net::UnixListener::bind(&sock).unwrap());
    assert!(
        std::fs::symlink_metadata(&sock)
            .unwrap()
            .file_type()
            .is_socket()
    );

    let host = PtyHost::new(
        PtyHostConfig::new(SecKey::generate()).with_whitelist(WhitelistStore::file(&conf)),
    );
    let handle = host.serve_unix(&sock).unwrap();
    let mode = std::fs::metadata(&sock).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    // Exec and an interactive session.
    let pty = unix_client(&sock, PTY_URI).await;
    let res = pty
        .call_method::<types::Exec>(&sh_exec("echo out; echo err >&2; exit 7"))
        .await
        .unwrap();
    assert_eq!(
        (res.stdout.as_slice(), res.stderr.as_slice(), res.exit_code),
        (&b"out\n"[..], &b"err\n"[..], 7)
    );
    pty.call_method::<types::Start>(&CommandReq {
        name: "/bin/sh".into(),
        arg: vec!["-c".into(), "printf hi; read x; echo got:$x".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    assert!(read_until(&pty, "hi").await.starts_with("hi"));
    pty.call_method::<types::Write>(&b"abc\n".to_vec())
        .await
        .unwrap();
    read_until(&pty, "got:abc").await;
    assert_eq!(read_to_end(&pty).await, types::errors::PTMX_EIO);

    // Whitelist service: add/list/remove, persisted in the config file.
    let (a, b) = (SecKey::generate().pub_key(), SecKey::generate().pub_key());
    let wl = unix_client(&sock, WHITELIST_URI).await;
    assert!(
        wl.call_method::<types::WhitelistList>(&())
            .await
            .unwrap()
            .is_empty()
    );
    wl.call_method::<types::WhitelistAdd>(&vec![a, b])
        .await
        .unwrap();
    let err = wl
        .call_method::<types::WhitelistAdd>(&vec![a])
        .await
        .unwrap_err();
    assert_eq!(
        err.remote_text().unwrap(),
        format!("skipping append for {a}. Already exists")
    );
    assert_eq!(
        wl.call_method::<types::WhitelistList>(&()).await.unwrap(),
        [a, b]
    );
    assert_eq!(WhitelistFile::new(&conf).load().unwrap().list(), [a, b]);
    wl.call_method::<types::WhitelistRemove>(&vec![a])
        .await
        .unwrap();
    assert_eq!(WhitelistFile::new(&conf).load().unwrap().list(), [b]);
    // Other keys of the config file are kept.
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&conf).unwrap()).unwrap();
    assert_eq!(json["cli_net"], "unix");

    pty.close();
    wl.close();
    bounded(handle.shutdown()).await;
    assert!(!sock.exists(), "socket file left behind");
}

#[tokio::test]
async fn tcp_listener_whitelist_gate() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("pty.sock");
    let conf = dir.path().join("config.json");
    let host_sk = SecKey::generate();
    let host_pk = host_sk.pub_key();
    let friend = SecKey::generate();
    let stranger = SecKey::generate();
    WhitelistFile::new(&conf).add(&[friend.pub_key()]).unwrap();

    let host = PtyHost::new(
        PtyHostConfig::new(host_sk.clone()).with_whitelist(WhitelistStore::file(&conf)),
    );
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tcp_handle = host.serve_tcp(tcp);
    let addr = tcp_handle.local_addr().unwrap();
    let ctl = host.serve_unix(&sock).unwrap();

    // A non-whitelisted key: the connection is closed after the handshake without any byte.
    let mut ns = noise_connect(addr, &stranger, host_pk).await;
    let mut buf = [0u8; 16];
    // (A reset is also "no byte".)
    if let Ok(n) = bounded(ns.read(&mut buf)).await {
        assert_eq!(n, 0, "host sent {:?}", &buf[..n]);
    }
    assert!(!tcp_served(addr, &stranger, host_pk).await);

    // Whitelisted and the host's own key are served.
    assert!(tcp_served(addr, &friend, host_pk).await);
    assert!(tcp_served(addr, &host_sk, host_pk).await);

    // The whitelist endpoint is not served over TCP.
    let mut ns = noise_connect(addr, &friend, host_pk).await;
    let err = bounded(uri::request_uri(&mut ns, WHITELIST_URI))
        .await
        .unwrap_err();
    assert!(matches!(err, UriError::Rejected(1)), "{err}");

    // Whitelist changes over the control socket apply to the next TCP connection.
    let wl = unix_client(&sock, WHITELIST_URI).await;
    wl.call_method::<types::WhitelistAdd>(&vec![stranger.pub_key()])
        .await
        .unwrap();
    assert!(tcp_served(addr, &stranger, host_pk).await);
    wl.call_method::<types::WhitelistRemove>(&vec![friend.pub_key(), stranger.pub_key()])
        .await
        .unwrap();
    assert!(!tcp_served(addr, &friend, host_pk).await);
    assert!(!tcp_served(addr, &stranger, host_pk).await);

    // A wrong host key fails the handshake.
    let tcp = TcpStream::connect(addr).await.unwrap();
    assert!(
        NoiseStream::xk_initiator(tcp, &friend, stranger.pub_key(), Duration::from_secs(10))
            .await
            .is_err()
    );

    wl.close();
    bounded(tcp_handle.shutdown()).await;
    bounded(ctl.shutdown()).await;
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "listener still accepting"
    );
}

#[tokio::test]
async fn shutdown_kills_sessions_of_open_connections() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("pty.sock");
    let host = PtyHost::new(PtyHostConfig::new(SecKey::generate()));
    let handle = host.serve_unix(&sock).unwrap();
    let pty = unix_client(&sock, PTY_URI).await;
    pty.call_method::<types::Start>(&CommandReq {
        name: "/bin/sh".into(),
        arg: vec!["-c".into(), "echo pid:$$; exec sleep 30".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    let pid = pid_after(&read_until(&pty, "\n").await, "pid:");
    assert!(is_running(pid));
    bounded(handle.shutdown()).await;
    // The session's Drop kills the group; its reaper task collects the child.
    wait_until(|| !pid_exists(pid)).await;
    assert!(!sock.exists());
}
