//! yamux frames: `Header::decode` on every 12-byte window and the incremental `FrameDecoder`
//! over a `BytesMut` filled in chunks.
//!
//! Control byte (first input byte): bits 0-4 chunk size (`1 << n`, >= 17 = all at once), bits
//! 5-7 the decoder's `max_data_len` (the initial stream window, 0, 1, 16, 4096, 1 MiB, 16 MiB,
//! `u32::MAX`).
//!
//! Properties checked besides "never panics":
//! * a header that decodes re-encodes to the same 12 bytes;
//! * every frame re-encodes (header + payload) to exactly the bytes it was cut from;
//! * Data payloads have the announced length and respect `max_data_len`; other frames have none.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use skywire_dmsg::mux::frame::{
    FrameDecoder, FrameType, HEADER_LEN, Header, INITIAL_STREAM_WINDOW,
};
use skywire_fuzz::chunk_size;

fuzz_target!(|data: &[u8]| {
    for w in data.windows(HEADER_LEN) {
        let mut arr = [0u8; HEADER_LEN];
        arr.copy_from_slice(w);
        if let Ok(h) = Header::decode(&arr) {
            assert_eq!(h.encode(), arr, "header does not re-encode to its bytes");
            let _ = (format!("{h:?}"), h.flags.to_string(), h.payload_len());
        }
    }

    let Some((&ctl, input)) = data.split_first() else {
        return;
    };
    let chunk = chunk_size(ctl);
    let max_data_len = match ctl >> 5 {
        0 => INITIAL_STREAM_WINDOW,
        1 => 0,
        2 => 1,
        3 => 16,
        4 => 4096,
        5 => 1 << 20,
        6 => 16 << 20,
        _ => u32::MAX,
    };
    let mut dec = FrameDecoder::new(max_data_len);
    let mut buf = BytesMut::new();
    let mut rebuilt: Vec<u8> = Vec::with_capacity(input.len());
    let mut pos = 0;
    'feed: loop {
        if pos < input.len() {
            let end = input.len().min(pos.saturating_add(chunk));
            buf.extend_from_slice(&input[pos..end]);
            pos = end;
        }
        loop {
            let _ = dec.wanted(buf.len());
            match dec.decode(&mut buf) {
                Ok(Some(frame)) => {
                    let h = frame.header;
                    if h.typ == FrameType::Data {
                        assert_eq!(frame.payload.len(), h.length as usize);
                        assert!(h.length <= max_data_len);
                    } else {
                        assert!(frame.payload.is_empty());
                    }
                    rebuilt.extend_from_slice(&h.encode());
                    rebuilt.extend_from_slice(&frame.payload);
                }
                Ok(None) => break,
                Err(_) => break 'feed,
            }
        }
        if pos >= input.len() {
            break;
        }
    }
    assert!(rebuilt.len() <= input.len());
    assert!(
        rebuilt == input[..rebuilt.len()],
        "frames do not re-assemble to the input"
    );
});
