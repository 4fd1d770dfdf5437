//! Session behaviour between two of our sessions over TCP loopback: open/accept both ways,
//! many concurrent streams, a big windowed transfer, half-close, FIN/RST, ping, backlog
//! overflow, GoAway, close detection.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod mux_util;

use mux_util::{checksum, pattern, session_pair, timeout};
use skywire_dmsg::mux::{Config, Error, Session, Stream};
use std::io::ErrorKind;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn echo_server(sess: Session) {
    while let Some(mut s) = sess.accept().await {
        tokio::spawn(async move {
            let mut buf = vec![0u8; 64 * 1024];
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
        });
    }
}

/// Writes `data`, half-closes, reads everything back; returns what came back.
async fn echo_roundtrip(mut s: Stream, data: Vec<u8>) -> Vec<u8> {
    let (mut r, mut w) = tokio::io::split(&mut s);
    let writer = async {
        w.write_all(&data).await.unwrap();
        w.shutdown().await.unwrap();
    };
    let reader = async {
        let mut back = Vec::with_capacity(data.len());
        r.read_to_end(&mut back).await.unwrap();
        back
    };
    let ((), back) = tokio::join!(writer, reader);
    back
}

#[tokio::test]
async fn open_accept_both_directions() {
    let (c, s) = session_pair(Config::default()).await;
    // client -> server
    let mut a = c.open_stream().await.unwrap();
    assert_eq!(a.id(), 1);
    a.write_all(b"hello from client").await.unwrap();
    let mut b = timeout(s.accept()).await.unwrap();
    assert_eq!(b.id(), 1);
    let mut buf = [0u8; 17];
    b.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"hello from client");
    // server -> client
    let mut x = s.open_stream().await.unwrap();
    assert_eq!(x.id(), 2);
    x.write_all(b"hi from server").await.unwrap();
    let mut y = timeout(c.accept()).await.unwrap();
    assert_eq!(y.id(), 2);
    let mut buf = [0u8; 14];
    y.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"hi from server");
    assert_eq!(c.num_streams(), 2);
    // full close both ways removes the streams
    for st in [&mut a, &mut b, &mut x, &mut y] {
        st.shutdown().await.unwrap();
    }
    for st in [&mut a, &mut b, &mut x, &mut y] {
        let mut rest = Vec::new();
        st.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());
    }
    assert_eq!(c.num_streams(), 0);
    assert_eq!(s.num_streams(), 0);
    let next = c.open_stream().await.unwrap();
    assert_eq!(next.id(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_streams_checksummed_both_ways() {
    let (c, s) = session_pair(Config::default()).await;
    tokio::spawn(echo_server(s.clone()));
    tokio::spawn(echo_server(c.clone()));
    let mut tasks = Vec::new();
    for i in 0..200u64 {
        let opener = if i % 2 == 0 { c.clone() } else { s.clone() };
        tasks.push(tokio::spawn(async move {
            let len = 1000 + (i as usize * 977) % 40_000;
            let data = pattern(i, len);
            let st = opener.open_stream().await.unwrap();
            let back = echo_roundtrip(st, data.clone()).await;
            assert_eq!(back.len(), data.len(), "stream {i}");
            assert_eq!(checksum(&back), checksum(&data), "stream {i}");
        }));
    }
    for t in tasks {
        timeout(t).await.unwrap();
    }
    assert!(!c.is_closed() && !s.is_closed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn big_transfer_one_stream_windowed() {
    const LEN: usize = 64 << 20;
    let (c, s) = session_pair(Config::default()).await;
    let recv = tokio::spawn(async move {
        let mut st = s.accept().await.unwrap();
        let mut buf = vec![0u8; 100_000];
        let mut total = 0usize;
        let mut h = 0xcbf2_9ce4_8422_2325u64;
        loop {
            let n = st.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            for b in &buf[..n] {
                h = (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
            }
            total += n;
        }
        (total, h)
    });
    let data = pattern(7, LEN);
    let mut st = c.open_stream().await.unwrap();
    for chunk in data.chunks(1 << 20) {
        st.write_all(chunk).await.unwrap();
    }
    st.shutdown().await.unwrap();
    let (total, h) = timeout(recv).await.unwrap();
    assert_eq!(total, LEN);
    assert_eq!(h, checksum(&data));
}

#[tokio::test]
async fn half_close_peer_still_sends() {
    let (c, s) = session_pair(Config::default()).await;
    let mut a = c.open_stream().await.unwrap();
    a.write_all(b"request").await.unwrap();
    a.shutdown().await.unwrap();
    // writing after our FIN fails
    let err = a.write_all(b"x").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BrokenPipe);
    let mut b = timeout(s.accept()).await.unwrap();
    let mut req = Vec::new();
    b.read_to_end(&mut req).await.unwrap(); // EOF after the client's FIN
    assert_eq!(req, b"request");
    // the server still answers on its half
    let answer = pattern(1, 300_000);
    let expected = answer.clone();
    let writer = tokio::spawn(async move {
        b.write_all(&answer).await.unwrap();
        b.shutdown().await.unwrap();
    });
    let mut got = Vec::new();
    timeout(a.read_to_end(&mut got)).await.unwrap();
    timeout(writer).await.unwrap();
    let answer = expected;
    assert_eq!(got, answer);
}

#[tokio::test]
async fn reset_fails_reads_and_writes() {
    let (c, s) = session_pair(Config::default()).await;
    let mut a = c.open_stream().await.unwrap();
    a.write_all(b"x").await.unwrap();
    let mut b = timeout(s.accept()).await.unwrap();
    b.reset();
    let mut buf = [0u8; 8];
    let err = timeout(async {
        loop {
            match a.read(&mut buf).await {
                Ok(_) => continue,
                Err(e) => break e,
            }
        }
    })
    .await;
    assert_eq!(err.kind(), ErrorKind::ConnectionReset);
    let err = a.write_all(b"more").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionReset);
    assert_eq!(
        b.read(&mut buf).await.unwrap_err().kind(),
        ErrorKind::ConnectionReset
    );
    // the session is unaffected
    let mut z = c.open_stream().await.unwrap();
    z.write_all(b"ok").await.unwrap();
    let mut z2 = timeout(s.accept()).await.unwrap();
    let mut two = [0u8; 2];
    z2.read_exact(&mut two).await.unwrap();
    assert_eq!(&two, b"ok");
}

#[tokio::test]
async fn drop_sends_fin_or_rst() {
    let (c, s) = session_pair(Config::default()).await;
    // drop with nothing unread -> FIN -> peer reads EOF
    let a = c.open_stream().await.unwrap();
    drop(a);
    let mut b = timeout(s.accept()).await.unwrap();
    let mut v = Vec::new();
    timeout(b.read_to_end(&mut v)).await.unwrap();
    assert!(v.is_empty());
    // drop with unread data -> RST -> peer writes fail
    let mut a = c.open_stream().await.unwrap();
    a.write_all(b"ping").await.unwrap();
    let mut b = timeout(s.accept()).await.unwrap();
    let mut four = [0u8; 4];
    b.read_exact(&mut four).await.unwrap();
    b.write_all(b"unread").await.unwrap();
    // wait until the data is buffered at `a` (read 1 byte, leave the rest unread)
    let mut one = [0u8; 1];
    a.read_exact(&mut one).await.unwrap();
    drop(a);
    let err = timeout(async {
        loop {
            if let Err(e) = b.write_all(b"more").await {
                break e;
            }
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert_eq!(err.kind(), ErrorKind::ConnectionReset);
}

#[tokio::test]
async fn ping_rtt() {
    let (c, s) = session_pair(Config::default()).await;
    for _ in 0..3 {
        let rtt = timeout(c.ping()).await.unwrap();
        assert!(rtt < mux_util::WAIT);
        timeout(s.ping()).await.unwrap();
    }
}

#[tokio::test]
async fn accept_backlog_overflow_resets() {
    // With ACK-on-receipt the opener's limit of unacknowledged SYNs does not protect the
    // backlog, so the third stream overflows it.
    let cfg = Config {
        accept_backlog: 2,
        ack_policy: skywire_dmsg::mux::AckPolicy::OnReceipt,
        ..Config::default()
    };
    let (c, s) = session_pair(cfg).await;
    let mut streams = Vec::new();
    for _ in 0..3 {
        let mut st = c.open_stream().await.unwrap();
        st.write_all(b"x").await.unwrap();
        streams.push(st);
    }
    // The third SYN finds the backlog full and is answered with RST.
    let mut third = streams.pop().unwrap();
    let mut buf = [0u8; 1];
    let err = timeout(third.read(&mut buf)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionReset);
    // The first two are delivered.
    for mut st in streams {
        let mut acc = timeout(s.accept()).await.unwrap();
        acc.read_exact(&mut buf).await.unwrap();
        acc.write_all(b"y").await.unwrap();
        st.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"y");
    }
}

#[tokio::test]
async fn go_away_refuses_new_streams() {
    let (c, s) = session_pair(Config::default()).await;
    let mut keep = c.open_stream().await.unwrap();
    keep.write_all(b"a").await.unwrap();
    let mut keep_s = timeout(s.accept()).await.unwrap();
    s.go_away();
    timeout(async {
        while !c.remote_goaway() {
            c.ping().await.unwrap();
        }
    })
    .await;
    assert!(matches!(c.open_stream().await, Err(Error::RemoteGoAway)));
    // existing streams keep working
    keep_s.write_all(b"b").await.unwrap();
    let mut one = [0u8; 1];
    keep.read_exact(&mut one).await.unwrap();
    assert_eq!(&one, b"b");
    // the server may still open streams itself
    let _st = s.open_stream().await.unwrap();
}

#[tokio::test]
async fn close_is_detected_by_both_ends() {
    let (c, s) = session_pair(Config::default()).await;
    let mut a = c.open_stream().await.unwrap();
    a.write_all(b"x").await.unwrap();
    let mut b = timeout(s.accept()).await.unwrap();
    c.close().await;
    assert!(c.is_closed());
    assert!(matches!(c.closed().await, Error::SessionClosed));
    let reason = timeout(s.closed()).await;
    assert!(matches!(reason, Error::ConnectionClosed), "{reason:?}");
    assert!(timeout(s.accept()).await.is_none());
    assert!(s.open_stream().await.is_err());
    let mut buf = [0u8; 4];
    assert_eq!(b.read(&mut buf).await.unwrap(), 1);
    assert_eq!(
        b.read(&mut buf).await.unwrap_err().kind(),
        ErrorKind::ConnectionAborted
    );
    assert!(a.write_all(b"y").await.is_err());
}

#[tokio::test]
async fn dropping_every_handle_closes_the_session() {
    let (c, s) = session_pair(Config::default()).await;
    let st = c.open_stream().await.unwrap();
    drop(c);
    // a live stream keeps the session open
    timeout(s.ping()).await.unwrap();
    drop(st);
    let reason = timeout(s.closed()).await;
    assert!(matches!(reason, Error::ConnectionClosed), "{reason:?}");
}

#[tokio::test]
async fn tuned_config_interoperates_with_default() {
    let (c, s) = mux_util::tcp_pair().await;
    let c = Session::client(c, Config::tuned_2026());
    let s = Session::server(s, Config::default());
    tokio::spawn(echo_server(s.clone()));
    let data = pattern(3, 1 << 20);
    let back = echo_roundtrip(c.open_stream().await.unwrap(), data.clone()).await;
    assert_eq!(back, data);
}
