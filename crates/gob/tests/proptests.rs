//! Property tests: encode-then-decode round trips over every supported kind, and "arbitrary or
//! mutated input never panics" for typed and dynamic decoding.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashMap};

use proptest::prelude::*;
use serde::Deserialize;
use skywire_cipher::PubKey;
use skywire_gob::{Decoder, GobType, Value};

#[derive(Debug, Clone, Default, PartialEq, Deserialize, GobType)]
#[serde(default, rename_all = "PascalCase")]
struct Inner {
    a: i32,
    b: String,
    c: Vec<u16>,
}

#[derive(Debug, Clone, Default, Deserialize, GobType)]
#[serde(default, rename_all = "PascalCase")]
struct All {
    flag: bool,
    i8v: i8,
    i16v: i16,
    i32v: i32,
    i64v: i64,
    u8v: u8,
    u16v: u16,
    u32v: u32,
    u64v: u64,
    f32v: f32,
    f64v: f64,
    text: String,
    #[serde(with = "serde_bytes")]
    bytes: Vec<u8>,
    arr: [u8; 4],
    arr_i: [i64; 3],
    ints: Vec<i64>,
    strs: Vec<String>,
    nested: Inner,
    inners: Vec<Inner>,
    opt: Option<Inner>,
    opt_int: Option<i64>,
    map: BTreeMap<String, i64>,
    map2: BTreeMap<u32, Inner>,
    hmap: HashMap<i16, Vec<u8>>,
    pk: PubKey,
    pks: Vec<PubKey>,
    unit: (),
    nested_vec: Vec<Vec<u32>>,
}

const KEYS: [&str; 3] = [
    "02ba7f8b63268617e35637629bf2b7c6a9746f66d3e064a1f11f9ff9971e1b969c",
    "0376ed59c81c5f31c673787e47347061f0d1276718b8f28cc10cd0b578799466dd",
    "000000000000000000000000000000000000000000000000000000000000000000",
];

fn pubkey() -> impl Strategy<Value = PubKey> {
    (0..KEYS.len()).prop_map(|i| KEYS[i].parse().unwrap())
}

fn float64() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>(),
        any::<u64>().prop_map(f64::from_bits), // every NaN payload, infinities, -0.0
        Just(0.0),
        Just(-0.0),
    ]
}

fn inner() -> impl Strategy<Value = Inner> {
    (
        any::<i32>(),
        ".{0,8}",
        prop::collection::vec(any::<u16>(), 0..4),
    )
        .prop_map(|(a, b, c)| Inner { a, b, c })
}

prop_compose! {
    fn all()(
        (flag, i8v, i16v, i32v, i64v, u8v, u16v, u32v, u64v) in (
            any::<bool>(), any::<i8>(), any::<i16>(), any::<i32>(), any::<i64>(),
            any::<u8>(), any::<u16>(), any::<u32>(),
            prop_oneof![any::<u64>(), Just(u64::MAX), Just(0u64)]),
        (f32v, f64v, text, bytes, arr, arr_i) in (
            any::<u32>().prop_map(f32::from_bits), float64(), ".{0,16}",
            prop::collection::vec(any::<u8>(), 0..40), any::<[u8; 4]>(), any::<[i64; 3]>()),
        (ints, strs, nested, inners, opt, opt_int) in (
            prop::collection::vec(any::<i64>(), 0..5),
            prop::collection::vec(".{0,6}", 0..4),
            inner(),
            prop::collection::vec(inner(), 0..3),
            prop::option::of(inner()),
            prop::option::of(prop_oneof![Just(0i64), any::<i64>()])),
        (map, map2, hmap, pk, pks, nested_vec) in (
            prop::collection::btree_map(".{0,4}", any::<i64>(), 0..4),
            prop::collection::btree_map(any::<u32>(), inner(), 0..3),
            prop::collection::hash_map(any::<i16>(), prop::collection::vec(any::<u8>(), 0..4), 0..4),
            pubkey(),
            prop::collection::vec(pubkey().prop_filter("non-null", |k| !k.is_null()), 0..3),
            prop::collection::vec(prop::collection::vec(any::<u32>(), 0..3), 0..3)),
    ) -> All {
        All {
            flag, i8v, i16v, i32v, i64v, u8v, u16v, u32v, u64v, f32v, f64v, text, bytes, arr, arr_i,
            ints, strs, nested, inners, opt, opt_int, map, map2, hmap, pk, pks, unit: (), nested_vec,
        }
    }
}

/// What Go would decode: pointers to zero values are not sent; -0.0 == 0 is omitted.
fn normalized(mut a: All) -> All {
    if a.opt_int == Some(0) {
        a.opt_int = None;
    }
    if a.f64v == 0.0 {
        a.f64v = 0.0;
    }
    if a.f32v == 0.0 {
        a.f32v = 0.0;
    }
    a
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn round_trip_all_kinds(a in all()) {
        let bytes = skywire_gob::to_vec(&a).unwrap();
        let back: All = skywire_gob::from_slice(&bytes).unwrap();
        let mut want = normalized(a);
        let mut got = back;
        prop_assert_eq!(&got.hmap, &want.hmap);
        got.hmap.clear();
        want.hmap.clear();
        // Debug equality treats every NaN alike; byte equality checks the NaN bits.
        prop_assert_eq!(format!("{got:?}"), format!("{want:?}"));
        prop_assert_eq!(skywire_gob::to_vec(&got).unwrap(), skywire_gob::to_vec(&want).unwrap());
        // The dynamic reader accepts it too.
        let v = skywire_gob::from_slice_dynamic(&bytes).unwrap();
        prop_assert!(matches!(v, Value::Struct { .. }), "dynamic decode must yield a struct");
    }

    #[test]
    fn stream_of_values_round_trips(xs in prop::collection::vec(inner(), 1..6), n in any::<i64>()) {
        let mut enc = skywire_gob::Encoder::new();
        let mut out = Vec::new();
        for x in &xs {
            enc.encode(x, &mut out).unwrap();
            enc.encode(&n, &mut out).unwrap();
        }
        let mut dec = Decoder::new();
        let mut pos = 0;
        for x in &xs {
            let (v, used) = dec.decode_value::<Inner>(&out[pos..]).unwrap().unwrap();
            prop_assert_eq!(&v, x);
            pos += used;
            let (m, used) = dec.decode_value::<i64>(&out[pos..]).unwrap().unwrap();
            prop_assert_eq!(m, n);
            pos += used;
        }
        prop_assert_eq!(pos, out.len());
    }

    #[test]
    fn random_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = Decoder::new().decode_value::<All>(&data);
        let _ = Decoder::new().decode_value::<Inner>(&data);
        let _ = Decoder::new().decode_dynamic(&data);
        let _ = Decoder::new().skip_value(&data);
    }

    #[test]
    fn mutated_encodings_never_panic(a in all(), flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6)) {
        let mut bytes = skywire_gob::to_vec(&a).unwrap();
        for (i, b) in flips {
            let i = i.index(bytes.len());
            bytes[i] = b;
        }
        let _ = Decoder::new().decode_value::<All>(&bytes);
        let _ = Decoder::new().decode_dynamic(&bytes);
        let _ = Decoder::new().skip_value(&bytes);
        // Truncations, too.
        let cut = bytes.len() / 2;
        let _ = Decoder::new().decode_value::<All>(&bytes[..cut]);
    }
}
