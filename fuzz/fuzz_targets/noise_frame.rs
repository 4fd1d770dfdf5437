//! Noise transport framing: `FrameDecoder` (stream frames and session objects) fed the input in
//! chunks, and the frame bodies it yields decrypted by a receiver with a fixed key, so that seeds
//! built from the vectors decrypt: the initiator send key of `noise_xk.json` / `noise_kk.json`
//! for stream frames (`transport_frames`), the session keys of `dmsg_objects.json` hops 1 / 2 for
//! session objects (`relay_wire_sequence`).
//!
//! Control byte (first input byte): bits 0-4 chunk size (`1 << n`, >= 17 = all at once), bit 5
//! the second key (KK / hop 2), bit 6 session objects (decoder, `open_object`) instead of stream
//! frames (`decrypt_frame`), bit 7 fill through `unfilled_mut`/`commit` instead of `feed`.
//!
//! Properties checked besides "never panics":
//! * every frame body is within the decoder's length limits;
//! * the decoder never gets stuck (either it has room for more bytes or a frame is ready);
//! * re-prefixing the frames gives back exactly the input bytes they were cut from;
//! * an error poisons the decoder (and the stream receiver) permanently with the same error;
//! * sealing a body's bytes and opening the result gives them back (stream and object paths).
#![no_main]

use libfuzzer_sys::fuzz_target;
use skywire_fuzz::{KK_I_SEND, OBJ_AS_I_SEND, OBJ_BS_R_SEND, XK_I_SEND, chunk_size, key32};
use skywire_noise::{
    FrameDecoder, MAX_FRAME_LEN, MAX_OBJECT_FRAME_LEN, MAX_PLAINTEXT_PER_FRAME, MIN_FRAME_LEN,
    Transport, TransportReceiver,
};

const ROUND_TRIP_KEY: [u8; 32] = [0x42; 32];

fn round_trip(rt: &mut Transport, objects: bool, pt: &[u8]) {
    let mut out = Vec::new();
    if objects {
        let nonce = match rt.seal_object(pt, &mut out) {
            Ok(n) => n,
            Err(e) => panic!("seal_object({} bytes) failed: {e}", pt.len()),
        };
        match rt.open_object(&mut out[2..]) {
            Ok((n, back)) => assert!(n == nonce && back == pt, "object round trip differs"),
            Err(e) => panic!("open_object of a fresh object failed: {e}"),
        }
    } else {
        if pt.len() > MAX_PLAINTEXT_PER_FRAME {
            return;
        }
        if let Err(e) = rt.encrypt_frame(pt, &mut out) {
            panic!("encrypt_frame({} bytes) failed: {e}", pt.len());
        }
        match rt.decrypt_frame(&mut out[2..]) {
            Ok(back) => assert_eq!(back, pt, "frame round trip differs"),
            Err(e) => panic!("decrypt_frame of a fresh frame failed: {e}"),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, input)) = data.split_first() else {
        return;
    };
    let chunk = chunk_size(ctl);
    let objects = ctl & 0x40 != 0;
    let key = key32(match (objects, ctl & 0x20 != 0) {
        (false, false) => XK_I_SEND,
        (false, true) => KK_I_SEND,
        (true, false) => OBJ_AS_I_SEND,
        (true, true) => OBJ_BS_R_SEND,
    });
    let via_unfilled = ctl & 0x80 != 0;

    let (mut dec, max_len) = if objects {
        (FrameDecoder::for_session_objects(), MAX_OBJECT_FRAME_LEN)
    } else {
        (FrameDecoder::new(), MAX_FRAME_LEN)
    };
    let Ok(mut rx) = TransportReceiver::new(&key) else {
        panic!("fixed key refused");
    };
    let Ok(mut rt) = Transport::from_keys(&ROUND_TRIP_KEY, &ROUND_TRIP_KEY) else {
        panic!("fixed key refused");
    };

    let mut rebuilt = Vec::with_capacity(input.len());
    let mut pos = 0;
    loop {
        let mut fed = 0;
        if pos < input.len() {
            let end = input.len().min(pos.saturating_add(chunk));
            let src = &input[pos..end];
            fed = if via_unfilled {
                let dst = dec.unfilled_mut();
                let n = dst.len().min(src.len());
                dst[..n].copy_from_slice(&src[..n]);
                dec.commit(n);
                n
            } else {
                dec.feed(src)
            };
            pos += fed;
        }
        let mut frames = 0;
        let poisoned = loop {
            match dec.next_frame() {
                Ok(Some(body)) => {
                    frames += 1;
                    assert!(
                        (MIN_FRAME_LEN..=max_len).contains(&body.len()),
                        "frame body of {} bytes",
                        body.len()
                    );
                    let len = u16::try_from(body.len()).unwrap_or(u16::MAX);
                    rebuilt.extend_from_slice(&len.to_be_bytes());
                    rebuilt.extend_from_slice(body);
                    let copy = body.to_vec();
                    if objects {
                        if let Ok((nonce, _)) = rx.open_object(body) {
                            // The same ciphertext through the explicit-nonce API.
                            let mut again = copy.clone();
                            assert!(rx.open(nonce, &mut again[8..]).is_ok());
                        }
                    } else {
                        let before = rx.poisoned();
                        match rx.decrypt_frame(body) {
                            Ok(_) => assert!(before.is_none()),
                            Err(e) => {
                                assert!(before.is_none_or(|b| b == e));
                                assert_eq!(rx.poisoned(), Some(e));
                            }
                        }
                    }
                    round_trip(&mut rt, objects, &copy[..copy.len().min(1024)]);
                }
                Ok(None) => break false,
                Err(e) => {
                    assert_eq!(dec.poisoned(), Some(e));
                    assert_eq!(
                        dec.next_frame().err(),
                        Some(e),
                        "decoder error is not sticky"
                    );
                    break true;
                }
            }
        };
        if poisoned || pos >= input.len() {
            break;
        }
        assert!(fed > 0 || frames > 0, "decoder stuck: {dec:?}");
    }
    assert!(rebuilt.len() <= input.len());
    assert!(
        rebuilt == input[..rebuilt.len()],
        "frames do not re-assemble to the input"
    );
});
