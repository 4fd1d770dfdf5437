//! Skywire transport handshake (apps.md 6.2): `check_frame0`, `Frame1::decode`,
//! `Frame2::decode` + `verify`, `Frame3::decode` on the whole input and on every prefix ending
//! at a `\n`.
//!
//! Properties checked besides "never panics": every decoded frame re-encodes to one line that
//! decodes to the same value; a decoded Frame2 verifies exactly when its re-encoded form does
//! (the signature covers our canonical encoding).
#![no_main]

use libfuzzer_sys::fuzz_target;
use skywire_visor::transport::handshake::{Frame1, Frame2, Frame3, check_frame0};

fuzz_target!(|data: &[u8]| {
    let _ = check_frame0(data);
    for end in (0..=data.len()).filter(|&i| i == data.len() || data[i] == b'\n') {
        let line = &data[..(end + 1).min(data.len())];
        if let Ok(f) = Frame1::decode(line) {
            let enc = f.encode();
            assert_eq!(enc.last(), Some(&b'\n'));
            assert_eq!(Frame1::decode(&enc).ok(), Some(f));
        }
        if let Ok(f) = Frame2::decode(line) {
            let enc = f.encode();
            let back = Frame2::decode(&enc).expect("re-encoded Frame2 decodes");
            assert_eq!(back, f);
            assert_eq!(f.verify(&f.nonce).is_ok(), back.verify(&f.nonce).is_ok());
            assert_eq!(f.signing_bytes(), back.signing_bytes());
        }
        if let Ok(f) = Frame3::decode(line) {
            let enc = f.encode();
            assert_eq!(Frame3::decode(&enc).ok(), Some(f));
        }
    }
});
