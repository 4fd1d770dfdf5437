//! Frame codec: live-trace headers from the reference binaries, encodings, and property tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::BytesMut;
use proptest::prelude::*;
use skywire_dmsg::mux::{Flags, FrameDecoder, FrameError, FrameType, GoAwayCode, Header};

fn vectors_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/spec/vectors/live_trace.json")
}

#[test]
fn live_trace_headers_decode() {
    let text =
        std::fs::read_to_string(vectors_path()).expect("shared/spec/vectors/live_trace.json");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut count = 0;
    for conn in v["connections"].as_array().unwrap() {
        for dir in ["c2s", "s2c"] {
            for f in conn["parsed"][dir].as_array().unwrap() {
                let Some(hexh) = f["yamux_header"].as_str() else {
                    continue;
                };
                let raw: [u8; 12] = hex::decode(hexh).unwrap().try_into().unwrap();
                let h = Header::decode(&raw).unwrap();
                let typ = match h.typ {
                    FrameType::Data => "Data",
                    FrameType::WindowUpdate => "WindowUpdate",
                    FrameType::Ping => "Ping",
                    FrameType::GoAway => "GoAway",
                };
                assert_eq!(typ, f["type"].as_str().unwrap(), "{hexh}");
                assert_eq!(h.flags.to_string(), f["flags"].as_str().unwrap(), "{hexh}");
                assert_eq!(
                    u64::from(h.stream_id),
                    f["stream"].as_u64().unwrap(),
                    "{hexh}"
                );
                assert_eq!(u64::from(h.length), f["length"].as_u64().unwrap(), "{hexh}");
                assert_eq!(h.encode(), raw, "re-encoding {hexh}");
                // The whole frame also goes through the streaming decoder.
                let mut buf = BytesMut::from(&raw[..]);
                buf.extend_from_slice(&vec![0u8; h.payload_len()]);
                let frame = FrameDecoder::new(256 * 1024)
                    .decode(&mut buf)
                    .unwrap()
                    .unwrap();
                assert_eq!(frame.header, h);
                assert_eq!(frame.payload.len(), h.payload_len());
                assert!(buf.is_empty());
                count += 1;
            }
        }
    }
    assert!(count >= 20, "only {count} yamux headers in the trace");
}

#[test]
fn spec_encodings() {
    let cases: [(Header, &str); 7] = [
        (
            Header::window_update(Flags::SYN, 1, 0),
            "000100010000000100000000",
        ),
        (
            Header::window_update(Flags::ACK, 2, 0),
            "000100020000000200000000",
        ),
        (
            Header::window_update(Flags::FIN, 3, 0),
            "000100040000000300000000",
        ),
        (
            Header::window_update(Flags::RST, 3, 0),
            "000100080000000300000000",
        ),
        (Header::ping(Flags::SYN, 5), "000200010000000000000005"),
        (
            Header::go_away(GoAwayCode::ProtocolError),
            "000300000000000000000001",
        ),
        (
            Header::data(Flags::NONE, 2, 0x129),
            "000000000000000200000129",
        ),
    ];
    for (h, hexs) in cases {
        assert_eq!(hex::encode(h.encode()), hexs);
    }
}

#[test]
fn decoder_errors() {
    let mut d = FrameDecoder::new(256 * 1024);
    let mut b = BytesMut::from(&hex::decode("010100010000000100000000").unwrap()[..]);
    assert_eq!(d.decode(&mut b), Err(FrameError::BadVersion(1)));
    let mut b = BytesMut::from(&hex::decode("000400010000000100000000").unwrap()[..]);
    assert_eq!(
        FrameDecoder::new(10).decode(&mut b),
        Err(FrameError::UnknownType(4))
    );
    let mut b = BytesMut::from(&hex::decode("000000000000000100040001").unwrap()[..]);
    assert_eq!(
        FrameDecoder::new(256 * 1024).decode(&mut b),
        Err(FrameError::DataTooLong {
            len: 256 * 1024 + 1,
            max: 256 * 1024
        })
    );
}

fn any_header() -> impl Strategy<Value = Header> {
    (0u8..4, any::<u16>(), any::<u32>(), any::<u32>()).prop_map(|(t, f, id, len)| Header {
        typ: FrameType::from_u8(t).unwrap(),
        flags: Flags(f),
        stream_id: id,
        length: len,
    })
}

proptest! {
    #[test]
    fn header_round_trip(h in any_header()) {
        prop_assert_eq!(Header::decode(&h.encode()), Ok(h));
    }

    #[test]
    fn frames_round_trip_in_any_chunking(
        frames in proptest::collection::vec((any_header(), 0usize..300), 1..20),
        cut in 1usize..64,
    ) {
        let mut wire = Vec::new();
        let mut expected = Vec::new();
        for (mut h, n) in frames {
            if h.typ == FrameType::Data { h.length = n as u32; }
            wire.extend_from_slice(&h.encode());
            let payload: Vec<u8> = (0..h.payload_len()).map(|i| i as u8).collect();
            wire.extend_from_slice(&payload);
            expected.push((h, payload));
        }
        let mut d = FrameDecoder::new(1000);
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for chunk in wire.chunks(cut) {
            buf.extend_from_slice(chunk);
            while let Some(f) = d.decode(&mut buf).unwrap() {
                got.push((f.header, f.payload.to_vec()));
            }
        }
        prop_assert_eq!(got, expected);
        prop_assert!(buf.is_empty());
    }

    #[test]
    fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..2048), max in 0u32..4096) {
        let mut d = FrameDecoder::new(max);
        let mut buf = BytesMut::from(&data[..]);
        for _ in 0..1000 {
            match d.decode(&mut buf) {
                Ok(Some(_)) => continue,
                Ok(None) | Err(_) => break,
            }
        }
    }
}
