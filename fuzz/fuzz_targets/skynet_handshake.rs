//! skynet forwarding handshake: `decode_request` / `decode_reply` on the whole input and on
//! every prefix end at a `}`.
//!
//! Properties checked besides "never panics": a decoded message consumed at most the input and
//! re-encodes to a message that decodes to the same value using all of its bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skywire_proxy::handshake::{Decoded, decode_reply, decode_request, encode_reply, encode_request};

fuzz_target!(|data: &[u8]| {
    for end in (0..=data.len()).filter(|&i| i == data.len() || data[i] == b'}') {
        let buf = &data[..(end + 1).min(data.len())];
        if let Ok(Decoded::Done(req, n)) = decode_request(buf) {
            assert!(n <= buf.len());
            let enc = encode_request(&req);
            assert_eq!(decode_request(&enc).ok(), Some(Decoded::Done(req, enc.len())));
        }
        if let Ok(Decoded::Done(rep, n)) = decode_reply(buf) {
            assert!(n <= buf.len());
            let enc = encode_reply(&rep);
            assert_eq!(decode_reply(&enc).ok(), Some(Decoded::Done(rep, enc.len())));
        }
    }
});
