//! The pty host's decoders: the URI request mux (`uri::decode_request`, `parse_uri`, `route`,
//! `parse_proxy_query`) and Go net/rpc over gob in both directions (`RpcServerCodec` reading
//! requests and skipping or decoding their bodies, `RpcClientCodec` reading responses to calls
//! it made).
//!
//! Layout: the first byte picks the chunk size the codecs are fed with; the rest is the stream.
//!
//! Properties checked besides "never panics":
//! * a decoded URI request re-encodes to the bytes it was read from;
//! * once a codec reports an error it keeps failing (no silent resynchronisation).
#![no_main]

use libfuzzer_sys::fuzz_target;
use skywire_fuzz::chunk_size;
use skywire_pty::rpc::{RpcClientCodec, RpcServerCodec};
use skywire_pty::types::{CommandExecReq, CommandExecResult, CommandReq};
use skywire_pty::uri;

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, rest)) = data.split_first() else {
        return;
    };
    let chunk = chunk_size(ctl).min(rest.len().max(1));

    // URI request mux.
    if let Ok(Some((text, used))) = uri::decode_request(rest) {
        let again = uri::encode_request(&text).expect("decoded URI re-encodes");
        assert_eq!(&again[..], &rest[..used], "URI request round trip");
        let _ = uri::parse_uri(&text);
        let _ = uri::route(&text, uri::REMOTE_ENDPOINTS);
        let _ = uri::route(&text, uri::CONTROL_ENDPOINTS);
        if let Some((_, q)) = text.split_once('?') {
            let _ = uri::parse_proxy_query(q);
        }
    }

    // Server side: requests and bodies, alternating typed decoding and skipping.
    let mut server = RpcServerCodec::new();
    let mut failed = false;
    let mut n = 0usize;
    for piece in rest.chunks(chunk.max(1)) {
        server.feed(piece);
        loop {
            match server.poll_request() {
                Ok(Some(_req)) => {
                    n += 1;
                    let body = match n % 3 {
                        0 => server.poll_skip_body().map(|o| o.map(|_| ())),
                        1 => server
                            .poll_body::<CommandReq>()
                            .map(|o| o.map(|_| ())),
                        _ => server
                            .poll_body::<CommandExecReq>()
                            .map(|o| o.map(|_| ())),
                    };
                    match body {
                        Ok(Some(())) => {}
                        Ok(None) => break,
                        Err(_) => {
                            failed = true;
                            break;
                        }
                    }
                }
                Ok(None) => break,
                Err(_) => {
                    failed = true;
                    break;
                }
            }
        }
        if failed {
            break;
        }
    }
    if failed {
        server.feed(b"\x00");
        assert!(server.poll_request().is_err(), "server codec recovered after an error");
    }

    // Client side: responses to two outstanding calls.
    let mut client = RpcClientCodec::new();
    let mut out = Vec::new();
    let _ = client.encode_call::<CommandExecReq, CommandExecResult>(
        "pty.Exec",
        &CommandExecReq::default(),
        &mut out,
    );
    let _ = client.encode_call::<CommandReq, ()>("pty.Start", &CommandReq::default(), &mut out);
    for piece in rest.chunks(chunk.max(1)) {
        client.feed(piece);
        loop {
            match client.poll_completed() {
                Ok(Some(done)) => {
                    let _ = done.into_reply::<CommandExecResult>();
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
});
