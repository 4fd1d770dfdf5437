//! The control socket's `dmsgpty/proxy` endpoint (pty.md 2.3, 3.2) over an in-process dmsg
//! network: a discovery (memory store, test mode), one relay server and dmsg clients for the
//! hosts. Host A's control socket proxies to host B's dmsg port 22 with A's identity.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod host_common;

use std::path::Path;
use std::time::Duration;

use host_common::bounded;
use skywire_cipher::{PubKey, SecKey};
use skywire_disc::{DiscConfig, DiscHandle, StoreConfig};
use skywire_dmsg::disc::DiscClient;
use skywire_dmsg::{Client, ClientConfig, ServerConfig, ServerHandle};
use skywire_pty::client::{ClientError, is_read_end};
use skywire_pty::types::WinSize;
use skywire_pty::uri::{self, UriError};
use skywire_pty::{HostHandle, PtyClient, PtyHost, PtyHostConfig, WhitelistStore};

struct Net {
    disc: DiscHandle,
    _server: ServerHandle,
}

impl Net {
    async fn start() -> Net {
        let disc = skywire_disc::serve(DiscConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            store: StoreConfig::Memory,
            test_mode: true,
            ..DiscConfig::default()
        })
        .await
        .unwrap();
        let mut cfg = ServerConfig::new(SecKey::generate());
        cfg.local_addr = "127.0.0.1:0".parse().unwrap();
        cfg.discovery = Some(DiscClient::new(&disc.url()).unwrap());
        let server = ServerHandle::start(cfg).await.unwrap();
        let dc = DiscClient::new(&disc.url()).unwrap();
        bounded(async {
            while dc.available_servers().await.map(|l| l.len()).unwrap_or(0) < 1 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        Net {
            disc,
            _server: server,
        }
    }

    async fn client(&self, sk: &SecKey) -> Client {
        let mut cfg = ClientConfig::new(sk.clone(), DiscClient::new(&self.disc.url()).unwrap());
        cfg.first_stream_delay = Duration::ZERO;
        let c = Client::start(cfg);
        c.ready(Duration::from_secs(10)).await.unwrap();
        c
    }
}

/// Host B: serves dmsg port 22 through `client`, whitelisting `allowed`.
fn remote_host(sk: &SecKey, client: &Client, allowed: &[PubKey]) -> HostHandle {
    let host = PtyHost::new(
        PtyHostConfig::new(sk.clone()).with_whitelist(WhitelistStore::memory(allowed.to_vec())),
    );
    host.serve_dmsg(client.listen(22).unwrap())
}

/// Host A: a control socket at `sock`, proxying through `dmsg` (if any).
fn local_host(sk: &SecKey, dmsg: Option<Client>, sock: &Path) -> HostHandle {
    let mut cfg = PtyHostConfig::new(sk.clone());
    if let Some(c) = dmsg {
        cfg = cfg.with_dmsg(c);
    }
    PtyHost::new(cfg).serve_unix(sock).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn proxy_exec_interactive_and_refusals() {
    let net = Net::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (sk_a, sk_b, sk_c) = (SecKey::generate(), SecKey::generate(), SecKey::generate());
    let (dmsg_a, dmsg_b, dmsg_c) = (
        net.client(&sk_a).await,
        net.client(&sk_b).await,
        net.client(&sk_c).await,
    );
    let pk_b = sk_b.pub_key();
    let _b = remote_host(&sk_b, &dmsg_b, &[sk_a.pub_key()]);
    let sock_a = dir.path().join("a.sock");
    let _a = local_host(&sk_a, Some(dmsg_a.clone()), &sock_a);

    // Buffered exec on B through A's proxy.
    let c = bounded(PtyClient::connect_unix_proxy(&sock_a, pk_b, 22))
        .await
        .unwrap();
    let res = bounded(c.exec(
        "sh",
        &["-c".into(), "echo via-proxy; exit 5".into()],
        &[],
        Vec::new(),
        Duration::from_secs(10),
    ))
    .await
    .unwrap();
    assert_eq!(res.stdout, b"via-proxy\n");
    assert_eq!(res.exit_code, 5);
    // Several calls on one proxied stream, each forwarded.
    let res = bounded(c.exec(
        "sh",
        &["-c".into(), "exit 0".into()],
        &[],
        Vec::new(),
        Duration::ZERO,
    ))
    .await
    .unwrap();
    assert_eq!(res.exit_code, 0);
    c.close();

    // Interactive: Start's Size is dropped by the proxy (pty.md 3.2), SetPtySize is forwarded.
    let c = bounded(PtyClient::connect_unix_proxy(&sock_a, pk_b, 22))
        .await
        .unwrap();
    let size = WinSize {
        x: 0,
        y: 0,
        rows: 40,
        cols: 100,
    };
    bounded(c.start(
        "sh",
        &[
            "-c".into(),
            "stty size; read x; stty size; echo got-$x".into(),
        ],
        Some(size),
    ))
    .await
    .unwrap();
    let mut out = read_until(&c, "\n").await;
    assert!(
        out.starts_with("0 0"),
        "Size must not be forwarded: {out:?}"
    );
    bounded(c.set_size(WinSize {
        rows: 33,
        cols: 77,
        ..size
    }))
    .await
    .unwrap();
    bounded(c.write(b"hi\n")).await.unwrap();
    out.push_str(&read_to_end(&c).await);
    assert!(out.contains("33 77"), "{out:?}");
    assert!(out.contains("got-hi"), "{out:?}");
    c.close();

    // Host C is not in B's whitelist: B rejects, so A closes C's local stream without a byte.
    let sock_c = dir.path().join("c.sock");
    let _c = local_host(&sk_c, Some(dmsg_c.clone()), &sock_c);
    let err = bounded(PtyClient::connect_unix_proxy(&sock_c, pk_b, 22))
        .await
        .unwrap_err();
    match &err {
        ClientError::Refused { source, .. } => {
            assert!(
                matches!(source, UriError::ClosedWithoutResponse),
                "{source:?}"
            );
        }
        other => panic!("unexpected error {other:?}"),
    }
    assert!(err.to_string().contains("without answering"), "{err}");

    // A bad query is a set-up failure: close, no byte (observed Go behaviour).
    let mut s = tokio::net::UnixStream::connect(&sock_a).await.unwrap();
    let e = bounded(uri::request_uri(&mut s, "dmsgpty/proxy?pk=zz&port=22"))
        .await
        .unwrap_err();
    assert!(matches!(e, UriError::ClosedWithoutResponse), "{e:?}");

    // Nobody listens on B's port 23: the dial fails, close without a byte.
    let err = bounded(PtyClient::connect_unix_proxy(&sock_a, pk_b, 23))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Refused {
                source: UriError::ClosedWithoutResponse,
                ..
            }
        ),
        "{err:?}"
    );

    // A host without a dmsg client refuses the endpoint with 0x01.
    let sock_n = dir.path().join("n.sock");
    let _n = local_host(&SecKey::generate(), None, &sock_n);
    let err = bounded(PtyClient::connect_unix_proxy(&sock_n, pk_b, 22))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Refused {
                source: UriError::Rejected(1),
                ..
            }
        ),
        "{err:?}"
    );

    dmsg_c.close().await;
    dmsg_a.close().await;
    dmsg_b.close().await;
}

/// Reads until the output contains `needle`.
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

/// Reads until the session ends (the child exited).
async fn read_to_end(c: &PtyClient) -> String {
    let mut acc = String::new();
    bounded(async {
        loop {
            match c.read(4096).await {
                Ok(b) => acc.push_str(&String::from_utf8_lossy(&b)),
                Err(e) if is_read_end(&e) => break,
                Err(e) => panic!("read: {e} ({acc:?})"),
            }
        }
    })
    .await;
    acc
}
