//! Reproduces `dmsg_objects.json`: gob bytes of the dial objects, RFC 6979 signatures, the
//! `ReqHash` link, the reference's verification rules, and the four encrypted hops of a relay.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use serde_json::Value;
use skywire_cipher::{PubKey, SecKey, sha256};
use skywire_dmsg::{Addr, ErrorCode, SignedRequest, SignedResponse, StreamRequest, StreamResponse};
use skywire_noise::{TransportReceiver, TransportSender};

fn vectors() -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/spec/vectors/dmsg_objects.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("test vectors missing at {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn hexs(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap()).unwrap()
}

fn object<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == name)
        .unwrap_or_else(|| panic!("object {name}"))
}

fn key(v: &Value, name: &str) -> SecKey {
    let k = v["keys_used"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == name)
        .unwrap();
    SecKey::from_hex(k["secret_key"].as_str().unwrap()).unwrap()
}

fn addr(f: &Value) -> Addr {
    Addr::new(
        f["PK"].as_str().unwrap().parse().unwrap(),
        f["Port"].as_u64().unwrap() as u16,
    )
}

fn request_from_fields(f: &Value) -> StreamRequest {
    StreamRequest {
        timestamp: f["Timestamp"].as_i64().unwrap(),
        src_addr: addr(&f["SrcAddr"]),
        dst_addr: addr(&f["DstAddr"]),
        noise_msg: f
            .get("NoiseMsg")
            .map(|n| hex::decode(n.as_str().unwrap()).unwrap())
            .unwrap_or_default(),
    }
}

#[test]
fn requests_encode_sign_and_verify_byte_exact() {
    let v = vectors();
    for name in ["stream_request", "stream_request_no_noise"] {
        let o = object(&v, name);
        let req = request_from_fields(&o["fields"]);
        let sk = key(&v, o["signer"].as_str().unwrap());
        let signed = SignedRequest::sign(req.clone(), &sk).unwrap();
        assert_eq!(
            hex::encode(&signed.raw[65..]),
            o["gob"].as_str().unwrap(),
            "{name} gob"
        );
        assert_eq!(
            hex::encode(&signed.raw[..65]),
            o["signature_rfc6979"].as_str().unwrap()
        );
        assert_eq!(signed.raw, hexs(&o["signed_object"]));
        assert_eq!(
            hex::encode(signed.hash()),
            o["signed_object_sha256"].as_str().unwrap()
        );
        signed.verify().unwrap();
        let parsed = SignedRequest::parse(hexs(&o["signed_object"])).unwrap();
        assert_eq!(parsed.req, req);
        parsed.verify().unwrap();
    }
}

#[test]
fn responses_encode_sign_and_verify_byte_exact() {
    let v = vectors();
    let req_o = object(&v, "stream_request");
    let req = SignedRequest::parse(hexs(&req_o["signed_object"])).unwrap();
    for name in ["stream_response", "stream_response_rejected"] {
        let o = object(&v, name);
        let f = &o["fields"];
        let resp = StreamResponse {
            req_hash: skywire_dmsg::Sha256(hexs(&f["ReqHash"]).try_into().unwrap()),
            accepted: f["Accepted"].as_bool().unwrap(),
            err_code: f["ErrCode"].as_u64().unwrap_or(0) as u16,
            noise_msg: f
                .get("NoiseMsg")
                .map(|n| hex::decode(n.as_str().unwrap()).unwrap())
                .unwrap_or_default(),
        };
        let sk = key(&v, o["signer"].as_str().unwrap());
        let signed = SignedResponse::sign(resp.clone(), &sk).unwrap();
        // A fresh process numbers the response types 64/65 (the canonical preamble of spec 4.5).
        let fresh = skywire_gob::to_vec(&resp).unwrap();
        assert_eq!(&signed.raw[65..], &fresh[..]);
        assert!(hex::encode(&fresh).starts_with("4e7f0301010e53747265616d526573706f6e7365"));
        // The generator had encoded a request first, so its ids are 67/68: reproduce that with
        // one registry shared by both encoders, as inside one Go process.
        let reg = skywire_gob::SharedRegistry::new();
        let mut scratch = Vec::new();
        skywire_gob::Encoder::with_shared_registry(reg.clone())
            .encode(&req.req, &mut scratch)
            .unwrap();
        let mut gob = Vec::new();
        skywire_gob::Encoder::with_shared_registry(reg)
            .encode(&resp, &mut gob)
            .unwrap();
        assert_eq!(hex::encode(&gob), o["gob"].as_str().unwrap(), "{name}");
        let same_process = SignedResponse::sign_gob(resp.clone(), gob, &sk).unwrap();
        assert_eq!(same_process.raw, hexs(&o["signed_object"]));
        let parsed = SignedResponse::parse(signed.raw.clone()).unwrap();
        assert_eq!(parsed.resp, resp);
        let verdict = parsed.verify(&req);
        if resp.accepted {
            verdict.unwrap();
            // The same response does not verify against another request.
            let other = SignedRequest::parse(hexs(
                &object(&v, "stream_request_no_noise")["signed_object"],
            ))
            .unwrap();
            assert_eq!(
                parsed.verify(&other).unwrap_err().error_code(),
                Some(ErrorCode::RespHashMismatch)
            );
        } else {
            assert_eq!(
                verdict.unwrap_err().error_code(),
                Some(ErrorCode::NoListener)
            );
        }
    }
}

#[test]
fn newer_layouts_decode_and_verify() {
    let v = vectors();
    let req_o = object(&v, "newer_stream_request_ipinfo");
    let req = SignedRequest::parse(hexs(&req_o["signed_object"])).unwrap();
    req.verify().unwrap();
    let resp_o = object(&v, "newer_stream_response_ipinfo");
    let resp = SignedResponse::parse(hexs(&resp_o["signed_object"])).unwrap();
    assert!(resp.resp.accepted);
    assert_eq!(
        hex::encode(resp.resp.req_hash.0),
        resp_o["fields"]["ReqHash"].as_str().unwrap()
    );
}

#[test]
fn all_zero_request_is_refused() {
    let v = vectors();
    let o = object(&v, "stream_request_all_zero_except_timestamp");
    let gob = hexs(&o["gob"]);
    let req: StreamRequest = skywire_gob::from_slice(&gob).unwrap();
    assert_eq!(req.timestamp, 1);
    assert!(req.src_addr.pk.is_null());
    assert_eq!(skywire_gob::to_vec(&req).unwrap(), gob);
    // Signed by anyone, it fails Verify(0) on the null source key.
    let sk = SecKey::generate();
    let signed = SignedRequest::sign(req, &sk).unwrap();
    assert_eq!(
        signed.verify().unwrap_err().error_code(),
        Some(ErrorCode::InvalidSrcPk)
    );
}

#[test]
fn tampering_is_detected() {
    let v = vectors();
    let o = object(&v, "stream_request");
    let mut raw = hexs(&o["signed_object"]);
    // Flip a bit of the destination port inside the gob bytes: still decodes, signature fails.
    let last = raw.len() - 3;
    raw[last] ^= 0x01;
    if let Ok(r) = SignedRequest::parse(raw) {
        assert!(r.verify().is_err());
    }
    assert_eq!(
        SignedRequest::parse(vec![0; 65]).unwrap_err().error_code(),
        Some(ErrorCode::SignedObjectTooShort)
    );
    // A request signed by someone other than SrcAddr.PK is refused.
    let mut req = request_from_fields(&o["fields"]);
    req.noise_msg.clear();
    let signed = SignedRequest::sign(req, &key(&v, "B")).unwrap();
    assert_eq!(
        signed.verify().unwrap_err().error_code(),
        Some(ErrorCode::InvalidReqSignature)
    );
}

#[test]
fn relay_hops_are_byte_exact() {
    let v = vectors();
    let sessions = v["sessions"].as_array().unwrap();
    let send_key = |session: &str, writer: &str| -> [u8; 32] {
        let s = sessions
            .iter()
            .find(|s| {
                s["name"]
                    .as_str()
                    .unwrap()
                    .starts_with(&format!("session {session}"))
            })
            .unwrap();
        let field = if writer.starts_with('S') {
            "derived_responder_send_key"
        } else {
            "derived_initiator_send_key"
        };
        hexs(&s[field]).try_into().unwrap()
    };
    let hops = v["relay_wire_sequence"].as_array().unwrap();
    assert_eq!(hops.len(), 4);
    for hop in hops {
        let key = send_key(
            hop["session"].as_str().unwrap(),
            hop["writer"].as_str().unwrap(),
        );
        let object_name = hop["object"].as_str().unwrap().split(' ').next().unwrap();
        let plain = hexs(&object(&v, object_name)["signed_object"]);
        let mut tx = TransportSender::new(&key).unwrap();
        let mut wire = Vec::new();
        let nonce = tx.seal_object(&plain, &mut wire).unwrap();
        assert_eq!(nonce, hop["nonce"].as_u64().unwrap());
        assert_eq!(wire, hexs(&hop["wire_bytes"]), "{}", hop["hop"]);
        let rx = TransportReceiver::new(&key).unwrap();
        let mut body = wire[2..].to_vec();
        let (n, opened) = rx.open_object(&mut body).unwrap();
        assert_eq!(n, 1);
        assert_eq!(opened, &plain[..]);
    }
    // The session keys come from the recorded XK handshakes; the relay hops use the same
    // request bytes on both sessions, linked by SHA-256.
    let req = hexs(&object(&v, "stream_request")["signed_object"]);
    let resp =
        SignedResponse::parse(hexs(&object(&v, "stream_response")["signed_object"])).unwrap();
    assert_eq!(resp.resp.req_hash.0, sha256(&req));
    let _: PubKey = key(&v, "S").pub_key();
}
