//! Malformed input must give errors, never panics: bad ephemeral keys, tampering, replayed or
//! stale nonces (which poison the reader), oversized length prefixes, misuse of the state machine.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: panics are the failure reports

use skywire_cipher::{PubKey, SecKey};
use skywire_noise::{
    FrameDecoder, FrameError, Handshake, MAX_FRAME_LEN, NoiseError, NoiseStream, Transport,
};
use snow::types::Dh;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn key(label: &str) -> SecKey {
    use sha2::{Digest, Sha256};
    SecKey::from_bytes(&Sha256::digest(label.as_bytes())).unwrap()
}

fn xk_pair() -> (Handshake, Handshake, SecKey, SecKey) {
    let c = key("client");
    let srv = key("server");
    let i = Handshake::xk_initiator(&c, srv.pub_key()).unwrap();
    let r = Handshake::xk_responder(&srv).unwrap();
    (i, r, c, srv)
}

fn finished_xk() -> (Transport, Transport) {
    let (mut i, mut r, _, _) = xk_pair();
    let mut m = Vec::new();
    i.write_message(&[], &mut m).unwrap();
    r.read_message(&m).unwrap();
    m.clear();
    r.write_message(&[], &mut m).unwrap();
    i.read_message(&m).unwrap();
    m.clear();
    i.write_message(&[], &mut m).unwrap();
    r.read_message(&m).unwrap();
    (i.into_transport().unwrap(), r.into_transport().unwrap())
}

/// A valid msg1 with its ephemeral key replaced.
fn msg1_with_ephemeral(e: &[u8; 33]) -> Vec<u8> {
    let (mut i, _, _, _) = xk_pair();
    let mut m = Vec::new();
    i.write_message(&[], &mut m).unwrap();
    m[..33].copy_from_slice(e);
    m
}

fn assert_dh_error(res: Result<Vec<u8>, NoiseError>) {
    match res {
        Err(NoiseError::Snow(snow::Error::Dh)) => {}
        other => panic!("expected a DH error, got {other:?}"),
    }
}

#[test]
fn malformed_ephemeral_keys_in_msg1_are_errors() {
    let srv = key("server");
    // secp256k1 field prime p: X = p is not a valid coordinate (X >= p).
    let p =
        hex::decode("fffffffffffffffffffffffffffffffffffffffffffffffffffffffefffffc2f").unwrap();
    let mut x_eq_p = [0u8; 33];
    x_eq_p[0] = 0x02;
    x_eq_p[1..].copy_from_slice(&p);
    let mut x_max = [0xffu8; 33];
    x_max[0] = 0x02;
    let mut prefix04 = [0u8; 33];
    prefix04[0] = 0x04;
    prefix04[1..].copy_from_slice(&srv.pub_key().as_bytes()[1..]);
    let zero = [0u8; 33];
    // A valid X coordinate with a bad prefix.
    let mut prefix05 = *srv.pub_key().as_bytes();
    prefix05[0] = 0x05;
    // X = 5 is not on secp256k1 (x^3 + 7 = 132 is not a square mod p).
    let mut not_on_curve = [0u8; 33];
    not_on_curve[0] = 0x03;
    not_on_curve[32] = 5;
    assert!(PubKey::from_bytes(&not_on_curve).is_err());
    for bad in [x_eq_p, x_max, prefix04, zero, prefix05, not_on_curve] {
        let mut r = Handshake::xk_responder(&srv).unwrap();
        assert_dh_error(r.read_message(&msg1_with_ephemeral(&bad)));
        assert!(r.is_failed());
        // Every later call fails cleanly.
        assert!(matches!(
            r.read_message(&[0; 49]),
            Err(NoiseError::HandshakeFailed)
        ));
        assert!(matches!(
            r.write_message(&[], &mut Vec::new()),
            Err(NoiseError::HandshakeFailed)
        ));
        assert!(matches!(
            r.into_transport(),
            Err(NoiseError::HandshakeFailed)
        ));
    }
}

#[test]
fn malformed_ephemeral_in_msg2_is_an_error_for_the_initiator() {
    let (mut i, mut r, _, _) = xk_pair();
    let mut m = Vec::new();
    i.write_message(&[], &mut m).unwrap();
    r.read_message(&m).unwrap();
    m.clear();
    r.write_message(&[], &mut m).unwrap();
    m[0] = 0x04;
    assert_dh_error(i.read_message(&m));
}

#[test]
fn dh_rejects_bad_inputs_without_panicking() {
    let mut dh = skywire_noise::dh::Secp256k1Dh::default();
    let mut out = [0u8; 33];
    // No secret installed.
    assert_eq!(
        dh.dh(key("x").pub_key().as_bytes(), &mut out),
        Err(snow::Error::Dh)
    );
    dh.set(key("y").as_bytes());
    assert_eq!(dh.dh(&[2u8; 10], &mut out), Err(snow::Error::Dh));
    assert_eq!(dh.dh(&[0u8; 56], &mut out), Err(snow::Error::Dh));
    assert_eq!(
        dh.dh(key("x").pub_key().as_bytes(), &mut [0u8; 5]),
        Err(snow::Error::Dh)
    );
    // Invalid secrets leave the slot empty.
    dh.set(&[0u8; 32]);
    assert!(dh.privkey().is_empty());
    assert_eq!(
        dh.dh(key("x").pub_key().as_bytes(), &mut out),
        Err(snow::Error::Dh)
    );
    dh.set(&[0xffu8; 32]);
    assert_eq!(
        dh.dh(key("x").pub_key().as_bytes(), &mut out),
        Err(snow::Error::Dh)
    );
    dh.set(&[1u8; 7]);
    assert_eq!(
        dh.dh(key("x").pub_key().as_bytes(), &mut out),
        Err(snow::Error::Dh)
    );
}

#[test]
fn tampered_handshake_messages_are_errors() {
    for (msg_idx, byte) in [(0usize, 40usize), (1, 35), (2, 0), (2, 60)] {
        let (mut i, mut r, _, _) = xk_pair();
        let mut msgs = Vec::new();
        for idx in 0..3 {
            let (w, rd) = if idx % 2 == 0 {
                (&mut i, &mut r)
            } else {
                (&mut r, &mut i)
            };
            let mut m = Vec::new();
            w.write_message(&[], &mut m).unwrap();
            if idx == msg_idx {
                m[byte] ^= 0x01;
                assert!(rd.read_message(&m).is_err(), "msg {idx} byte {byte}");
                break;
            }
            rd.read_message(&m).unwrap();
            msgs.push(m);
        }
    }
    // Truncated / extended / empty messages.
    let (mut i, _, _, srv) = xk_pair();
    let mut m = Vec::new();
    i.write_message(&[], &mut m).unwrap();
    for bad in [&m[..48], &m[..33], &[][..]] {
        let mut r = Handshake::xk_responder(&srv).unwrap();
        assert!(r.read_message(bad).is_err());
    }
    let mut r = Handshake::xk_responder(&srv).unwrap();
    assert!(matches!(
        r.read_message(&[0u8; 4095]),
        Err(NoiseError::HandshakeMessageTooLong { len: 4095, .. })
    ));
}

#[test]
fn state_machine_misuse_is_an_error() {
    let (mut i, mut r, _, _) = xk_pair();
    assert!(r.write_message(&[], &mut Vec::new()).is_err());
    let (mut i2, _, _, _) = xk_pair();
    assert!(matches!(
        i2.write_message(&vec![0u8; 4094], &mut Vec::new()),
        Err(NoiseError::HandshakeMessageTooLong { .. })
    ));
    let mut m = Vec::new();
    i.write_message(&[], &mut m).unwrap();
    assert!(i.read_message(&m).is_err()); // not our turn to read
    let (i3, _, _, _) = xk_pair();
    assert!(matches!(
        i3.into_transport(),
        Err(NoiseError::HandshakeIncomplete)
    ));
    let c = key("client");
    assert!(matches!(
        skywire_noise::HandshakeBuilder::new(
            skywire_noise::Pattern::KK,
            skywire_noise::Role::Responder,
            &c
        )
        .build(),
        Err(NoiseError::RemoteStatic)
    ));
}

#[test]
fn large_handshake_payloads_are_accepted_and_ignored() {
    // Newer peers put an ML-KEM-768 key (1184 bytes) in msg1 and a ciphertext (1088) in msg2.
    let (mut i, mut r, c, _) = xk_pair();
    let mut m = Vec::new();
    i.write_message(&[0x11; 1184], &mut m).unwrap();
    assert_eq!(m.len(), 1233);
    assert_eq!(r.read_message(&m).unwrap(), vec![0x11; 1184]);
    m.clear();
    r.write_message(&[0x22; 1088], &mut m).unwrap();
    assert_eq!(m.len(), 1137);
    assert_eq!(i.read_message(&m).unwrap(), vec![0x22; 1088]);
    m.clear();
    i.write_message(&[], &mut m).unwrap();
    assert_eq!(m.len(), 65);
    r.read_message(&m).unwrap();
    assert_eq!(r.remote_static(), Some(c.pub_key()));
    let (mut it, mut rt) = (i.into_transport().unwrap(), r.into_transport().unwrap());
    let mut w = Vec::new();
    it.encrypt_frames(b"hi", &mut w).unwrap();
    assert_eq!(rt.decrypt_frame(&mut w[2..]).unwrap(), b"hi");

    // Same for KK.
    let a = key("a");
    let b = key("b");
    let mut ki = Handshake::kk_initiator(&a, b.pub_key()).unwrap();
    let mut kr = Handshake::kk_responder(&b, a.pub_key()).unwrap();
    m.clear();
    ki.write_message(&[7; 1184], &mut m).unwrap();
    assert_eq!(m.len(), 1233);
    kr.read_message(&m).unwrap();
    m.clear();
    kr.write_message(&[8; 1088], &mut m).unwrap();
    assert_eq!(m.len(), 1137);
    ki.read_message(&m).unwrap();
    assert!(ki.into_transport().is_ok() && kr.into_transport().is_ok());
}

#[tokio::test]
async fn framed_driver_accepts_large_payload_messages() {
    // A "newer" initiator sending a 1184-byte payload in msg1 through the 2.5 framing.
    let c = key("client");
    let srv = key("server");
    let (a, b) = tokio::io::duplex(1 << 16);
    let server = tokio::spawn({
        let srv = srv.clone();
        async move { NoiseStream::xk_responder(b, &srv, std::time::Duration::from_secs(5)).await }
    });
    let mut a = a;
    let mut hs = Handshake::xk_initiator(&c, srv.pub_key()).unwrap();
    let mut m = vec![0, 0];
    hs.write_message(&[0x33; 1184], &mut m).unwrap();
    let l = (m.len() - 2) as u16;
    m[..2].copy_from_slice(&l.to_be_bytes());
    a.write_all(&m).await.unwrap();
    let mut p = [0u8; 2];
    a.read_exact(&mut p).await.unwrap();
    let mut m2 = vec![0u8; u16::from_be_bytes(p) as usize];
    a.read_exact(&mut m2).await.unwrap();
    hs.read_message(&m2).unwrap();
    let mut m3 = vec![0, 0];
    hs.write_message(&[], &mut m3).unwrap();
    m3[..2].copy_from_slice(&65u16.to_be_bytes());
    a.write_all(&m3).await.unwrap();
    let stream = server.await.unwrap().unwrap();
    assert_eq!(stream.remote_pk(), &c.pub_key());
}

#[test]
fn tampered_frame_is_an_error_and_poisons() {
    let (mut it, mut rt) = finished_xk();
    let mut w = Vec::new();
    it.encrypt_frames(b"hello", &mut w).unwrap();
    let mut bad = w.clone();
    bad[12] ^= 0x80;
    assert_eq!(rt.decrypt_frame(&mut bad[2..]), Err(FrameError::Decrypt));
    // Poisoned: even the genuine frame is refused now.
    assert_eq!(rt.decrypt_frame(&mut w[2..]), Err(FrameError::Decrypt));
    assert_eq!(rt.receiver().poisoned(), Some(FrameError::Decrypt));
}

#[test]
fn replayed_and_stale_nonces_are_errors_and_poison() {
    let (mut it, mut rt) = finished_xk();
    let mut frames = Vec::new();
    for i in 0..4u8 {
        let mut w = Vec::new();
        it.encrypt_frames(&[i; 10], &mut w).unwrap();
        frames.push(w);
    }
    // Gaps are allowed: 1, then 3.
    let mut f1 = frames[0].clone();
    assert_eq!(rt.decrypt_frame(&mut f1[2..]).unwrap(), &[0u8; 10]);
    let mut f3 = frames[2].clone();
    assert_eq!(rt.decrypt_frame(&mut f3[2..]).unwrap(), &[2u8; 10]);
    // Stale (2 < 3) is refused and poisons; then 4 is refused as well.
    let mut f2 = frames[1].clone();
    assert_eq!(
        rt.decrypt_frame(&mut f2[2..]),
        Err(FrameError::StaleNonce { nonce: 2, last: 3 })
    );
    let mut f4 = frames[3].clone();
    assert_eq!(
        rt.decrypt_frame(&mut f4[2..]),
        Err(FrameError::StaleNonce { nonce: 2, last: 3 })
    );

    // Replay of the same frame.
    let (mut it, mut rt) = finished_xk();
    let mut w = Vec::new();
    it.encrypt_frames(b"once", &mut w).unwrap();
    let mut copy = w.clone();
    rt.decrypt_frame(&mut w[2..]).unwrap();
    assert_eq!(
        rt.decrypt_frame(&mut copy[2..]),
        Err(FrameError::StaleNonce { nonce: 1, last: 1 })
    );
}

#[test]
fn oversized_and_undersized_prefixes_are_errors() {
    let mut dec = FrameDecoder::new();
    dec.feed(&4095u16.to_be_bytes());
    assert_eq!(
        dec.next_frame(),
        Err(FrameError::TooLong {
            len: 4095,
            max: MAX_FRAME_LEN
        })
    );
    // Poisoned for good.
    assert!(dec.next_frame().is_err());

    let mut dec = FrameDecoder::new();
    dec.feed(&23u16.to_be_bytes());
    assert_eq!(dec.next_frame(), Err(FrameError::TooShort { len: 23 }));

    let mut dec = FrameDecoder::new();
    dec.feed(&4094u16.to_be_bytes());
    assert_eq!(dec.next_frame(), Ok(None));

    let (_, mut rt) = finished_xk();
    let mut big = vec![0u8; 4095];
    assert!(matches!(
        rt.decrypt_frame(&mut big),
        Err(FrameError::TooLong { .. })
    ));
    let (_, mut rt) = finished_xk();
    assert!(matches!(
        rt.decrypt_frame(&mut [0u8; 23]),
        Err(FrameError::TooShort { .. })
    ));
    let (_, rt) = finished_xk();
    assert!(rt.open_object(&mut [0u8; 10]).is_err());
    assert!(rt.open(1, &mut [0u8; 10]).is_err());
}

#[test]
fn object_size_limits() {
    let (mut it, rt) = finished_xk();
    let mut w = Vec::new();
    // A zero-byte write sends nothing and consumes no nonce.
    assert_eq!(it.encrypt_frames(&[], &mut w).unwrap(), 0);
    assert!(w.is_empty());
    assert_eq!(it.sender().nonce(), 0);
    assert!(matches!(
        it.seal_object(&vec![0u8; 65512], &mut w),
        Err(FrameError::PlaintextTooLong { .. })
    ));
    assert!(w.is_empty());
    let big = vec![5u8; 65511];
    it.seal_object(&big, &mut w).unwrap();
    assert_eq!(&w[..2], &[0xff, 0xff]);
    let (_, pt) = rt.open_object(&mut w[2..]).unwrap();
    assert_eq!(pt, &big[..]);
    assert!(matches!(
        it.encrypt_frame(&[0u8; 4071], &mut Vec::new()),
        Err(FrameError::PlaintextTooLong {
            len: 4071,
            max: 4070
        })
    ));
}

#[tokio::test]
async fn stream_read_errors_are_sticky() {
    let (mut it, rt) = finished_xk();
    let (a, mut b) = tokio::io::duplex(1 << 16);
    let mut stream = NoiseStream::new(a, rt, key("client").pub_key());
    let mut w = Vec::new();
    it.encrypt_frames(b"good", &mut w).unwrap();
    let replay = w.clone();
    b.write_all(&w).await.unwrap();
    b.write_all(&replay).await.unwrap();
    let mut buf = [0u8; 16];
    let n = stream.read(&mut buf).await.unwrap();
    assert_eq!(&buf[..n], b"good");
    let e1 = stream.read(&mut buf).await.unwrap_err();
    assert_eq!(e1.kind(), std::io::ErrorKind::InvalidData);
    // More valid data does not help.
    let mut w2 = Vec::new();
    it.encrypt_frames(b"later", &mut w2).unwrap();
    b.write_all(&w2).await.unwrap();
    let e2 = stream.read(&mut buf).await.unwrap_err();
    assert_eq!(e2.kind(), std::io::ErrorKind::InvalidData);

    // An oversized prefix on the stream.
    let (_, rt) = finished_xk();
    let (a, mut b) = tokio::io::duplex(1 << 16);
    let mut stream = NoiseStream::new(a, rt, key("client").pub_key());
    b.write_all(&[0x0f, 0xff]).await.unwrap();
    assert!(stream.read(&mut buf).await.is_err());
    assert!(stream.read(&mut buf).await.is_err());

    // EOF in the middle of a frame.
    let (mut it, rt) = finished_xk();
    let (a, mut b) = tokio::io::duplex(1 << 16);
    let mut stream = NoiseStream::new(a, rt, key("client").pub_key());
    let mut w = Vec::new();
    it.encrypt_frames(b"cut short", &mut w).unwrap();
    b.write_all(&w[..10]).await.unwrap();
    drop(b);
    let e = stream.read(&mut buf).await.unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof);
}

#[tokio::test]
async fn framed_handshake_rejects_long_length_prefix() {
    let srv = key("server");
    let (a, mut b) = tokio::io::duplex(1 << 16);
    b.write_all(&4095u16.to_be_bytes()).await.unwrap();
    let r = NoiseStream::xk_responder(a, &srv, std::time::Duration::from_secs(5)).await;
    assert!(matches!(
        r,
        Err(NoiseError::HandshakeMessageTooLong { len: 4095, .. })
    ));
    // The responder dropped its end: the peer sees EOF.
    let mut rest = Vec::new();
    b.read_to_end(&mut rest).await.unwrap();
    assert!(rest.is_empty());
}
