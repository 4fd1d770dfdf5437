//! Reproduces `shared/spec/vectors/keys.json`: key derivation, RFC 6979 signatures, the
//! reference's acceptance rule on tampered signatures, and the noise DH output.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use serde_json::Value;
use skywire_cipher::{
    CipherError, PubKey, SecKey, Sig, ecdh, noise_dh, sha256, shared_point, sign_hash, verify_hash,
};

fn vectors() -> Value {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/spec/vectors");
    let path = dir.join("keys.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("test vectors missing at {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn s(v: &Value, k: &str) -> String {
    v[k].as_str()
        .unwrap_or_else(|| panic!("field {k} missing"))
        .to_string()
}

fn key_by_name(v: &Value, name: &str) -> SecKey {
    let k = v["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == name)
        .unwrap();
    SecKey::from_hex(&s(k, "secret_key")).unwrap()
}

#[test]
fn keys_derive_public_keys() {
    let v = vectors();
    let keys = v["keys"].as_array().unwrap();
    assert!(keys.len() >= 5);
    for k in keys {
        let sk = SecKey::from_hex(&s(k, "secret_key")).unwrap();
        let pk = sk.pub_key();
        assert_eq!(pk.to_hex(), s(k, "public_key"), "key {}", k["name"]);
        let parsed: PubKey = s(k, "public_key").parse().unwrap();
        assert_eq!(parsed, pk);
        // JSON round trip as a hex string.
        let j = serde_json::to_string(&pk).unwrap();
        assert_eq!(j, format!("\"{}\"", s(k, "public_key")));
        assert_eq!(serde_json::from_str::<PubKey>(&j).unwrap(), pk);
        // Derivation text: sha256("...") for the named keys.
        let d = s(k, "derivation");
        if let Some(inner) = d
            .strip_prefix("sha256(\"")
            .and_then(|r| r.strip_suffix("\")"))
        {
            assert_eq!(sk.as_bytes(), &sha256(inner.as_bytes()));
        }
    }
}

#[test]
fn rfc6979_signatures_are_byte_exact_and_verify() {
    let v = vectors();
    let sigs = v["signatures"].as_array().unwrap();
    assert!(!sigs.is_empty());
    for e in sigs {
        let sk = key_by_name(&v, e["signer"].as_str().unwrap());
        let pk: PubKey = s(e, "public_key").parse().unwrap();
        assert_eq!(sk.pub_key(), pk);
        let msg = hex::decode(s(e, "message_hex")).unwrap();
        let hash = sha256(&msg);
        assert_eq!(hex::encode(hash), s(e, "sha256"));
        let sig = sign_hash(&sk, &hash).unwrap();
        assert_eq!(sig.to_hex(), s(e, "signature_rfc6979"));
        verify_hash(&pk, &hash, &sig).unwrap();
        let random: Sig = s(e, "signature_reference_random_nonce").parse().unwrap();
        assert_eq!(e["reference_verifies_both"], true);
        verify_hash(&pk, &hash, &random).unwrap();
        assert_eq!(random.recover(&hash).unwrap(), pk);
    }
}

#[test]
fn negative_signatures_follow_the_reference_rule() {
    let v = vectors();
    let cases = v["negative_signatures"].as_array().unwrap();
    assert!(cases.len() >= 6);
    for c in cases {
        let pk: PubKey = s(c, "public_key").parse().unwrap();
        let hash: [u8; 32] = hex::decode(s(c, "sha256")).unwrap().try_into().unwrap();
        let sig: Sig = s(c, "signature").parse().unwrap();
        let got = verify_hash(&pk, &hash, &sig);
        assert_eq!(
            got.is_ok(),
            c["accepted_by_reference"].as_bool().unwrap(),
            "case {}: {got:?}",
            c["case"]
        );
    }
}

#[test]
fn dh_outputs_match() {
    let v = vectors();
    let dhs = v["dh"].as_array().unwrap();
    assert!(!dhs.is_empty());
    for d in dhs {
        let sk = key_by_name(&v, d["secret_key_of"].as_str().unwrap());
        let other = key_by_name(&v, d["public_key_of"].as_str().unwrap());
        let pk = other.pub_key();
        assert_eq!(
            hex::encode(shared_point(&sk, &pk).unwrap()),
            s(d, "shared_point_compressed")
        );
        assert_eq!(
            hex::encode(ecdh(&sk, &pk).unwrap()),
            s(d, "ecdh_sha256_of_point")
        );
        let out = noise_dh(&sk, &pk).unwrap();
        assert_eq!(hex::encode(out), s(d, "noise_dh_output_33"));
        if d["equals_reverse_direction"] == true {
            assert_eq!(noise_dh(&other, &sk.pub_key()).unwrap(), out);
        }
    }
}

#[test]
fn invalid_keys_are_errors() {
    // Secret keys: zero, the group order n, all ones, wrong length.
    assert_eq!(SecKey::from_bytes(&[0; 32]), Err(CipherError::SecKeyRange));
    let n =
        hex::decode("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141").unwrap();
    assert_eq!(SecKey::from_bytes(&n), Err(CipherError::SecKeyRange));
    assert_eq!(
        SecKey::from_bytes(&[0xff; 32]),
        Err(CipherError::SecKeyRange)
    );
    assert_eq!(
        SecKey::from_bytes(&[1; 31]),
        Err(CipherError::SecKeyLength(31))
    );
    assert!(SecKey::from_hex("zz").is_err());

    // Public keys: bad prefix, uncompressed, X >= p, X not on the curve, wrong length.
    let g = "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798";
    assert!(PubKey::from_hex(g).is_ok());
    let mut b = hex::decode(g).unwrap();
    b[0] = 0x04;
    assert_eq!(PubKey::from_bytes(&b), Err(CipherError::PubKeyPrefix(4)));
    b[0] = 0x05;
    assert_eq!(PubKey::from_bytes(&b), Err(CipherError::PubKeyPrefix(5)));
    let mut over_p = vec![0x02];
    over_p.extend_from_slice(&[0xff; 32]);
    assert_eq!(
        PubKey::from_bytes(&over_p),
        Err(CipherError::PubKeyNotOnCurve)
    );
    // x = 5 has no point on secp256k1 (5^3 + 7 = 132 is not a square mod p).
    let mut not_on_curve = vec![0x02];
    not_on_curve.extend_from_slice(&[0; 31]);
    not_on_curve.push(5);
    assert_eq!(
        PubKey::from_bytes(&not_on_curve),
        Err(CipherError::PubKeyNotOnCurve)
    );
    assert_eq!(
        PubKey::from_bytes(&[2; 32]),
        Err(CipherError::PubKeyLength(32))
    );
    assert!(PubKey::from_hex("02zz").is_err());
    // Upper-case hex is accepted; output is lower case.
    let up = PubKey::from_hex(&g.to_uppercase()).unwrap();
    assert_eq!(up.to_hex(), g);
    // DH against an invalid or null key is an error, never a panic.
    let sk = SecKey::generate();
    assert_eq!(noise_dh(&sk, &PubKey::NULL), Err(CipherError::NullPubKey));
    assert!(serde_json::from_str::<PubKey>("\"02ffff\"").is_err());
    assert_eq!(
        serde_json::from_str::<PubKey>("\"\"").unwrap(),
        PubKey::NULL
    );
}

#[test]
fn refuses_zero_hash() {
    let sk = SecKey::generate();
    assert_eq!(sign_hash(&sk, &[0; 32]), Err(CipherError::ZeroHash));
}
