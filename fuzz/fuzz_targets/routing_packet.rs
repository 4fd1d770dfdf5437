//! Routing packets (apps.md 6.5): `Packet::decode` walking a byte stream as a transport reader
//! does (header, then exactly `length` bytes), `Packet::decode_exact`, `Header::decode`.
//!
//! Properties checked besides "never panics": a decoded packet used exactly `7 + length`
//! bytes and re-encodes to exactly those bytes; a malformed known payload can be skipped by
//! its header length; `decode_exact` agrees with `decode` on a buffer holding one packet.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skywire_visor::transport::packet::{HEADER_LEN, Header, Packet};

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    while !rest.is_empty() {
        match Packet::decode(rest) {
            Ok(Some((p, n))) => {
                let h = Header::decode(rest.first_chunk::<HEADER_LEN>().expect("header"));
                assert_eq!(n, HEADER_LEN + usize::from(h.len));
                assert_eq!(p.encode().expect("re-encode"), &rest[..n]);
                assert_eq!(Packet::decode_exact(&rest[..n]).ok(), Some(p));
                rest = &rest[n..];
            }
            Ok(None) => {
                assert!(Packet::decode_exact(rest).is_err());
                break;
            }
            Err(_) => {
                let h = Header::decode(rest.first_chunk::<HEADER_LEN>().expect("header"));
                let n = HEADER_LEN + usize::from(h.len);
                assert!(n <= rest.len());
                rest = &rest[n..];
            }
        }
    }
});
