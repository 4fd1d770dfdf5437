//! Reproduces `shared/spec/vectors/disc_entry.json` (signed payload bytes, SHA-256, RFC 6979
//! signatures, POSTed JSON, verification edge cases) and the real entries of
//! `live_trace.json`, plus property tests: JSON round trip and sign/verify of random entries.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use proptest::prelude::*;
use serde_json::Value;
use skywire_cipher::{PubKey, SecKey, Sig, sha256, sign_payload};
use skywire_dmsg::disc::{Client, Entry, Server, ValidationError};

fn vector(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/spec/vectors")
        .join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("test vectors missing at {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap()
}

fn secret_of(v: &Value, static_hex: &str) -> SecKey {
    let k = v["keys_used"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| s(&k["public_key"]) == static_hex)
        .unwrap();
    let sk = SecKey::from_hex(s(&k["secret_key"])).unwrap();
    assert_eq!(sk.pub_key().to_hex(), static_hex);
    sk
}

#[test]
fn entries_byte_exact() {
    let v = vector("disc_entry.json");
    let entries = v["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 5);
    for case in entries {
        let name = s(&case["name"]);
        let posted = s(&case["entry_json"]);
        let payload = s(&case["signed_payload_json"]);

        let e = Entry::from_json(posted.as_bytes()).unwrap();
        // Re-serialisation reproduces both texts byte for byte.
        assert_eq!(e.to_json(), posted, "{name}: entry_json");
        assert_eq!(e.signed_payload(), payload, "{name}: signed payload");
        assert_eq!(
            hex::encode(sha256(payload.as_bytes())),
            s(&case["signed_payload_sha256"]),
            "{name}: sha256"
        );
        assert!(case["reference_verify_signature_ok"].as_bool().unwrap());
        e.verify_signature()
            .unwrap_or_else(|err| panic!("{name}: {err}"));

        // RFC 6979 signing reproduces the signature byte for byte, both through the cipher
        // crate and through Entry::sign.
        let sk = secret_of(&v, &e.static_pk.to_hex());
        let want = s(&case["signature_rfc6979"]);
        assert_eq!(
            sign_payload(&sk, payload.as_bytes()).unwrap().to_hex(),
            want,
            "{name}: sign_payload"
        );
        let mut resigned = e.clone();
        resigned.signature = None;
        resigned.sign(&sk).unwrap();
        assert_eq!(
            resigned.signature.unwrap().to_hex(),
            want,
            "{name}: Entry::sign"
        );
        assert_eq!(resigned.to_json(), posted, "{name}: signed entry text");
        assert_eq!(resigned.validate(false), Ok(()), "{name}");
    }
}

#[test]
fn empty_list_and_null_are_distinct_signed_texts() {
    let v = vector("disc_entry.json");
    let by_name = |n: &str| {
        let c = v["entries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| s(&c["name"]) == n)
            .unwrap();
        Entry::from_json(s(&c["entry_json"]).as_bytes()).unwrap()
    };
    let empty = by_name("client_entry_no_servers_empty_list");
    let nil = by_name("client_entry_no_servers_nil_list");
    assert_eq!(
        empty.client,
        Some(Client {
            delegated_servers: Some(vec![])
        })
    );
    assert_eq!(
        nil.client,
        Some(Client {
            delegated_servers: None
        })
    );
    // Swapping `[]` and `null` under the same signature breaks verification both ways.
    let mut swapped = empty.clone();
    swapped.client = Some(Client {
        delegated_servers: None,
    });
    assert!(swapped.verify_signature().is_err());
    let mut swapped = nil.clone();
    swapped.client = Some(Client {
        delegated_servers: Some(vec![]),
    });
    assert!(swapped.verify_signature().is_err());
}

#[test]
fn edge_cases() {
    let v = vector("disc_entry.json");
    for case in v["edge_cases"].as_array().unwrap() {
        let name = s(&case["name"]);
        let e = Entry::from_json(s(&case["entry_json"]).as_bytes()).unwrap();
        let ok = case["reference_verify_signature_ok"].as_bool().unwrap();
        assert_eq!(e.verify_signature().is_ok(), ok, "{name}");
    }
}

#[test]
fn tampering_fails_and_unknown_fields_are_dropped() {
    let v = vector("disc_entry.json");
    let posted = s(&v["entries"][0]["entry_json"]);
    let e = Entry::from_json(posted.as_bytes()).unwrap();
    e.verify_signature().unwrap();

    let mut t = e.clone();
    t.timestamp += 1;
    assert!(t.verify_signature().is_err());
    let mut t = e.clone();
    t.version = "0.0.2".into();
    assert!(t.verify_signature().is_err());
    let mut t = e.clone();
    t.client = Some(Client {
        delegated_servers: Some(vec![]),
    });
    assert!(t.verify_signature().is_err());
    let mut t = e.clone();
    let mut sig = *t.signature.unwrap().as_bytes();
    sig[10] ^= 1;
    t.signature = Some(Sig::from_bytes(&sig).unwrap());
    assert!(t.verify_signature().is_err());

    // An extra unknown key (and upper-case keys) in the posted document does not matter: it is
    // dropped before re-serialisation, as in the reference.
    let extra = posted.replacen('{', r#"{"unknown_field":[1,2,{"x":null}],"#, 1);
    let extra = extra.replace("\"sequence\"", "\"Sequence\"");
    let e2 = Entry::from_json(extra.as_bytes()).unwrap();
    assert_eq!(e2, e);
    e2.verify_signature().unwrap();

    // No signature: validation error, and verify says so.
    let mut t = e.clone();
    t.signature = None;
    assert_eq!(t.validate(false), Err(ValidationError::NoSignature));
    assert!(t.verify_signature().is_err());
}

#[test]
fn live_trace_entries_verify_and_reserialise() {
    let v = vector("live_trace.json");
    let mut seen = 0;
    for x in v["discovery_http"].as_array().unwrap() {
        let req = s(&x["request"]);
        if x["status"].as_u64() != Some(200) {
            continue;
        }
        let body = s(&x["body"]);
        if req.starts_with("GET /dmsg-discovery/entry/") {
            let e = Entry::from_json(body.as_bytes()).unwrap();
            assert_eq!(e.to_json(), body);
            e.verify_signature().unwrap();
            seen += 1;
        } else if req.ends_with("_servers") {
            let list: Vec<Entry> = serde_json::from_str(body).unwrap();
            assert_eq!(skywire_dmsg::disc::entries_to_json(&list), body);
            for e in &list {
                e.verify_signature().unwrap();
            }
            seen += 1;
        }
    }
    for (key, rec) in v["redis_snapshot"].as_object().unwrap() {
        if rec["type"] == "string" {
            let text = s(&rec["value"]);
            let e = Entry::from_json(text.as_bytes()).unwrap();
            assert_eq!(e.to_json(), text);
            assert_eq!(&e.static_pk.to_hex(), key);
            e.verify_signature().unwrap();
            seen += 1;
        }
    }
    assert!(seen >= 8, "only {seen} entries checked");
}

#[test]
fn server_entry_json_shape() {
    let sk = SecKey::from_hex(&"11".repeat(32)).unwrap();
    let mut e = Entry::new_server(sk.pub_key(), 3, "203.0.113.7:8081", 2048);
    e.timestamp = 1_700_000_000_000_000_000;
    assert_eq!(
        e.signed_payload(),
        format!(
            r#"{{"version":"0.0.1","sequence":3,"timestamp":1700000000000000000,"static":"{}","server":{{"address":"203.0.113.7:8081","availableSessions":2048}}}}"#,
            sk.pub_key()
        )
    );
    let null_static = Entry {
        version: "0.0.1".into(),
        ..Entry::default()
    };
    assert!(
        null_static
            .to_json()
            .contains(&format!("\"static\":\"{}\"", "0".repeat(66)))
    );
}

// ---------------------------------------------------------------------------------------------
// Property tests

fn arb_pubkey() -> impl Strategy<Value = PubKey> {
    any::<u8>().prop_map(|n| {
        let mut b = [7u8; 32];
        b[0] = n.max(1) >> 1 | 1;
        SecKey::from_bytes(&b).unwrap().pub_key()
    })
}

fn weird_string() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ -~]{0,24}",
        "\\PC{0,16}",
        proptest::collection::vec(any::<char>(), 0..16).prop_map(|v| v.into_iter().collect()),
        Just("\"\\\n\r\t\u{0}\u{1f}\u{7f}<>&\u{2028}\u{2029}é😀".to_owned()),
    ]
}

fn arb_entry() -> impl Strategy<Value = (Entry, u8)> {
    (
        any::<u8>(),
        any::<u64>(),
        any::<i64>(),
        weird_string(),
        prop::option::of(prop::option::of(prop::collection::vec(arb_pubkey(), 0..4))),
        prop::option::of((weird_string(), any::<i64>(), weird_string(), any::<bool>())),
        weird_string(),
    )
        .prop_map(|(k, sequence, timestamp, version, client, server, extra)| {
            let sk = secret(k);
            let mut e = Entry {
                version,
                sequence,
                timestamp,
                static_pk: sk.pub_key(),
                client: client.map(|delegated_servers| Client { delegated_servers }),
                ..Entry::default()
            };
            if let Some((address, avail, v6, dht)) = server {
                e.server = Some(Server {
                    address,
                    available_sessions: avail,
                    address_v6: v6,
                    dht_bootstrap: dht,
                    ..Server::default()
                });
            }
            if k % 3 == 0 {
                e.protocol = extra;
            }
            (e, k)
        })
}

fn secret(k: u8) -> SecKey {
    let mut b = [0x42u8; 32];
    b[31] = k;
    SecKey::from_bytes(&b).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn round_trip_and_sign_verify((mut e, k) in arb_entry()) {
        let sk = secret(k);
        e.sign(&sk).unwrap();
        let text = e.to_json();
        // serde_json agrees the text is valid JSON with the same strings.
        let generic: Value = serde_json::from_str(&text).unwrap();
        prop_assert_eq!(generic["version"].as_str().unwrap(), e.version.as_str());
        let back = Entry::from_json(text.as_bytes()).unwrap();
        prop_assert_eq!(&back, &e);
        prop_assert_eq!(back.to_json(), text.clone());
        back.verify_signature().unwrap();
        // Pretty-printed (reordered whitespace) input still verifies.
        let pretty = serde_json::to_string_pretty(&generic).unwrap();
        Entry::from_json(pretty.as_bytes()).unwrap().verify_signature().unwrap();
        // Any change of the sequence breaks the signature.
        let mut t = back.clone();
        t.sequence = t.sequence.wrapping_add(1);
        prop_assert!(t.verify_signature().is_err());
    }

    #[test]
    fn parsing_arbitrary_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = Entry::from_json(&bytes);
        let _ = Entry::from_json_prefix(&bytes);
    }
}
