//! Key, signature and address decoders: `PubKey::from_bytes` / `from_hex` / serde,
//! `SecKey::from_bytes` / `from_hex`, `Sig::from_bytes(..).recover(hash)` and dmsg `Addr` text.
//!
//! Layout: the whole input is tried as bytes and (when UTF-8) as text; in addition the first
//! 33 bytes are tried as a public key, the first 32 as a secret key, and bytes 0..65 / 65..97 as
//! a signature and the hash it signs (seed: `keys.json` `signature_rfc6979 || sha256`).
//!
//! Properties checked besides "never panics":
//! * a parsed public key survives `to_hex` -> `from_hex`, `as_bytes` -> `from_bytes`, and JSON;
//! * a key recovered from a signature verifies that signature (`verify_hash`);
//! * a parsed `Addr` survives `to_string` -> `parse`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skywire_cipher::{PubKey, SecKey, Sig, verify_hash};
use skywire_dmsg::Addr;

fn check_pk(pk: &PubKey) {
    let hex = pk.to_hex();
    assert_eq!(PubKey::from_hex(&hex).ok(), Some(*pk), "hex round trip");
    assert_eq!(hex.parse::<PubKey>().ok(), Some(*pk));
    if pk.is_null() {
        assert!(
            PubKey::from_bytes(pk.as_bytes()).is_err(),
            "null key accepted as bytes"
        );
    } else {
        assert_eq!(
            PubKey::from_bytes(pk.as_bytes()).ok(),
            Some(*pk),
            "bytes round trip"
        );
    }
    let json = match serde_json::to_string(pk) {
        Ok(j) => j,
        Err(e) => panic!("serialising {pk} failed: {e}"),
    };
    assert_eq!(
        serde_json::from_str::<PubKey>(&json).ok(),
        Some(*pk),
        "JSON round trip"
    );
}

fuzz_target!(|data: &[u8]| {
    if let Ok(pk) = PubKey::from_bytes(data) {
        check_pk(&pk);
    }
    if let Some(head) = data.get(..33)
        && let Ok(pk) = PubKey::from_bytes(head)
    {
        check_pk(&pk);
    }
    if let Some(head) = data.get(..32)
        && let Ok(sk) = SecKey::from_bytes(head)
    {
        check_pk(&sk.pub_key());
    }
    let _ = Sig::from_bytes(data);
    if data.len() >= 97 {
        let Ok(sig) = Sig::from_bytes(&data[..65]) else {
            panic!("65 bytes refused as a signature");
        };
        let mut hash = [0u8; 32];
        hash.copy_from_slice(&data[65..97]);
        if let Ok(pk) = sig.recover(&hash) {
            check_pk(&pk);
            if let Err(e) = verify_hash(&pk, &hash, &sig) {
                panic!("recovered key {pk} does not verify its own signature: {e}");
            }
        }
    }
    // JSON forms (a quoted hex string or an array of bytes).
    if let Ok(pk) = serde_json::from_slice::<PubKey>(data) {
        check_pk(&pk);
    }
    let _ = serde_json::from_slice::<Sig>(data);

    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(pk) = PubKey::from_hex(text) {
        check_pk(&pk);
        if !pk.is_null() {
            assert!(text.eq_ignore_ascii_case(&pk.to_hex()));
        }
    }
    if let Ok(sk) = SecKey::from_hex(text) {
        let _ = sk.pub_key();
    }
    if let Ok(sig) = Sig::from_hex(text) {
        assert!(text.eq_ignore_ascii_case(&sig.to_hex()));
    }
    if let Ok(addr) = text.parse::<Addr>() {
        let shown = addr.to_string();
        assert_eq!(
            shown.parse::<Addr>().ok(),
            Some(addr),
            "Addr text round trip: {shown}"
        );
    }
});
