//! Shared helpers of the `mux_*` integration tests: connected session pairs (TCP loopback or
//! in-memory duplex), a raw yamux peer for byte-level checks, and checksummed payloads.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use skywire_dmsg::mux::{Config, Flags, Header, Session};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::net::{TcpListener, TcpStream};

/// Generous bound for any single wait in a test (never a timing assertion).
pub const WAIT: Duration = Duration::from_secs(30);

pub async fn tcp_pair() -> (TcpStream, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let (c, s) = tokio::join!(TcpStream::connect(addr), l.accept());
    let c = c.unwrap();
    let s = s.unwrap().0;
    c.set_nodelay(true).unwrap();
    s.set_nodelay(true).unwrap();
    (c, s)
}

/// (client, server) sessions over TCP loopback.
pub async fn session_pair(cfg: Config) -> (Session, Session) {
    let (c, s) = tcp_pair().await;
    (Session::client(c, cfg.clone()), Session::server(s, cfg))
}

/// Deterministic pseudo-random bytes (xorshift) so both ends can check content.
pub fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// FNV-1a, enough to detect corruption or reordering.
pub fn checksum(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    })
}

pub async fn timeout<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(WAIT, f)
        .await
        .expect("test step timed out")
}

/// A hand-driven yamux peer over an in-memory pipe.
pub struct Raw {
    pub io: DuplexStream,
}

impl Raw {
    /// A session of `mode` on one end of a pipe, the raw peer on the other.
    pub fn client_session(cfg: Config) -> (Session, Raw) {
        let (a, b) = tokio::io::duplex(4 << 20);
        (Session::client(a, cfg), Raw { io: b })
    }

    pub fn server_session(cfg: Config) -> (Session, Raw) {
        let (a, b) = tokio::io::duplex(4 << 20);
        (Session::server(a, cfg), Raw { io: b })
    }

    pub async fn send(&mut self, h: Header, payload: &[u8]) {
        self.io.write_all(&h.encode()).await.unwrap();
        self.io.write_all(payload).await.unwrap();
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.io.write_all(bytes).await.unwrap();
    }

    /// Next frame, or `None` on EOF.
    pub async fn recv(&mut self) -> Option<(Header, Vec<u8>)> {
        let mut hb = [0u8; 12];
        match self.io.read_exact(&mut hb).await {
            Ok(_) => {}
            Err(_) => return None,
        }
        let h = Header::decode(&hb).expect("session sent an invalid header");
        let mut payload = vec![0u8; h.payload_len()];
        self.io.read_exact(&mut payload).await.unwrap();
        Some((h, payload))
    }

    /// Next frame that is not a Ping (keepalive pings are answered).
    pub async fn recv_no_ping(&mut self) -> Option<(Header, Vec<u8>)> {
        loop {
            let (h, p) = self.recv().await?;
            if h.typ == skywire_dmsg::mux::FrameType::Ping {
                if h.flags == Flags::SYN {
                    self.send(Header::ping(Flags::ACK, h.length), &[]).await;
                }
                continue;
            }
            return Some((h, p));
        }
    }

    /// Reads until EOF, returning every frame seen.
    pub async fn drain(&mut self) -> Vec<Header> {
        let mut v = Vec::new();
        while let Some((h, _)) = self.recv().await {
            v.push(h);
        }
        v
    }
}
