//! Shared helpers for the integration tests: locating the shared vectors and turning dynamic
//! values into the JSON shape used by `decoded_by_independent_gob_reader`.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use skywire_gob::Value;

/// `shared/spec/vectors`, beside the repository clone. Panics loudly when missing.
pub fn vectors_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/spec/vectors");
    assert!(
        dir.is_dir(),
        "test vectors directory missing: {} (shared/ must sit beside the repository)",
        dir.display()
    );
    dir
}

pub fn read_vector(name: &str) -> String {
    let p = vectors_dir().join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()))
}

/// JSON rendering: structs as objects (sent fields only), bytes/opaque/uint8-arrays as hex.
pub fn value_to_json(v: &Value) -> serde_json::Value {
    use serde_json::json;
    match v {
        Value::Bool(b) => json!(b),
        Value::Int(i) => json!(i),
        Value::Uint(u) => json!(u),
        Value::Float(f) => json!(f),
        Value::Complex(a, b) => json!([a, b]),
        Value::Bytes(b) => json!(hex::encode(b)),
        Value::String(s) => json!(s),
        Value::Opaque { bytes, .. } => json!(hex::encode(bytes)),
        Value::Struct { fields, .. } => serde_json::Value::Object(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), value_to_json(v)))
                .collect(),
        ),
        Value::Array(items)
            if items
                .iter()
                .all(|i| matches!(i, Value::Uint(u) if *u <= 255)) =>
        {
            let bytes: Vec<u8> = items.iter().map(|i| i.as_u64().unwrap() as u8).collect();
            json!(hex::encode(bytes))
        }
        Value::Slice(items) | Value::Array(items) => {
            serde_json::Value::Array(items.iter().map(value_to_json).collect())
        }
        Value::Map(pairs) => serde_json::Value::Array(
            pairs
                .iter()
                .map(|(k, v)| json!([value_to_json(k), value_to_json(v)]))
                .collect(),
        ),
        Value::NilInterface => serde_json::Value::Null,
    }
}
