//! Byte-level behaviour against a hand-driven peer: exact frames for open/accept/close, eager
//! ACK, ping answers, hashicorp window updates, protocol violations (GoAway 1 + close), and the
//! timers (keepalive death, StreamOpenTimeout, StreamCloseTimeout) under paused tokio time.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod mux_util;

use mux_util::{Raw, pattern, session_pair, timeout};
use skywire_dmsg::mux::{AckPolicy, Config, Error, Flags, FrameType, GoAwayCode, Header};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn quiet() -> Config {
    Config {
        enable_keepalive: false,
        ..Config::default()
    }
}

#[tokio::test]
async fn open_sends_syn_delta_zero_before_data() {
    let (c, mut raw) = Raw::client_session(quiet());
    let mut st = c.open_stream().await.unwrap();
    st.write_all(b"hi").await.unwrap();
    let (h, _) = timeout(raw.recv()).await.unwrap();
    assert_eq!(hex::encode(h.encode()), "000100010000000100000000");
    let (h, p) = timeout(raw.recv()).await.unwrap();
    assert_eq!(h, Header::data(Flags::NONE, 1, 2));
    assert_eq!(p, b"hi");
    st.shutdown().await.unwrap();
    let (h, _) = timeout(raw.recv()).await.unwrap();
    assert_eq!(hex::encode(h.encode()), "000100040000000100000000");
}

#[tokio::test]
async fn ack_is_eager_on_receipt() {
    let cfg = Config {
        ack_policy: AckPolicy::OnReceipt,
        ..quiet()
    };
    let (s, mut raw) = Raw::server_session(cfg);
    raw.send(Header::window_update(Flags::SYN, 1, 0), &[]).await;
    // No accept() call yet: the ACK comes anyway.
    let (h, _) = timeout(raw.recv()).await.unwrap();
    assert_eq!(hex::encode(h.encode()), "000100020000000100000000");
    assert_eq!(s.num_streams(), 1);
}

#[tokio::test(start_paused = true)]
async fn ack_on_accept_policy_waits_for_accept() {
    let cfg = Config {
        ack_policy: AckPolicy::OnAccept,
        ..quiet()
    };
    let (s, mut raw) = Raw::server_session(cfg);
    raw.send(Header::window_update(Flags::SYN, 1, 0), &[]).await;
    assert!(
        tokio::time::timeout(Duration::from_secs(1), raw.recv())
            .await
            .is_err()
    );
    let st = timeout(s.accept()).await.unwrap();
    assert_eq!(st.id(), 1);
    let (h, _) = timeout(raw.recv()).await.unwrap();
    assert_eq!(h, Header::window_update(Flags::ACK, 1, 0));
}

#[tokio::test]
async fn ping_is_answered_with_same_id() {
    let (_s, mut raw) = Raw::server_session(quiet());
    raw.send(Header::ping(Flags::SYN, 0xdead_beef), &[]).await;
    let (h, _) = timeout(raw.recv()).await.unwrap();
    assert_eq!(h, Header::ping(Flags::ACK, 0xdead_beef));
}

#[tokio::test]
async fn data_with_syn_and_fin_flags_opens_and_closes() {
    // rust-yamux style: SYN rides on the first Data frame.
    let (s, mut raw) = Raw::server_session(quiet());
    raw.send(Header::data(Flags::SYN | Flags::FIN, 3, 5), b"hello")
        .await;
    let mut st = timeout(s.accept()).await.unwrap();
    let mut v = Vec::new();
    st.read_to_end(&mut v).await.unwrap();
    assert_eq!(v, b"hello");
}

#[tokio::test]
async fn window_update_after_half_window_consumed() {
    let (s, mut raw) = Raw::server_session(quiet());
    raw.send(Header::window_update(Flags::SYN, 1, 0), &[]).await;
    let data = pattern(9, 256 * 1024);
    raw.send(Header::data(Flags::NONE, 1, 256 * 1024), &data)
        .await;
    let mut st = timeout(s.accept()).await.unwrap();
    let (ack, _) = timeout(raw.recv()).await.unwrap();
    assert_eq!(ack.flags, Flags::ACK);
    // Reading less than half the window sends nothing; reaching half sends the consumed delta.
    let mut buf = vec![0u8; 128 * 1024 - 1];
    st.read_exact(&mut buf).await.unwrap();
    let mut one = [0u8; 1];
    st.read_exact(&mut one).await.unwrap();
    let (h, _) = timeout(raw.recv()).await.unwrap();
    assert_eq!(h, Header::window_update(Flags::NONE, 1, 128 * 1024));
}

#[tokio::test(start_paused = true)]
async fn sender_respects_peer_window() {
    let (c, mut raw) = Raw::client_session(quiet());
    let mut st = c.open_stream().await.unwrap();
    let writer = tokio::spawn(async move {
        st.write_all(&pattern(1, 600 * 1024)).await.unwrap();
        st
    });
    let (syn, _) = timeout(raw.recv()).await.unwrap();
    assert_eq!(syn.flags, Flags::SYN);
    let mut got = 0usize;
    while got < 256 * 1024 {
        let (h, p) = timeout(raw.recv()).await.unwrap();
        assert_eq!(h.typ, FrameType::Data);
        got += p.len();
    }
    assert_eq!(got, 256 * 1024);
    // Window exhausted: nothing more until we grant credit.
    assert!(
        tokio::time::timeout(Duration::from_secs(5), raw.recv())
            .await
            .is_err()
    );
    raw.send(Header::window_update(Flags::ACK, 1, 400 * 1024), &[])
        .await;
    while got < 600 * 1024 {
        let (_, p) = timeout(raw.recv()).await.unwrap();
        got += p.len();
    }
    timeout(writer).await.unwrap();
}

async fn expect_protocol_close(mut raw: Raw, s: skywire_dmsg::mux::Session) -> Error {
    let frames = timeout(raw.drain()).await;
    assert!(
        frames.contains(&Header::go_away(GoAwayCode::ProtocolError)),
        "no GoAway 1 in {frames:?}"
    );
    let reason = timeout(s.closed()).await;
    assert!(s.is_closed());
    reason
}

#[tokio::test]
async fn bad_version_is_protocol_error() {
    let (s, mut raw) = Raw::server_session(quiet());
    raw.send_raw(&hex::decode("010100010000000100000000").unwrap())
        .await;
    let e = expect_protocol_close(raw, s).await;
    assert!(matches!(e, Error::Frame(_)), "{e:?}");
}

#[tokio::test]
async fn garbage_is_protocol_error() {
    let (s, mut raw) = Raw::server_session(quiet());
    raw.send_raw(&pattern(5, 100).iter().map(|b| b | 0x80).collect::<Vec<_>>())
        .await;
    let e = expect_protocol_close(raw, s).await;
    assert!(matches!(e, Error::Frame(_)), "{e:?}");
}

#[tokio::test]
async fn unknown_type_is_protocol_error() {
    let (s, mut raw) = Raw::server_session(quiet());
    raw.send_raw(&hex::decode("000700000000000000000000").unwrap())
        .await;
    let e = expect_protocol_close(raw, s).await;
    assert!(matches!(e, Error::Frame(_)), "{e:?}");
}

#[tokio::test]
async fn data_on_never_opened_stream_is_protocol_error() {
    let (s, mut raw) = Raw::server_session(quiet());
    raw.send(Header::data(Flags::NONE, 5, 3), b"abc").await;
    let e = expect_protocol_close(raw, s).await;
    assert!(matches!(e, Error::UnknownStream(5)), "{e:?}");
}

#[tokio::test]
async fn data_on_closed_stream_is_discarded() {
    let (s, mut raw) = Raw::server_session(quiet());
    raw.send(Header::window_update(Flags::SYN, 1, 0), &[]).await;
    let mut st = timeout(s.accept()).await.unwrap();
    st.reset();
    drop(st);
    raw.send(Header::data(Flags::NONE, 1, 3), b"abc").await;
    raw.send(Header::ping(Flags::SYN, 1), &[]).await;
    loop {
        let (h, _) = timeout(raw.recv()).await.unwrap();
        if h.typ == FrameType::Ping {
            assert_eq!(h, Header::ping(Flags::ACK, 1));
            break;
        }
    }
    assert!(!s.is_closed());
}

#[tokio::test]
async fn window_overflow_is_protocol_error() {
    let (s, mut raw) = Raw::server_session(quiet());
    raw.send(Header::window_update(Flags::SYN, 1, 0), &[]).await;
    raw.send(
        Header::data(Flags::NONE, 1, 256 * 1024),
        &pattern(2, 256 * 1024),
    )
    .await;
    raw.send(Header::data(Flags::NONE, 1, 1), b"!").await;
    let e = expect_protocol_close(raw, s).await;
    assert!(
        matches!(
            e,
            Error::WindowExceeded {
                stream: 1,
                len: 1,
                window: 0
            }
        ),
        "{e:?}"
    );
}

#[tokio::test]
async fn oversized_data_frame_is_protocol_error() {
    let (s, mut raw) = Raw::server_session(quiet());
    raw.send(Header::window_update(Flags::SYN, 1, 0), &[]).await;
    raw.send_raw(&Header::data(Flags::NONE, 1, 256 * 1024 + 1).encode())
        .await;
    let e = expect_protocol_close(raw, s).await;
    assert!(matches!(e, Error::Frame(_)), "{e:?}");
}

#[tokio::test]
async fn syn_with_our_parity_is_protocol_error() {
    let (s, mut raw) = Raw::server_session(quiet());
    raw.send(Header::window_update(Flags::SYN, 2, 0), &[]).await;
    let e = expect_protocol_close(raw, s).await;
    assert!(matches!(e, Error::InvalidStreamId(2)), "{e:?}");
}

#[tokio::test]
async fn violation_leaves_other_sessions_alone() {
    let (good_c, good_s) = session_pair(Config::default()).await;
    let (bad, mut raw) = Raw::server_session(quiet());
    raw.send_raw(b"\xffgarbage-garbage").await;
    expect_protocol_close(raw, bad).await;
    let mut a = good_c.open_stream().await.unwrap();
    a.write_all(b"still fine").await.unwrap();
    a.shutdown().await.unwrap();
    let mut b = timeout(good_s.accept()).await.unwrap();
    let mut v = Vec::new();
    b.read_to_end(&mut v).await.unwrap();
    assert_eq!(v, b"still fine");
}

#[tokio::test]
async fn peer_goaway_error_closes_session() {
    let (s, mut raw) = Raw::server_session(quiet());
    raw.send(Header::go_away(GoAwayCode::InternalError), &[])
        .await;
    let e = timeout(s.closed()).await;
    assert!(matches!(e, Error::PeerGoAway(2)), "{e:?}");
    assert!(
        timeout(raw.drain())
            .await
            .iter()
            .all(|h| h.typ != FrameType::GoAway)
    );
}

#[tokio::test(start_paused = true)]
async fn keepalive_detects_dead_peer() {
    let (c, mut raw) = Raw::client_session(Config::default());
    // The peer reads but never answers.
    let reader = tokio::spawn(async move {
        let mut pings = Vec::new();
        while let Some((h, _)) = raw.recv().await {
            pings.push(h);
        }
        pings
    });
    let e = tokio::time::timeout(Duration::from_secs(600), c.closed())
        .await
        .unwrap();
    assert!(matches!(e, Error::KeepAliveTimeout), "{e:?}");
    let frames = timeout(reader).await.unwrap();
    assert_eq!(frames.first(), Some(&Header::ping(Flags::SYN, 0)));
}

#[tokio::test(start_paused = true)]
async fn keepalive_answered_keeps_session() {
    let (c, mut raw) = Raw::client_session(Config::default());
    tokio::spawn(async move { while raw.recv_no_ping().await.is_some() {} });
    tokio::time::sleep(Duration::from_secs(300)).await;
    assert!(!c.is_closed());
    timeout(c.ping()).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn stream_open_timeout_closes_session() {
    let (c, mut raw) = Raw::client_session(quiet());
    let _st = c.open_stream().await.unwrap();
    tokio::spawn(async move { while raw.recv().await.is_some() {} });
    let e = tokio::time::timeout(Duration::from_secs(600), c.closed())
        .await
        .unwrap();
    assert!(matches!(e, Error::StreamOpenTimeout(1)), "{e:?}");
}

#[tokio::test(start_paused = true)]
async fn acked_stream_does_not_time_out() {
    let (c, mut raw) = Raw::client_session(Config::tuned_2026());
    let _st = c.open_stream().await.unwrap();
    let (syn, _) = timeout(raw.recv()).await.unwrap();
    raw.send(Header::window_update(Flags::ACK, syn.stream_id, 0), &[])
        .await;
    tokio::spawn(async move { while raw.recv_no_ping().await.is_some() {} });
    tokio::time::sleep(Duration::from_secs(120)).await;
    assert!(!c.is_closed());
}

#[tokio::test(start_paused = true)]
async fn stream_close_timeout_resets_half_closed_stream() {
    let (c, mut raw) = Raw::client_session(quiet());
    let mut st = c.open_stream().await.unwrap();
    let (syn, _) = timeout(raw.recv()).await.unwrap();
    raw.send(Header::window_update(Flags::ACK, syn.stream_id, 0), &[])
        .await;
    st.shutdown().await.unwrap();
    let (fin, _) = timeout(raw.recv()).await.unwrap();
    assert_eq!(fin, Header::window_update(Flags::FIN, 1, 0));
    // The peer never sends FIN: after StreamCloseTimeout (5 min) the stream is reset.
    let (rst, _) = tokio::time::timeout(Duration::from_secs(600), raw.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rst, Header::window_update(Flags::RST, 1, 0));
    let mut buf = [0u8; 1];
    assert_eq!(
        st.read(&mut buf).await.unwrap_err().kind(),
        std::io::ErrorKind::ConnectionReset
    );
    assert_eq!(c.num_streams(), 0);
    assert!(!c.is_closed());
}

#[tokio::test]
async fn close_sends_goaway_normal() {
    let (c, mut raw) = Raw::client_session(quiet());
    c.close().await;
    let frames = timeout(raw.drain()).await;
    assert_eq!(frames, vec![Header::go_away(GoAwayCode::Normal)]);
}
