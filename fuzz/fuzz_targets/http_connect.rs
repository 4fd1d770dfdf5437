//! The skysocks-client HTTP CONNECT front: `parse_head` on the input.
//!
//! Properties checked besides "never panics": a CONNECT head's length is within the input and
//! ends with the blank line; a head found in a prefix is found the same way in the whole input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skywire_proxy::http_connect::{Head, parse_head};

fuzz_target!(|data: &[u8]| {
    if let Ok(Some(Head::Connect { len, .. })) = parse_head(data) {
        assert!(len <= data.len());
        assert!(data[..len].ends_with(b"\r\n\r\n"));
        assert_eq!(parse_head(&data[..len]), parse_head(data));
    }
});
