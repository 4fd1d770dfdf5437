//! Interoperability with libp2p rust-yamux 0.14 (wire-compatible with hashicorp/yamux) as an
//! oracle: our client against their server and their client against our server, 1 MiB echoes
//! and many small messages, streams opened from both sides. rust-yamux ACKs lazily (with its
//! first write), so every test has the oracle write before our StreamOpenTimeout matters.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod mux_util;

use futures::future::poll_fn;
use mux_util::{pattern, tcp_pair, timeout};
use skywire_dmsg::mux::{Config, Session};
use std::task::Poll;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio_util::compat::{Compat, FuturesAsyncReadCompatExt, TokioAsyncReadCompatExt};

type OracleStream = Compat<yamux::Stream>;

/// A task that owns a rust-yamux `Connection`, opening streams on request and forwarding
/// inbound ones.
struct Oracle {
    open_tx: mpsc::UnboundedSender<oneshot::Sender<OracleStream>>,
    inbound: mpsc::UnboundedReceiver<OracleStream>,
}

impl Oracle {
    fn spawn(io: TcpStream, mode: yamux::Mode) -> Self {
        let (open_tx, mut open_rx) = mpsc::unbounded_channel::<oneshot::Sender<OracleStream>>();
        let (in_tx, inbound) = mpsc::unbounded_channel();
        let mut conn = yamux::Connection::new(io.compat(), yamux::Config::default(), mode);
        tokio::spawn(async move {
            let mut pending = std::collections::VecDeque::new();
            poll_fn(|cx| {
                while let Poll::Ready(Some(tx)) = open_rx.poll_recv(cx) {
                    pending.push_back(tx);
                }
                while !pending.is_empty() {
                    match conn.poll_new_outbound(cx) {
                        Poll::Ready(Ok(s)) => {
                            if let Some(tx) = pending.pop_front() {
                                let _ = tx.send(s.compat());
                            }
                        }
                        Poll::Ready(Err(_)) => return Poll::Ready(()),
                        Poll::Pending => break,
                    }
                }
                loop {
                    match conn.poll_next_inbound(cx) {
                        Poll::Ready(Some(Ok(s))) => {
                            let _ = in_tx.send(s.compat());
                        }
                        Poll::Ready(Some(Err(_)) | None) => return Poll::Ready(()),
                        Poll::Pending => return Poll::Pending,
                    }
                }
            })
            .await;
        });
        Self { open_tx, inbound }
    }

    async fn open(&self) -> OracleStream {
        let (tx, rx) = oneshot::channel();
        self.open_tx.send(tx).unwrap();
        timeout(rx).await.unwrap()
    }

    async fn accept(&mut self) -> OracleStream {
        timeout(self.inbound.recv()).await.unwrap()
    }
}

/// Echo everything until EOF, then close.
async fn echo<S: AsyncRead + AsyncWrite + Unpin>(mut s: S) {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if s.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        }
    }
    let _ = s.shutdown().await;
}

/// Sends `data` in `chunk`-sized writes while reading the echo; checks it byte for byte.
async fn echo_exact<S: AsyncRead + AsyncWrite + Unpin>(s: S, data: Vec<u8>, chunk: usize) {
    let (mut r, mut w) = tokio::io::split(s);
    let expected = data.clone();
    let writer = async move {
        for c in data.chunks(chunk) {
            w.write_all(c).await.unwrap();
        }
        w
    };
    let reader = async move {
        let mut back = vec![0u8; expected.len()];
        r.read_exact(&mut back).await.unwrap();
        assert_eq!(back, expected, "echo mismatch");
    };
    timeout(async { tokio::join!(writer, reader) }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_client_their_server() {
    let (c, s) = tcp_pair().await;
    let ours = Session::client(c, Config::default());
    let mut theirs = Oracle::spawn(s, yamux::Mode::Server);
    // our stream -> their echo
    let st = ours.open_stream().await.unwrap();
    let accept = tokio::spawn(async move {
        let s1 = theirs.accept().await;
        tokio::spawn(echo(s1));
        let s2 = theirs.accept().await;
        tokio::spawn(echo(s2));
        theirs
    });
    echo_exact(st, pattern(1, 1 << 20), 50_000).await;
    let st2 = ours.open_stream().await.unwrap();
    echo_exact(st2, pattern(2, 20_000), 10).await; // many small messages
    let theirs = timeout(accept).await.unwrap();
    // their stream -> our echo
    let ours2 = ours.clone();
    tokio::spawn(async move {
        while let Some(st) = ours2.accept().await {
            tokio::spawn(echo(st));
        }
    });
    let t = theirs.open().await;
    echo_exact(t, pattern(3, 1 << 20), 64 * 1024).await;
    let t = theirs.open().await;
    echo_exact(t, pattern(4, 5_000), 7).await;
    timeout(ours.ping()).await.unwrap();
    assert!(!ours.is_closed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn their_client_our_server() {
    let (c, s) = tcp_pair().await;
    let mut theirs = Oracle::spawn(c, yamux::Mode::Client);
    let ours = Session::server(s, Config::default());
    let ours2 = ours.clone();
    tokio::spawn(async move {
        while let Some(st) = ours2.accept().await {
            tokio::spawn(echo(st));
        }
    });
    // their streams -> our echo, several concurrently
    let mut tasks = Vec::new();
    for i in 0..8u64 {
        let t = theirs.open().await;
        tasks.push(tokio::spawn(async move {
            let (len, chunk) = if i % 2 == 0 {
                (1 << 20, 30_000)
            } else {
                (3_000, 3)
            };
            echo_exact(t, pattern(10 + i, len), chunk).await;
        }));
    }
    for t in tasks {
        timeout(t).await.unwrap();
    }
    // our streams -> their echo
    let acc = tokio::spawn(async move {
        for _ in 0..2 {
            let s = theirs.accept().await;
            tokio::spawn(echo(s));
        }
        theirs
    });
    let st = ours.open_stream().await.unwrap();
    echo_exact(st, pattern(20, 1 << 20), 100_000).await;
    let st = ours.open_stream().await.unwrap();
    echo_exact(st, pattern(21, 2_000), 1).await;
    let _theirs = timeout(acc).await.unwrap();
    timeout(ours.ping()).await.unwrap();
    assert!(!ours.is_closed());
}

#[tokio::test]
async fn half_close_with_their_server() {
    let (c, s) = tcp_pair().await;
    let ours = Session::client(c, Config::default());
    let mut theirs = Oracle::spawn(s, yamux::Mode::Server);
    let mut st = ours.open_stream().await.unwrap();
    st.write_all(b"question").await.unwrap();
    st.shutdown().await.unwrap();
    let mut t = theirs.accept().await;
    let mut q = Vec::new();
    timeout(t.read_to_end(&mut q)).await.unwrap();
    assert_eq!(q, b"question");
    t.write_all(b"answer after your FIN").await.unwrap();
    t.shutdown().await.unwrap();
    let mut a = Vec::new();
    timeout(st.read_to_end(&mut a)).await.unwrap();
    assert_eq!(a, b"answer after your FIN");
}
