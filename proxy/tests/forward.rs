//! The skynet forwarding server's decisions over in-memory carriers (tokio duplex) against
//! real TCP targets on 127.0.0.1: raw relay, whitelist refusal before and after the request
//! (2025 / 2026), an unexposed port, and HTTP mode's 502 for a closed local port.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use skywire_cipher::SecKey;
use skywire_proxy::handshake::{ForwardRequest, HandshakeError, Variant, client_handshake};
use skywire_proxy::{ForwardServer, ForwardServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const T: Duration = Duration::from_secs(10);

async fn echo() -> u16 {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    port
}

fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn forward_decisions() {
    let port = echo().await;
    let closed = closed_port();
    let (ok_pk, bad_pk) = (SecKey::generate().pub_key(), SecKey::generate().pub_key());
    for variant in [Variant::V2025, Variant::V2026] {
        let server = ForwardServer::new(ForwardServerConfig {
            ports: [port, closed].into_iter().collect(),
            whitelist: [ok_pk].into_iter().collect(),
            variant,
            ..ForwardServerConfig::default()
        });
        let run = |pk, req: ForwardRequest| {
            let server = server.clone();
            async move {
                let (mut c, s) = tokio::io::duplex(64 * 1024);
                let srv = tokio::spawn(async move { server.handle(s, pk).await });
                let r = client_handshake(&mut c, variant, &req, T).await;
                (c, r, srv)
            }
        };
        // Allowed: raw relay to the echo.
        let (mut c, r, _srv) = run(
            ok_pk,
            ForwardRequest {
                port,
                raw_tcp: true,
            },
        )
        .await;
        r.unwrap();
        c.write_all(b"hello forward").await.unwrap();
        let mut got = [0u8; 13];
        c.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"hello forward");
        // Not on the whitelist.
        let (_c, r, srv) = run(
            bad_pk,
            ForwardRequest {
                port,
                raw_tcp: true,
            },
        )
        .await;
        assert!(
            matches!(r, Err(HandshakeError::Refused(ref e)) if e == "not authorized"),
            "{variant:?}: {r:?}"
        );
        assert!(srv.await.unwrap().is_err());
        // Not exposed.
        let (_c, r, _) = run(
            ok_pk,
            ForwardRequest {
                port: 1,
                raw_tcp: true,
            },
        )
        .await;
        assert!(
            matches!(r, Err(HandshakeError::Refused(ref e)) if e == "port 1 not exposed"),
            "{r:?}"
        );
        // Exposed but nothing listens: raw → error reply, HTTP → {} then 502.
        let (_c, r, _) = run(
            ok_pk,
            ForwardRequest {
                port: closed,
                raw_tcp: true,
            },
        )
        .await;
        assert!(
            matches!(r, Err(HandshakeError::Refused(ref e)) if e.starts_with("Failed to dial port")),
            "{r:?}"
        );
        let (mut c, r, _) = run(
            ok_pk,
            ForwardRequest {
                port: closed,
                raw_tcp: false,
            },
        )
        .await;
        r.unwrap();
        let mut body = Vec::new();
        tokio::time::timeout(T, c.read_to_end(&mut body))
            .await
            .unwrap()
            .unwrap();
        assert!(
            body.starts_with(b"HTTP/1.1 502 Bad Gateway\r\n"),
            "{body:?}"
        );
    }
}
