//! `NoiseStream` end to end: XK over real loopback TCP with 64 MiB in both directions at once,
//! small/odd-sized writes, shutdown passthrough, and the handshake timeout.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: panics are the failure reports

use std::time::Duration;

use sha2::{Digest, Sha256};
use skywire_cipher::SecKey;
use skywire_noise::{DEFAULT_HANDSHAKE_TIMEOUT, NoiseError, NoiseStream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const TOTAL: usize = 64 << 20;

/// Deterministic pattern: a different byte sequence per direction.
fn pattern_chunk(offset: usize, len: usize, salt: u8) -> Vec<u8> {
    (offset..offset + len)
        .map(|i| ((i as u64).wrapping_mul(2654435761) >> 7) as u8 ^ salt)
        .collect()
}

async fn pump_write<W: tokio::io::AsyncWrite + Unpin>(mut w: W, salt: u8) -> W {
    let mut off = 0;
    let mut step = 1usize;
    while off < TOTAL {
        // Vary write sizes: tiny, odd, frame-sized and large.
        step = (step * 7 + 13) % 200_000 + 1;
        let n = step.min(TOTAL - off);
        let chunk = pattern_chunk(off, n, salt);
        w.write_all(&chunk).await.unwrap();
        off += n;
    }
    w.flush().await.unwrap();
    w
}

async fn pump_read<R: tokio::io::AsyncRead + Unpin>(mut r: R, salt: u8) -> [u8; 32] {
    let mut got = 0usize;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 100_000];
    let mut size = 1usize;
    while got < TOTAL {
        size = (size * 5 + 3) % buf.len() + 1;
        let want = size.min(TOTAL - got);
        let n = r.read(&mut buf[..want]).await.unwrap();
        assert!(n > 0, "unexpected EOF after {got} bytes");
        assert_eq!(
            &buf[..n],
            &pattern_chunk(got, n, salt)[..],
            "mismatch at offset {got}"
        );
        hasher.update(&buf[..n]);
        got += n;
    }
    hasher.finalize().into()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xk_over_tcp_64mib_both_directions() {
    let client_sk = SecKey::generate();
    let server_sk = SecKey::generate();
    let server_pk = server_sk.pub_key();
    let client_pk = client_sk.pub_key();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();

    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let s = NoiseStream::xk_responder(tcp, &server_sk, DEFAULT_HANDSHAKE_TIMEOUT)
            .await
            .unwrap();
        assert_eq!(s.remote_pk(), &client_pk);
        let (r, w) = tokio::io::split(s);
        let writer = tokio::spawn(pump_write(w, 0x5a));
        let digest = pump_read(r, 0xa5).await;
        let mut w = writer.await.unwrap();
        w.shutdown().await.unwrap();
        digest
    });

    let tcp = TcpStream::connect(addr).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    let c = NoiseStream::xk_initiator(tcp, &client_sk, server_pk, DEFAULT_HANDSHAKE_TIMEOUT)
        .await
        .unwrap();
    assert_eq!(c.remote_pk(), &server_pk);
    let (r, w) = tokio::io::split(c);
    let writer = tokio::spawn(pump_write(w, 0xa5));
    let got_from_server = pump_read(r, 0x5a).await;
    let mut w = writer.await.unwrap();
    w.shutdown().await.unwrap();
    let got_from_client = server.await.unwrap();

    let expect = |salt| {
        let mut h = Sha256::new();
        let mut off = 0;
        while off < TOTAL {
            let n = (1 << 20).min(TOTAL - off);
            h.update(pattern_chunk(off, n, salt));
            off += n;
        }
        <[u8; 32]>::from(h.finalize())
    };
    assert_eq!(got_from_server, expect(0x5a));
    assert_eq!(got_from_client, expect(0xa5));
}

#[tokio::test]
async fn small_writes_eof_and_zero_length_write() {
    let a_sk = SecKey::generate();
    let b_sk = SecKey::generate();
    let b_pk = b_sk.pub_key();
    let (x, y) = tokio::io::duplex(4096);
    let server = tokio::spawn(async move {
        let mut s = NoiseStream::xk_responder(y, &b_sk, DEFAULT_HANDSHAKE_TIMEOUT)
            .await
            .unwrap();
        let mut all = Vec::new();
        s.read_to_end(&mut all).await.unwrap();
        all
    });
    let mut c = NoiseStream::xk_initiator(x, &a_sk, b_pk, DEFAULT_HANDSHAKE_TIMEOUT)
        .await
        .unwrap();
    assert_eq!(c.write(&[]).await.unwrap(), 0);
    let mut sent = Vec::new();
    for i in 0..300usize {
        let chunk = vec![i as u8; i * 31 % 9000];
        c.write_all(&chunk).await.unwrap();
        sent.extend_from_slice(&chunk);
    }
    c.shutdown().await.unwrap();
    assert_eq!(server.await.unwrap(), sent);
}

#[tokio::test]
async fn empty_frames_are_skipped_on_read() {
    use skywire_noise::Transport;
    let k1 = [9u8; 32];
    let k2 = [8u8; 32];
    let mut tx = Transport::from_keys(&k1, &k2).unwrap();
    let rx = Transport::from_keys(&k2, &k1).unwrap();
    let (a, mut b) = tokio::io::duplex(1 << 16);
    let mut s = NoiseStream::new(a, rx, SecKey::generate().pub_key());
    let mut w = Vec::new();
    tx.encrypt_frame(b"", &mut w).unwrap();
    tx.encrypt_frame(b"", &mut w).unwrap();
    tx.encrypt_frame(b"x", &mut w).unwrap();
    tx.encrypt_frame(b"", &mut w).unwrap();
    b.write_all(&w).await.unwrap();
    drop(b);
    let mut all = Vec::new();
    s.read_to_end(&mut all).await.unwrap();
    assert_eq!(all, b"x");
}

#[tokio::test(start_paused = true)]
async fn handshake_times_out_when_peer_never_answers() {
    let a_sk = SecKey::generate();
    let b_pk = SecKey::generate().pub_key();
    let (x, mut silent) = tokio::io::duplex(4096);
    let r = NoiseStream::xk_initiator(x, &a_sk, b_pk, Duration::from_secs(5)).await;
    assert!(matches!(r, Err(NoiseError::Timeout(d)) if d == Duration::from_secs(5)));
    // The initiator's end was dropped: after msg1 the silent peer sees EOF.
    let mut got = Vec::new();
    silent.read_to_end(&mut got).await.unwrap();
    assert_eq!(got.len(), 51);

    // Responder side: a peer that connects and sends nothing.
    let (y, _keep) = tokio::io::duplex(4096);
    let r = NoiseStream::xk_responder(y, &a_sk, Duration::from_secs(5)).await;
    assert!(matches!(r, Err(NoiseError::Timeout(_))));
}

#[tokio::test]
async fn handshake_timeout_over_tcp() {
    // Real socket, short timeout (no timing assertion beyond "it returns an error").
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hold = tokio::spawn(async move {
        let (sock, _) = listener.accept().await.unwrap();
        let mut sock = sock;
        let mut buf = Vec::new();
        // Reads msg1, never answers; sees EOF once the initiator gives up.
        sock.read_to_end(&mut buf).await.unwrap();
        buf.len()
    });
    let tcp = TcpStream::connect(addr).await.unwrap();
    let r = NoiseStream::xk_initiator(
        tcp,
        &SecKey::generate(),
        SecKey::generate().pub_key(),
        Duration::from_millis(200),
    )
    .await;
    assert!(matches!(r, Err(NoiseError::Timeout(_))));
    assert_eq!(hold.await.unwrap(), 51);
}
