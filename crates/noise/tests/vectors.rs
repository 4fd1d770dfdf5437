//! Byte-for-byte reproduction of the spec vectors: `noise_xk.json`, `noise_kk.json`,
//! `keys.json` (`dh[]`) and `dmsg_objects.json` (`sessions[]`, `relay_wire_sequence[]`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: panics are the failure reports

mod common;

use common::{hx, key32, load, public, s, sec};
use serde_json::Value;
use sha2::{Digest, Sha256};
use skywire_noise::dh::Secp256k1Dh;
use skywire_noise::{
    FrameDecoder, Handshake, HandshakeBuilder, NoiseStream, Pattern, Role, Transport,
};
use snow::types::Dh;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn builder_pair(
    v: &Value,
    pattern: Pattern,
    keys: &[skywire_cipher::SecKey; 4],
) -> (Handshake, Handshake) {
    let ini = &v["initiator"];
    let res = &v["responder"];
    let [ini_s, ini_e, res_s, res_e] = keys;
    assert_eq!(ini_s.pub_key(), public(ini, "static_public_key"));
    assert_eq!(ini_e.pub_key(), public(ini, "ephemeral_public_key"));
    assert_eq!(res_s.pub_key(), public(res, "static_public_key"));
    assert_eq!(res_e.pub_key(), public(res, "ephemeral_public_key"));
    let i = HandshakeBuilder::new(pattern, Role::Initiator, ini_s)
        .remote(res_s.pub_key())
        .with_fixed_ephemeral(ini_e)
        .build()
        .unwrap();
    let mut r = HandshakeBuilder::new(pattern, Role::Responder, res_s).with_fixed_ephemeral(res_e);
    if pattern == Pattern::KK {
        r = r.remote(ini_s.pub_key());
    }
    (i, r.build().unwrap())
}

fn keys_of(v: &Value) -> [skywire_cipher::SecKey; 4] {
    let ini = &v["initiator"];
    let res = &v["responder"];
    [
        sec(ini, "static_secret_key"),
        sec(ini, "ephemeral_secret_key"),
        sec(res, "static_secret_key"),
        sec(res, "ephemeral_secret_key"),
    ]
}

/// Runs the handshake, checking every message (and `h` after each one when given).
/// Returns (initiator transport, responder transport).
fn run_handshake(
    v: &Value,
    pattern: Pattern,
    expected_msgs: &[Vec<u8>],
    derived: Option<&Value>,
) -> (Transport, Transport) {
    let keys = keys_of(v);
    let (mut i, mut r) = builder_pair(v, pattern, &keys);
    if let Some(d) = derived {
        // Protocol name, empty prologue and pre-messages hashed exactly as the reference does.
        let h0 = hx(d, "h_after_premessages");
        assert_eq!(i.handshake_hash(), &h0[..]);
        assert_eq!(r.handshake_hash(), &h0[..]);
    }
    assert_eq!(expected_msgs.len(), pattern.message_count());
    for (idx, expected) in expected_msgs.iter().enumerate() {
        let (w, rd) = if idx % 2 == 0 {
            (&mut i, &mut r)
        } else {
            (&mut r, &mut i)
        };
        assert!(w.is_my_turn() && !rd.is_my_turn());
        let mut msg = Vec::new();
        let n = w.write_message(&[], &mut msg).unwrap();
        assert_eq!(n, msg.len());
        assert_eq!(
            hex::encode(&msg),
            hex::encode(expected),
            "message {}",
            idx + 1
        );
        let payload = rd.read_message(&msg).unwrap();
        assert!(payload.is_empty());
        if let Some(d) = derived {
            let h = hx(&d[format!("after_msg{}", idx + 1)], "h");
            assert_eq!(w.handshake_hash(), &h[..], "h after msg {}", idx + 1);
            assert_eq!(rd.handshake_hash(), &h[..], "h after msg {}", idx + 1);
        }
    }
    assert!(i.is_finished() && r.is_finished());
    assert_eq!(r.remote_static(), Some(keys[0].pub_key()));
    assert_eq!(i.remote_static(), Some(keys[2].pub_key()));
    (i.into_transport().unwrap(), r.into_transport().unwrap())
}

fn check_keys(it: &mut Transport, rt: &mut Transport, ini_send: [u8; 32], res_send: [u8; 32]) {
    assert_eq!(it.sender().key_for_testing(), &ini_send);
    assert_eq!(rt.receiver().key_for_testing(), &ini_send);
    assert_eq!(rt.sender().key_for_testing(), &res_send);
    assert_eq!(it.receiver().key_for_testing(), &res_send);
}

fn check_transport_frames(v: &Value, it: &mut Transport, rt: &mut Transport) {
    let frames = v["transport_frames"].as_array().unwrap();
    assert_eq!(frames.len(), 6);
    for f in frames {
        let (tx, rx) = match s(f, "from") {
            "initiator" => (&mut *it, &mut *rt),
            "responder" => (&mut *rt, &mut *it),
            other => panic!("unknown sender {other}"),
        };
        let pt = hx(f, "plaintext_hex");
        let wire = hx(f, "wire_bytes");
        let mut out = Vec::new();
        assert_eq!(tx.encrypt_frames(&pt, &mut out).unwrap(), 1);
        assert_eq!(tx.sender().nonce(), f["nonce"].as_u64().unwrap());
        assert_eq!(hex::encode(&out), hex::encode(&wire));
        assert_eq!(out.len() as u64, f["wire_length"].as_u64().unwrap());
        let mut body = wire[2..].to_vec();
        assert_eq!(rx.decrypt_frame(&mut body).unwrap(), &pt[..]);
    }
}

#[test]
fn xk_handshake_transport_and_split_write() {
    let v = load("noise_xk.json");
    assert_eq!(s(&v, "protocol_name"), Pattern::XK.protocol_name());
    assert_eq!(s(&v, "prologue_hex"), "");
    let msgs: Vec<Vec<u8>> = v["handshake_messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let msg = hx(m, "noise_message");
            let wire = hx(m, "wire_bytes");
            // wire = BE16(len) || message
            assert_eq!(&wire[..2], &(msg.len() as u16).to_be_bytes());
            assert_eq!(&wire[2..], &msg[..]);
            msg
        })
        .collect();
    let d = &v["derived_by_independent_implementation"];
    let (mut it, mut rt) = run_handshake(&v, Pattern::XK, &msgs, Some(d));
    let hh = key32(d, "handshake_hash");
    assert_eq!(it.handshake_hash(), Some(&hh));
    assert_eq!(rt.handshake_hash(), Some(&hh));
    // XK quirk: the initiator sends with split_k2.
    assert_eq!(key32(d, "initiator_send_key"), key32(d, "split_k2"));
    check_keys(&mut it, &mut rt, key32(d, "split_k2"), key32(d, "split_k1"));
    check_keys(
        &mut it,
        &mut rt,
        key32(d, "initiator_send_key"),
        key32(d, "responder_send_key"),
    );
    check_transport_frames(&v, &mut it, &mut rt);

    // split_write_example: 4100 bytes written by the initiator after the frames above.
    let ex = &v["split_write_example"];
    assert_eq!(s(ex, "from"), "initiator");
    let len = ex["plaintext_length"].as_u64().unwrap() as usize;
    let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    let mut wire = Vec::new();
    assert_eq!(it.encrypt_frames(&data, &mut wire).unwrap(), 2);
    assert_eq!(
        hex::encode(Sha256::digest(&wire)),
        s(ex, "sha256_of_all_wire_bytes")
    );
    // Walk the frames: lengths and nonces.
    let mut dec = FrameDecoder::new();
    assert_eq!(dec.feed(&wire), wire.len());
    let mut lens = Vec::new();
    let mut nonces = Vec::new();
    let mut plain = Vec::new();
    while let Some(body) = dec.next_frame().unwrap() {
        lens.push(body.len() + 2);
        nonces.push(u64::from_be_bytes(body[..8].try_into().unwrap()));
        plain.extend_from_slice(rt.decrypt_frame(body).unwrap());
    }
    let exp_lens: Vec<usize> = ex["wire_frame_lengths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as usize)
        .collect();
    let exp_nonces: Vec<u64> = ex["frame_nonces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap())
        .collect();
    assert_eq!(lens, exp_lens);
    assert_eq!(nonces, exp_nonces);
    assert_eq!(plain, data);
}

#[test]
fn kk_handshake_and_transport() {
    let v = load("noise_kk.json");
    assert_eq!(s(&v, "protocol_name"), Pattern::KK.protocol_name());
    let msgs: Vec<Vec<u8>> = v["handshake_messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| hx(m, "noise_message"))
        .collect();
    let d = &v["derived_by_independent_implementation"];
    let (mut it, mut rt) = run_handshake(&v, Pattern::KK, &msgs, Some(d));
    let hh = key32(d, "handshake_hash");
    assert_eq!(it.handshake_hash(), Some(&hh));
    // KK: the initiator sends with split_k1.
    assert_eq!(key32(d, "initiator_send_key"), key32(d, "split_k1"));
    check_keys(&mut it, &mut rt, key32(d, "split_k1"), key32(d, "split_k2"));
    check_transport_frames(&v, &mut it, &mut rt);
}

#[test]
fn keys_dh_through_snow_dh_impl() {
    let v = load("keys.json");
    let keys = v["keys"].as_array().unwrap();
    let find = |name: &str| {
        keys.iter()
            .find(|k| s(k, "name") == name)
            .unwrap_or_else(|| panic!("key {name} not in keys.json"))
    };
    let dh_vectors = v["dh"].as_array().unwrap();
    assert!(!dh_vectors.is_empty());
    for d in dh_vectors {
        let sk = sec(find(s(d, "secret_key_of")), "secret_key");
        let pk_bytes = hx(find(s(d, "public_key_of")), "public_key");
        let mut dh = Secp256k1Dh::default();
        dh.set(sk.as_bytes());
        assert_eq!(dh.pubkey(), &sk.pub_key().as_bytes()[..]);
        assert_eq!(dh.dh_len(), 33);
        assert_eq!(dh.name(), "Secp256k1");
        // snow hands over its whole MAXDHLEN buffer.
        let mut pk_buf = [0u8; 56];
        pk_buf[..33].copy_from_slice(&pk_bytes);
        let mut out = [0xaau8; 56];
        dh.dh(&pk_buf, &mut out).unwrap();
        assert_eq!(hex::encode(&out[..33]), s(d, "noise_dh_output_33"));
        assert_eq!(&out[..32], &hx(d, "ecdh_sha256_of_point")[..]);
        // Exactly 33 bytes long input works too.
        let mut out2 = [0u8; 33];
        dh.dh(&pk_bytes, &mut out2).unwrap();
        assert_eq!(out2, out[..33]);
    }
}

fn session_transports(sess: &Value) -> (Transport, Transport) {
    let msgs = vec![
        hx(sess, "xk_msg1"),
        hx(sess, "xk_msg2"),
        hx(sess, "xk_msg3"),
    ];
    let (mut it, mut rt) = run_handshake(sess, Pattern::XK, &msgs, None);
    check_keys(
        &mut it,
        &mut rt,
        key32(sess, "derived_initiator_send_key"),
        key32(sess, "derived_responder_send_key"),
    );
    (it, rt)
}

#[test]
fn dmsg_sessions_and_relay_wire_sequence() {
    let v = load("dmsg_objects.json");
    let sessions = v["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2);
    for sess in sessions {
        session_transports(sess);
    }
    let objects = v["objects"].as_array().unwrap();
    let hops = v["relay_wire_sequence"].as_array().unwrap();
    assert_eq!(hops.len(), 4);
    for hop in hops {
        let sess_name = s(hop, "session"); // "A<->S" / "B<->S"
        let client = &sess_name[..1];
        let sess = sessions
            .iter()
            .find(|x| s(x, "name").starts_with(&format!("session {sess_name}")))
            .unwrap_or_else(|| panic!("no session {sess_name}"));
        let obj_name = s(hop, "object").split_whitespace().next().unwrap();
        let obj = objects.iter().find(|o| s(o, "name") == obj_name).unwrap();
        let signed = hx(obj, "signed_object");
        let (mut it, mut rt) = session_transports(sess);
        let writer = s(hop, "writer");
        let (tx, rx) = if writer.starts_with(client) {
            (&mut it, &mut rt)
        } else {
            assert!(writer.starts_with('S'), "writer {writer}");
            (&mut rt, &mut it)
        };
        let nonce = hop["nonce"].as_u64().unwrap();
        // Advance the counter to just before the recorded nonce.
        for _ in 1..nonce {
            tx.seal_object(b"", &mut Vec::new()).unwrap();
        }
        let mut wire = Vec::new();
        assert_eq!(tx.seal_object(&signed, &mut wire).unwrap(), nonce);
        let expected = hx(hop, "wire_bytes");
        assert_eq!(
            hex::encode(&wire),
            hex::encode(&expected),
            "hop {}",
            s(hop, "hop")
        );
        assert_eq!(wire.len() as u64, hop["wire_length"].as_u64().unwrap());
        // Decrypt back, both directly and through the session-object decoder.
        let mut body = expected[2..].to_vec();
        let (n, pt) = rx.open_object(&mut body).unwrap();
        assert_eq!(n, nonce);
        assert_eq!(pt, &signed[..]);
        let mut dec = FrameDecoder::for_session_objects();
        dec.feed(&expected);
        let body = dec.next_frame().unwrap().unwrap();
        let mut ct = body[8..].to_vec();
        assert_eq!(rx.open(nonce, &mut ct).unwrap(), &signed[..]);
        // Session objects have no ordering check: opening the same object again works.
        let mut again = expected[2..].to_vec();
        assert!(rx.open_object(&mut again).is_ok());
    }
}

/// The framed XK driver against the recorded socket bytes: our initiator's writes must equal
/// `wire_bytes`, and it must accept the recorded responder message; then the transport frames
/// written through `NoiseStream` equal the recorded frames and the recorded responder frames
/// decrypt.
#[tokio::test]
async fn xk_framed_driver_matches_recorded_socket_bytes() {
    let v = load("noise_xk.json");
    let keys = keys_of(&v);
    let msgs = v["handshake_messages"].as_array().unwrap();
    let wire: Vec<Vec<u8>> = msgs.iter().map(|m| hx(m, "wire_bytes")).collect();
    let (ours, mut peer) = tokio::io::duplex(1 << 16);
    let hs = HandshakeBuilder::new(Pattern::XK, Role::Initiator, &keys[0])
        .remote(keys[2].pub_key())
        .with_fixed_ephemeral(&keys[1])
        .build()
        .unwrap();
    let peer_task = {
        let wire = wire.clone();
        let frames: Vec<Value> = v["transport_frames"].as_array().unwrap().clone();
        tokio::spawn(async move {
            let mut m1 = vec![0u8; wire[0].len()];
            peer.read_exact(&mut m1).await.unwrap();
            assert_eq!(m1, wire[0]);
            peer.write_all(&wire[1]).await.unwrap();
            let mut m3 = vec![0u8; wire[2].len()];
            peer.read_exact(&mut m3).await.unwrap();
            assert_eq!(m3, wire[2]);
            for f in &frames {
                let w = hx(f, "wire_bytes");
                if s(f, "from") == "initiator" {
                    let mut got = vec![0u8; w.len()];
                    peer.read_exact(&mut got).await.unwrap();
                    assert_eq!(hex::encode(got), hex::encode(&w));
                } else {
                    peer.write_all(&w).await.unwrap();
                }
            }
            peer
        })
    };
    let mut stream = NoiseStream::handshake(ours, hs, std::time::Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(stream.remote_pk(), &keys[2].pub_key());
    for f in v["transport_frames"].as_array().unwrap() {
        let pt = hx(f, "plaintext_hex");
        if s(f, "from") == "initiator" {
            stream.write_all(&pt).await.unwrap();
            stream.flush().await.unwrap();
        } else {
            let mut got = vec![0u8; pt.len()];
            stream.read_exact(&mut got).await.unwrap();
            assert_eq!(got, pt);
        }
    }
    peer_task.await.unwrap();
}
