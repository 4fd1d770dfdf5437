//! dmsg dial objects (`dmsg_objects.json`, dmsg-wire.md 4.5 and 7): decode every vector into the
//! 2023 structs, the newer structs and `Value`; re-encode byte-exactly; check the preambles.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use serde::Deserialize;
use skywire_cipher::PubKey;
use skywire_gob::{Decoder, Encoder, Error, GobType, SharedRegistry, Value};

#[derive(Debug, Clone, Default, PartialEq, Deserialize, GobType)]
#[serde(default, rename_all = "PascalCase")]
struct Addr {
    #[serde(rename = "PK")]
    pk: PubKey,
    port: u16,
}

/// Go `type SHA256 [32]byte`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize, GobType)]
#[gob(name = "SHA256")]
struct Sha256(pub [u8; 32]);

#[derive(Debug, Clone, Default, PartialEq, Deserialize, GobType)]
#[serde(default, rename_all = "PascalCase")]
struct StreamRequest {
    timestamp: i64,
    src_addr: Addr,
    dst_addr: Addr,
    #[serde(with = "serde_bytes")]
    noise_msg: Vec<u8>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, GobType)]
#[serde(default, rename_all = "PascalCase")]
struct StreamResponse {
    req_hash: Sha256,
    accepted: bool,
    err_code: u16,
    noise_msg: Vec<u8>,
}

/// 2024-2026 request layout.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, GobType)]
#[serde(default, rename_all = "PascalCase")]
#[gob(name = "StreamRequest")]
struct NewerStreamRequest {
    timestamp: i64,
    src_addr: Addr,
    dst_addr: Addr,
    #[serde(rename = "IPinfo")]
    ip_info: bool,
    geo_info: bool,
    noise_msg: Vec<u8>,
}

/// Go `net.IP` (`type IP []byte`: gob sends it as a plain `[]byte`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, GobType)]
#[gob(name = "IP")]
struct NetIp(Vec<u8>);

#[derive(Debug, Clone, Default, PartialEq, Deserialize, GobType)]
#[serde(default, rename_all = "PascalCase")]
#[gob(name = "StreamResponse")]
struct NewerStreamResponse {
    req_hash: Sha256,
    accepted: bool,
    #[serde(rename = "IP")]
    ip: NetIp,
    geo_country: String,
    geo_region: String,
    geo_lat: f64,
    geo_lon: f64,
    err_code: u16,
    noise_msg: Vec<u8>,
}

const REQ_PREAMBLE: &str = "4f7f0301010d53747265616d5265717565737401ff80000104010954696d657374616d7001040001075372634164647201ff820001074473744164647201ff820001084e6f6973654d7367010a00000023ff81030101044164647201ff820001020102504b01ff84000104506f7274010600000012ff83060101065075624b657901ff84000000";
const RESP_PREAMBLE: &str = "4e7f0301010e53747265616d526573706f6e736501ff8000010401075265714861736801ff8200010841636365707465640102000107457272436f646501060001084e6f6973654d7367010a00000016ff810101010653484132353601ff8200010601400000";

struct Obj {
    name: String,
    gob: Vec<u8>,
    fields: serde_json::Value,
    decoded: serde_json::Value,
}

fn objects() -> Vec<Obj> {
    let doc: serde_json::Value =
        serde_json::from_str(&common::read_vector("dmsg_objects.json")).unwrap();
    let objs = doc["objects"].as_array().unwrap();
    assert_eq!(objs.len(), 7, "expected 7 dmsg objects");
    objs.iter()
        .map(|o| Obj {
            name: o["name"].as_str().unwrap().to_owned(),
            gob: hex::decode(o["gob"].as_str().unwrap()).unwrap(),
            fields: o["fields"].clone(),
            decoded: o["decoded_by_independent_gob_reader"][0].clone(),
        })
        .collect()
}

fn obj(name: &str) -> Obj {
    objects().into_iter().find(|o| o.name == name).unwrap()
}

fn pk(v: &serde_json::Value) -> PubKey {
    v.as_str().map_or(PubKey::NULL, |s| s.parse().unwrap())
}

fn addr(v: &serde_json::Value) -> Addr {
    Addr {
        pk: pk(&v["PK"]),
        port: v["Port"].as_u64().unwrap_or(0) as u16,
    }
}

fn hexfield(v: &serde_json::Value) -> Vec<u8> {
    v.as_str()
        .map(|s| hex::decode(s).unwrap())
        .unwrap_or_default()
}

fn expected_request(f: &serde_json::Value) -> StreamRequest {
    StreamRequest {
        timestamp: f["Timestamp"].as_i64().unwrap(),
        src_addr: addr(&f["SrcAddr"]),
        dst_addr: addr(&f["DstAddr"]),
        noise_msg: hexfield(&f["NoiseMsg"]),
    }
}

fn expected_response(f: &serde_json::Value) -> StreamResponse {
    StreamResponse {
        req_hash: Sha256(hexfield(&f["ReqHash"]).try_into().unwrap()),
        accepted: f["Accepted"].as_bool().unwrap(),
        err_code: f["ErrCode"].as_u64().unwrap_or(0) as u16,
        noise_msg: hexfield(&f["NoiseMsg"]),
    }
}

#[test]
fn every_object_decodes_to_value_like_the_independent_reader() {
    for o in objects() {
        let v =
            skywire_gob::from_slice_dynamic(&o.gob).unwrap_or_else(|e| panic!("{}: {e}", o.name));
        assert_eq!(common::value_to_json(&v), o.decoded, "{}", o.name);
        // Struct names come from the definitions.
        let Value::Struct { name, .. } = &v else {
            panic!("not a struct")
        };
        assert!(name.starts_with("Stream"), "{}", o.name);
    }
}

#[test]
fn requests_decode_into_2023_struct_and_reencode_exactly() {
    for name in [
        "stream_request",
        "stream_request_no_noise",
        "stream_request_all_zero_except_timestamp",
    ] {
        let o = obj(name);
        let got: StreamRequest = skywire_gob::from_slice(&o.gob).unwrap();
        assert_eq!(got, expected_request(&o.fields), "{name}");
        // Fresh encoder per object: ids 64/65/66 as in the vectors.
        let bytes = skywire_gob::to_vec(&got).unwrap();
        assert_eq!(hex::encode(&bytes), hex::encode(&o.gob), "{name}");
        assert!(hex::encode(&bytes).starts_with(REQ_PREAMBLE));
    }
}

#[test]
fn responses_decode_into_2023_struct() {
    for name in ["stream_response", "stream_response_rejected"] {
        let o = obj(name);
        let got: StreamResponse = skywire_gob::from_slice(&o.gob).unwrap();
        assert_eq!(got, expected_response(&o.fields), "{name}");
        // A fresh encoder (fresh process) numbers the response 64/65: the canonical preamble.
        let fresh = skywire_gob::to_vec(&got).unwrap();
        assert!(hex::encode(&fresh).starts_with(RESP_PREAMBLE), "{name}");
        assert_eq!(
            skywire_gob::from_slice::<StreamResponse>(&fresh).unwrap(),
            got
        );
    }
}

#[test]
fn preambles_are_prefix_of_fresh_encoder_output() {
    let req = skywire_gob::to_vec(&StreamRequest::default()).unwrap();
    assert_eq!(hex::encode(&req[..135]), REQ_PREAMBLE);
    let resp = skywire_gob::to_vec(&StreamResponse::default()).unwrap();
    assert_eq!(hex::encode(&resp[..102]), RESP_PREAMBLE);
    // All-zero response: 32 zero array elements, nothing else.
    let mut want = hex::decode(RESP_PREAMBLE).unwrap();
    want.extend_from_slice(&[0x25, 0xff, 0x80, 0x01, 0x20]);
    want.extend_from_slice(&[0; 32]);
    want.push(0);
    assert_eq!(hex::encode(resp), hex::encode(want));
}

/// The generating process registered StreamRequest/Addr/PubKey (64-66), StreamResponse/SHA256
/// (67/68), then the newer layouts (69, 70); each object used a fresh encoder. A shared registry
/// fed in that order reproduces every vector byte for byte.
#[test]
fn generator_process_ids_reproduce_all_vectors() {
    let reg = SharedRegistry::new();
    let enc = |v: &dyn Fn(&mut Encoder, &mut Vec<u8>)| {
        let mut e = Encoder::with_shared_registry(reg.clone());
        let mut out = Vec::new();
        v(&mut e, &mut out);
        out
    };
    for o in objects() {
        let bytes = match o.name.as_str() {
            n if n.starts_with("stream_request") => {
                let v: StreamRequest = skywire_gob::from_slice(&o.gob).unwrap();
                enc(&|e, out| e.encode(&v, out).unwrap())
            }
            n if n.starts_with("stream_response") => {
                let v: StreamResponse = skywire_gob::from_slice(&o.gob).unwrap();
                enc(&|e, out| e.encode(&v, out).unwrap())
            }
            "newer_stream_request_ipinfo" => {
                let v: NewerStreamRequest = skywire_gob::from_slice(&o.gob).unwrap();
                enc(&|e, out| e.encode(&v, out).unwrap())
            }
            "newer_stream_response_ipinfo" => {
                let v: NewerStreamResponse = skywire_gob::from_slice(&o.gob).unwrap();
                enc(&|e, out| e.encode(&v, out).unwrap())
            }
            other => panic!("unknown object {other}"),
        };
        assert_eq!(hex::encode(bytes), hex::encode(&o.gob), "{}", o.name);
    }
}

#[test]
fn newer_objects_decode_into_both_layouts() {
    let o = obj("newer_stream_request_ipinfo");
    let old: StreamRequest = skywire_gob::from_slice(&o.gob).unwrap();
    assert_eq!(old, expected_request(&o.fields));
    let new: NewerStreamRequest = skywire_gob::from_slice(&o.gob).unwrap();
    assert!(new.ip_info && new.geo_info);
    assert_eq!(new.timestamp, old.timestamp);
    assert_eq!(new.src_addr, old.src_addr);
    assert_eq!(new.dst_addr, old.dst_addr);

    let o = obj("newer_stream_response_ipinfo");
    let old: StreamResponse = skywire_gob::from_slice(&o.gob).unwrap();
    assert_eq!(old, expected_response(&o.fields));
    let new: NewerStreamResponse = skywire_gob::from_slice(&o.gob).unwrap();
    assert_eq!(new.ip, NetIp(vec![203, 0, 113, 50]));
    assert_eq!(new.geo_country, "DE");
    assert_eq!(new.geo_region, "BE");
    assert_eq!(new.geo_lat, 52.52);
    assert_eq!(new.geo_lon, 13.405);
    assert!(new.accepted);
    assert_eq!(new.req_hash, old.req_hash);
}

#[test]
fn newer_struct_with_fresh_encoder_round_trips() {
    let o = obj("newer_stream_response_ipinfo");
    let new: NewerStreamResponse = skywire_gob::from_slice(&o.gob).unwrap();
    let fresh = skywire_gob::to_vec(&new).unwrap();
    // Same bytes except the type ids (fresh process: 64/65 instead of 70/68; the definition id
    // -64 is the one-byte `7f`).
    assert_eq!(fresh.len() + 1, o.gob.len());
    let back: NewerStreamResponse = skywire_gob::from_slice(&fresh).unwrap();
    assert_eq!(back, new);
    let old: StreamResponse = skywire_gob::from_slice(&fresh).unwrap();
    assert!(old.accepted);
}

#[test]
fn pk_must_be_binary_marshaler() {
    // An Addr whose PK is a plain []byte: Go rejects it; so must we.
    #[derive(Debug, Default, Deserialize, GobType)]
    #[serde(default, rename_all = "PascalCase")]
    #[gob(name = "Addr")]
    struct BytesAddr {
        #[serde(rename = "PK")]
        pk: Vec<u8>,
        port: u16,
    }
    let bad = skywire_gob::to_vec(&BytesAddr {
        pk: vec![2; 33],
        port: 1,
    })
    .unwrap();
    let err = skywire_gob::from_slice::<Addr>(&bad).unwrap_err();
    assert!(matches!(err, Error::TypeMismatch(_)), "{err}");
    assert!(err.to_string().contains("PK"), "{err}");
    assert!(err.to_string().contains("BinaryMarshaler"), "{err}");

    // And the reverse: a wire PubKey into a []byte field.
    let o = obj("stream_request");
    let mut dec = Decoder::new();
    #[derive(Debug, Default, Deserialize, GobType)]
    #[serde(default, rename_all = "PascalCase")]
    #[gob(name = "StreamRequest")]
    struct Loose {
        src_addr: BytesAddr,
    }
    let err = dec.decode_value::<Loose>(&o.gob).unwrap_err();
    assert!(err.to_string().contains("BinaryMarshaler"), "{err}");
}

#[test]
fn req_hash_must_be_array_of_32() {
    #[derive(Debug, Default, Deserialize, GobType)]
    #[serde(default, rename_all = "PascalCase")]
    #[gob(name = "StreamResponse")]
    struct Short {
        req_hash: [u8; 16],
    }
    let o = obj("stream_response");
    let err = skywire_gob::from_slice::<Short>(&o.gob).unwrap_err();
    assert!(matches!(err, Error::TypeMismatch(_)), "{err}");
}

#[test]
fn truncated_objects_need_more_and_never_panic() {
    for o in objects() {
        for cut in 0..o.gob.len() {
            let mut dec = Decoder::new();
            match dec.decode_value::<StreamRequest>(&o.gob[..cut]) {
                Ok(None) => {}
                Ok(Some(_)) => panic!("{} decoded from a prefix of {cut}", o.name),
                Err(e) => panic!("{} prefix {cut}: {e}", o.name),
            }
            assert!(
                Decoder::new()
                    .decode_dynamic(&o.gob[..cut])
                    .unwrap()
                    .is_none()
            );
        }
    }
}

#[test]
fn redefinition_is_rejected() {
    let o = obj("stream_request");
    let mut dec = Decoder::new();
    let (_, used) = dec.decode_value::<StreamRequest>(&o.gob).unwrap().unwrap();
    assert_eq!(used, o.gob.len());
    // Same stream again: the definitions of 64.. are repeated.
    let err = dec.decode_value::<StreamRequest>(&o.gob).unwrap_err();
    assert_eq!(err, Error::Redefinition(64));
}
