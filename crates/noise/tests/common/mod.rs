//! Shared helpers for the integration tests: locating and parsing the spec vectors.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use serde_json::Value;
use skywire_cipher::{PubKey, SecKey};

/// `shared/spec/vectors`, next to the repository (`/work/main` + `/work/shared`, same in CI).
pub fn vectors_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/spec/vectors");
    assert!(
        dir.join("noise_xk.json").is_file(),
        "spec vectors not found at {} (expected shared/ next to the repository)",
        dir.display()
    );
    dir
}

pub fn load(name: &str) -> Value {
    let path = vectors_dir().join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read vector file {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("bad JSON in {}: {e}", path.display()))
}

pub fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("missing string field {key:?} in {v}"))
}

pub fn hx(v: &Value, key: &str) -> Vec<u8> {
    hex::decode(s(v, key)).unwrap_or_else(|e| panic!("bad hex in {key:?}: {e}"))
}

pub fn sec(v: &Value, key: &str) -> SecKey {
    SecKey::from_bytes(&hx(v, key)).expect("valid secret key")
}

pub fn public(v: &Value, key: &str) -> PubKey {
    PubKey::from_bytes(&hx(v, key)).expect("valid public key")
}

pub fn key32(v: &Value, key: &str) -> [u8; 32] {
    hx(v, key).try_into().expect("32-byte key")
}
