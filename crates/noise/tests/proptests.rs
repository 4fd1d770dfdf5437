//! Property tests: frame encode/decode round trips for random write sizes and chunkings, and
//! the decoder / handshake reader never panic on arbitrary bytes.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: panics are the failure reports

use proptest::prelude::*;
use skywire_cipher::SecKey;
use skywire_noise::{
    FrameDecoder, Handshake, MAX_PLAINTEXT_PER_FRAME, Transport, transport::wire_len_for,
};

fn key(label: &str) -> SecKey {
    use sha2::{Digest, Sha256};
    SecKey::from_bytes(&Sha256::digest(label.as_bytes())).unwrap()
}

fn pair() -> (Transport, Transport) {
    let k1 = [1u8; 32];
    let k2 = [2u8; 32];
    (
        Transport::from_keys(&k1, &k2).unwrap(),
        Transport::from_keys(&k2, &k1).unwrap(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn frames_round_trip(
        sizes in proptest::collection::vec(0usize..20000, 1..5),
        chunk in 1usize..9000,
        seed in any::<u8>(),
    ) {
        let (mut a, mut b) = pair();
        let mut wire = Vec::new();
        let mut expected = Vec::new();
        for (k, &n) in sizes.iter().enumerate() {
            let data: Vec<u8> = (0..n).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed ^ k as u8)).collect();
            let before = wire.len();
            let frames = a.encrypt_frames(&data, &mut wire).unwrap();
            prop_assert_eq!(frames, n.div_ceil(MAX_PLAINTEXT_PER_FRAME));
            prop_assert_eq!(wire.len() - before, wire_len_for(n));
            expected.extend_from_slice(&data);
        }
        // Feed the wire in `chunk`-sized pieces.
        let mut dec = FrameDecoder::new();
        let mut got = Vec::new();
        let mut frame_lens = Vec::new();
        for piece in wire.chunks(chunk) {
            let mut off = 0;
            while off < piece.len() {
                off += dec.feed(&piece[off..]);
                while let Some(body) = dec.next_frame().unwrap() {
                    frame_lens.push(body.len() + 2);
                    got.extend_from_slice(b.decrypt_frame(body).unwrap());
                }
            }
        }
        prop_assert_eq!(dec.buffered(), 0);
        prop_assert!(frame_lens.iter().all(|&l| (26..=4096).contains(&l)));
        prop_assert_eq!(got, expected);
    }

    #[test]
    fn decoder_never_panics(data in proptest::collection::vec(any::<u8>(), 0..20000), chunk in 1usize..5000) {
        let mut dec = FrameDecoder::new();
        let (_, mut b) = pair();
        'outer: for piece in data.chunks(chunk) {
            let mut off = 0;
            while off < piece.len() {
                let n = dec.feed(&piece[off..]);
                off += n;
                loop {
                    match dec.next_frame() {
                        Ok(Some(body)) => { let _ = b.decrypt_frame(body); }
                        Ok(None) => break,
                        Err(_) => break 'outer,
                    }
                }
                if n == 0 { break 'outer; }
            }
        }
        let mut obj = FrameDecoder::for_session_objects();
        obj.feed(&data);
        while let Ok(Some(body)) = obj.next_frame() {
            let _ = b.open_object(body);
        }
    }

    #[test]
    fn handshake_reader_never_panics(msg in proptest::collection::vec(any::<u8>(), 0..200), long in any::<bool>()) {
        let srv = key("server");
        let mut r = Handshake::xk_responder(&srv).unwrap();
        let mut m = msg.clone();
        if long { m.resize(5000, 0xaa); }
        prop_assert!(r.read_message(&m).is_err() || m.len() >= 49);
        // Whatever happened, later calls don't panic either.
        let _ = r.write_message(&[], &mut Vec::new());
        let _ = r.read_message(&msg);

        // Random msg2 for an initiator and random msg1 for a KK responder.
        let c = key("client");
        let mut i = Handshake::xk_initiator(&c, srv.pub_key()).unwrap();
        let mut out = Vec::new();
        i.write_message(&[], &mut out).unwrap();
        let _ = i.read_message(&msg);
        let mut kr = Handshake::kk_responder(&srv, c.pub_key()).unwrap();
        let _ = kr.read_message(&msg);
    }

    #[test]
    fn handshake_reader_random_ephemeral_prefix(prefix in 0u8..=255, x in proptest::collection::vec(any::<u8>(), 32)) {
        let srv = key("server");
        let c = key("client");
        let mut i = Handshake::xk_initiator(&c, srv.pub_key()).unwrap();
        let mut m = Vec::new();
        i.write_message(&[], &mut m).unwrap();
        m[0] = prefix;
        m[1..33].copy_from_slice(&x);
        let mut r = Handshake::xk_responder(&srv).unwrap();
        prop_assert!(r.read_message(&m).is_err());
    }
}

#[tokio::test]
async fn framed_handshake_driver_never_panics_on_garbage() {
    use tokio::io::AsyncWriteExt;
    let srv = key("server");
    let mut rng_state = 0x1234_5678_9abc_def0u64;
    for round in 0..64 {
        let len = (round * 37) % 300;
        let mut garbage = Vec::with_capacity(len + 2);
        for _ in 0..len + 2 {
            rng_state ^= rng_state << 13;
            rng_state ^= rng_state >> 7;
            rng_state ^= rng_state << 17;
            garbage.push(rng_state as u8);
        }
        if round % 2 == 0 {
            // Make the length prefix plausible.
            let l = (len as u16).to_be_bytes();
            garbage[..2].copy_from_slice(&l);
        }
        let (a, mut b) = tokio::io::duplex(1 << 16);
        b.write_all(&garbage).await.unwrap();
        drop(b);
        let r =
            skywire_noise::NoiseStream::xk_responder(a, &srv, std::time::Duration::from_secs(5))
                .await;
        assert!(r.is_err());
    }
}
