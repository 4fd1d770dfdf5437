//! The `dmsgpty/sftp` hook: a host with an [`SftpService`] hands the raw stream to it after
//! `0x00` on every carrier (whitelist gate first on remote ones); without one the request is
//! answered with `0x01`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use skywire_cipher::SecKey;
use skywire_pty::uri::{self, SFTP_URI};
use skywire_pty::{BoxedStream, Carrier, PtyHost, PtyHostConfig, SftpService, WhitelistStore};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Echoes one 4-byte message back, upper-cased.
#[derive(Debug)]
struct Echo;

impl SftpService for Echo {
    fn serve(
        &self,
        mut io: BoxedStream,
        _remote: Option<skywire_cipher::PubKey>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'static>> {
        Box::pin(async move {
            let mut b = [0u8; 4];
            io.read_exact(&mut b).await.unwrap();
            io.write_all(&b.to_ascii_uppercase()).await.unwrap();
        })
    }
}

async fn request(
    host: &PtyHost,
    carrier: Carrier,
    remote: Option<skywire_cipher::PubKey>,
) -> Result<Vec<u8>, uri::UriError> {
    let (mut a, b) = tokio::io::duplex(1024);
    let h = host.clone();
    let task = tokio::spawn(async move { h.serve_stream(b, remote, carrier).await });
    uri::request_uri(&mut a, SFTP_URI).await?;
    a.write_all(b"ping").await.unwrap();
    let mut out = vec![0u8; 4];
    a.read_exact(&mut out).await.unwrap();
    task.await.unwrap().unwrap();
    Ok(out)
}

#[tokio::test]
async fn sftp_is_served_through_the_hook_and_refused_without_it() {
    let client = SecKey::generate();
    let cfg = PtyHostConfig::new(SecKey::generate())
        .with_whitelist(WhitelistStore::memory([client.pub_key()]));
    let with = PtyHost::new(cfg.clone().with_sftp(Arc::new(Echo)));
    for carrier in [Carrier::Control, Carrier::Tcp, Carrier::Dmsg] {
        let got = request(&with, carrier, Some(client.pub_key()))
            .await
            .unwrap();
        assert_eq!(got, b"PING", "{carrier:?}");
    }
    // Not whitelisted: refused on remote carriers even with the hook.
    let stranger = SecKey::generate().pub_key();
    assert!(request(&with, Carrier::Dmsg, Some(stranger)).await.is_err());
    // No hook: 0x01.
    let without = PtyHost::new(cfg);
    let err = request(&without, Carrier::Tcp, Some(client.pub_key()))
        .await
        .unwrap_err();
    assert!(matches!(err, uri::UriError::Rejected(_)), "{err:?}");
}
