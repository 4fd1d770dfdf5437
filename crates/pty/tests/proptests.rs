//! Property tests: arbitrary bytes never panic the codecs (URI request parsing and routing, the
//! server and client `net/rpc` codecs, with and without a valid prefix), and valid call streams
//! decode to the same calls however they are split.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use skywire_pty::rpc::{RpcClientCodec, RpcServerCodec};
use skywire_pty::types::{CommandExecReq, CommandExecResult, CommandReq, WinSize};
use skywire_pty::uri;

/// Drains a server codec, trying typed decoding for some methods and skipping the rest.
fn drain_server(srv: &mut RpcServerCodec) {
    for _ in 0..10_000 {
        let h = match srv.poll_request() {
            Ok(Some(h)) => h,
            Ok(None) | Err(_) => return,
        };
        let r = match h.service_method.as_str() {
            "pty.Start" => srv.poll_body::<CommandReq>().map(|o| o.map(|_| ())),
            "pty.Exec" => srv.poll_body::<CommandExecReq>().map(|o| o.map(|_| ())),
            "pty.Read" => srv.poll_body::<i64>().map(|o| o.map(|_| ())),
            _ => srv.poll_skip_body(),
        };
        match r {
            Ok(Some(())) => {}
            Ok(None) | Err(_) => return,
        }
    }
}

fn drain_client(cli: &mut RpcClientCodec) {
    for _ in 0..10_000 {
        match cli.poll_completed() {
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => return,
        }
    }
}

/// A valid client stream prefix: one call of each common shape.
fn valid_requests() -> Vec<u8> {
    let mut cli = RpcClientCodec::new();
    let mut out = Vec::new();
    cli.encode_call::<_, ()>(
        "pty.Start",
        &CommandReq {
            name: "/bin/sh".into(),
            size: Some(WinSize::from_cols_rows(80, 24)),
            ..CommandReq::default()
        },
        &mut out,
    )
    .unwrap();
    cli.encode_call::<_, Vec<u8>>("pty.Read", &4096i64, &mut out)
        .unwrap();
    out
}

fn valid_replies() -> (RpcClientCodec, Vec<u8>) {
    let mut cli = RpcClientCodec::new();
    let mut sink = Vec::new();
    cli.encode_call::<_, CommandExecResult>("pty.Exec", &CommandExecReq::default(), &mut sink)
        .unwrap();
    cli.encode_call::<_, Vec<u8>>("pty.Read", &1i64, &mut sink)
        .unwrap();
    cli.encode_call::<_, i64>("pty.Write", &vec![1u8], &mut sink)
        .unwrap();
    let mut srv = RpcServerCodec::new();
    let mut out = Vec::new();
    srv.encode_reply("pty.Read", 1, &b"ab".to_vec(), &mut out)
        .unwrap();
    srv.encode_error("pty.Write", 2, "no active pty session", &mut out)
        .unwrap();
    (cli, out)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn uri_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        if let Ok(Some((u, n))) = uri::decode_request(&bytes) {
            prop_assert_eq!(n, 1 + u.len());
            let _ = uri::route(&u, uri::CONTROL_ENDPOINTS);
            let _ = uri::parse_proxy_query(&u);
            prop_assert_eq!(uri::encode_request(&u).unwrap(), bytes[..n].to_vec());
        }
        let s = String::from_utf8_lossy(&bytes);
        let _ = uri::route(&s, uri::REMOTE_ENDPOINTS);
        let _ = uri::parse_proxy_query(&s);
    }

    #[test]
    fn server_codec_never_panics(
        prefix in any::<bool>(),
        bytes in proptest::collection::vec(any::<u8>(), 0..600),
        split in 0usize..600,
    ) {
        let mut input = if prefix { valid_requests() } else { Vec::new() };
        input.extend_from_slice(&bytes);
        let split = split.min(input.len());
        let mut srv = RpcServerCodec::new();
        srv.feed(&input[..split]);
        drain_server(&mut srv);
        srv.feed(&input[split..]);
        drain_server(&mut srv);
    }

    #[test]
    fn client_codec_never_panics(
        prefix in any::<bool>(),
        bytes in proptest::collection::vec(any::<u8>(), 0..600),
    ) {
        let (mut cli, valid) = valid_replies();
        if prefix {
            cli.feed(&valid);
        }
        cli.feed(&bytes);
        drain_client(&mut cli);
    }

    #[test]
    fn mutated_valid_stream_never_panics(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let mut input = valid_requests();
        for (i, b) in flips {
            let i = i.index(input.len());
            input[i] = b;
        }
        let mut srv = RpcServerCodec::new();
        srv.feed(&input);
        drain_server(&mut srv);
        let (mut cli, mut replies) = valid_replies();
        let n = replies.len();
        replies[n / 2] ^= 0x5a;
        cli.feed(&replies);
        drain_client(&mut cli);
    }

    #[test]
    fn calls_survive_any_split(
        writes in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..100), 1..20),
        names in proptest::collection::vec("[a-z/]{0,12}", 1..5),
        chunk in 1usize..64,
    ) {
        let mut cli = RpcClientCodec::new();
        let mut wire = Vec::new();
        for w in &writes {
            cli.encode_call::<_, i64>("pty.Write", w, &mut wire).unwrap();
        }
        let req = CommandReq { name: names.join(" "), arg: names.clone(), ..CommandReq::default() };
        cli.encode_call::<_, ()>("pty.Start", &req, &mut wire).unwrap();
        let mut srv = RpcServerCodec::new();
        let mut got_writes = Vec::new();
        let mut got_start = None;
        for piece in wire.chunks(chunk) {
            srv.feed(piece);
            while let Some(h) = srv.poll_request().unwrap() {
                if h.service_method == "pty.Write" {
                    match srv.poll_body::<Vec<u8>>().unwrap() {
                        Some(b) => got_writes.push(b.unwrap()),
                        None => break,
                    }
                } else {
                    match srv.poll_body::<CommandReq>().unwrap() {
                        Some(b) => got_start = Some(b.unwrap()),
                        None => break,
                    }
                }
            }
        }
        prop_assert_eq!(got_writes, writes);
        prop_assert_eq!(got_start, Some(req));
        prop_assert_eq!(srv.buffered(), 0);
    }
}
