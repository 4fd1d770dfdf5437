//! Limits and malformed input: message size cap, depth limit, impossible counts, bad uints,
//! reserved ids, unknown ids, trailing bytes, and Go's kind-compatibility rules.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde::Deserialize;
use skywire_gob::{Decoder, Error, GobType, Limits};

#[derive(Debug, Default, PartialEq, Deserialize, GobType)]
#[serde(default, rename_all = "PascalCase")]
struct Point {
    x: i64,
    y: i64,
}

#[test]
fn message_too_large_is_rejected_before_reading() {
    let mut dec = Decoder::with_limits(Limits {
        max_message_len: 16,
        ..Limits::default()
    });
    // Declares 1 MiB; only the header is present.
    let err = dec.decode_dynamic(&[0xfd, 0x10, 0x00, 0x00]).unwrap_err();
    assert!(matches!(err, Error::MessageTooLarge { .. }), "{err}");
    // The default limit accepts a 1 MiB declaration (and waits for the bytes).
    assert_eq!(
        Decoder::new()
            .decode_dynamic(&[0xfd, 0x10, 0x00, 0x00])
            .unwrap(),
        None
    );
}

#[test]
fn huge_counts_fail_without_allocating() {
    // []int singleton claiming 2^60 elements.
    let mut msg = Vec::new();
    let def = [
        0x7f, 0x02, 0x01, 0x02, 0xff, 0x80, 0x00, 0x01, 0x04, 0x00, 0x00,
    ];
    msg.push(def.len() as u8);
    msg.extend_from_slice(&def);
    let val = [0xff, 0x80, 0x00, 0xf8, 0x10, 0, 0, 0, 0, 0, 0, 0];
    msg.push(val.len() as u8);
    msg.extend_from_slice(&val);
    let err = Decoder::new().decode_dynamic(&msg).unwrap_err();
    assert!(matches!(err, Error::CountTooLarge { .. }), "{err}");
    let err = Decoder::new().decode_value::<Vec<i64>>(&msg).unwrap_err();
    assert!(matches!(err, Error::CountTooLarge { .. }), "{err}");
    // Byte string longer than the message.
    let err = Decoder::new()
        .decode_dynamic(&[0x04, 0x0c, 0x00, 0x7f, 0x41])
        .unwrap_err();
    assert!(matches!(err, Error::Truncated { .. }), "{err}");
}

#[test]
fn recursion_depth_is_bounded() {
    // type 64 = []T64 (a slice of itself), value nested 200 deep.
    let def = [
        0x7f, 0x02, 0x01, 0x02, 0xff, 0x80, 0x00, 0x01, 0xff, 0x80, 0x00, 0x00,
    ];
    let mut msg = vec![def.len() as u8];
    msg.extend_from_slice(&def);
    let mut body = vec![0xff, 0x80, 0x00];
    body.extend(std::iter::repeat_n(0x01, 200));
    body.push(0x00);
    skywire_gob::wire::write_uint(&mut msg, body.len() as u64);
    msg.extend_from_slice(&body);
    let err = Decoder::new().decode_dynamic(&msg).unwrap_err();
    assert_eq!(err, Error::DepthExceeded(64));
    let err = Decoder::new().skip_value(&msg).unwrap_err();
    assert_eq!(err, Error::DepthExceeded(64));
    // A generous limit decodes it.
    let mut dec = Decoder::with_limits(Limits {
        max_depth: 300,
        ..Limits::default()
    });
    assert!(dec.decode_dynamic(&msg).unwrap().is_some());
}

#[test]
fn malformed_messages_are_errors() {
    assert_eq!(
        Decoder::new().decode_dynamic(&[0x00]).unwrap_err(),
        Error::EmptyMessage
    );
    assert_eq!(
        Decoder::new().decode_dynamic(&[0xf7]).unwrap_err(),
        Error::BadUint(0xf7)
    );
    // Value of an undefined type.
    assert_eq!(
        Decoder::new()
            .decode_dynamic(&[0x03, 0xff, 0x80, 0x00])
            .unwrap_err(),
        Error::UnknownTypeId(64)
    );
    // Definition of a reserved id.
    assert_eq!(
        Decoder::new()
            .decode_dynamic(&[0x03, 0x1f, 0x00, 0x00, 0x02, 0x04, 0x00])
            .unwrap_err(),
        Error::ReservedTypeId(16)
    );
    // Singleton with a non-zero delta.
    assert_eq!(
        Decoder::new()
            .decode_dynamic(&[0x03, 0x04, 0x01, 0x02])
            .unwrap_err(),
        Error::BadSingletonDelta(1)
    );
    // Trailing bytes inside a value message.
    assert_eq!(
        Decoder::new()
            .decode_dynamic(&[0x04, 0x04, 0x00, 0x02, 0x09])
            .unwrap_err(),
        Error::TrailingBytes(1)
    );
    // Field delta past the last field.
    let mut bytes = skywire_gob::to_vec(&Point { x: 1, y: 2 }).unwrap();
    let n = bytes.len();
    bytes[n - 3] = 0x05; // delta for Y
    let err = skywire_gob::from_slice::<Point>(&bytes).unwrap_err();
    assert!(matches!(err, Error::FieldOutOfRange { .. }), "{err}");
}

#[test]
fn kind_mismatches_follow_go() {
    let bytes = skywire_gob::to_vec(&Point { x: 1, y: 2 }).unwrap();
    #[derive(Debug, Default, Deserialize, GobType)]
    #[serde(default, rename_all = "PascalCase")]
    #[gob(name = "Point")]
    struct UPoint {
        x: u64,
    }
    let err = skywire_gob::from_slice::<UPoint>(&bytes).unwrap_err();
    assert!(matches!(err, Error::TypeMismatch(_)), "{err}");
    assert!(err.to_string().contains("field X"), "{err}");
    // Struct into an int.
    let err = skywire_gob::from_slice::<i64>(&bytes).unwrap_err();
    assert!(matches!(err, Error::TypeMismatch(_)), "{err}");
    // A struct with fields none of which match.
    #[derive(Debug, Default, Deserialize, GobType)]
    #[serde(default)]
    #[gob(name = "Point")]
    struct Other {
        z: i64,
    }
    let err = skywire_gob::from_slice::<Other>(&bytes).unwrap_err();
    assert!(err.to_string().contains("no fields matched"), "{err}");
    // But an empty local struct ignores everything (net/rpc discarding a body).
    skywire_gob::from_slice::<()>(&bytes).unwrap();
    // Out-of-range values for narrower integers are errors, not truncation.
    let big = skywire_gob::to_vec(&70000u64).unwrap();
    assert!(skywire_gob::from_slice::<u16>(&big).is_err());
    assert_eq!(skywire_gob::from_slice::<u32>(&big).unwrap(), 70000);
}

#[test]
fn none_at_top_level_is_an_error() {
    let err = skywire_gob::to_vec(&Option::<Point>::None).unwrap_err();
    assert_eq!(err, Error::NilPointer);
    let some = skywire_gob::to_vec(&Some(Point { x: 0, y: 5 })).unwrap();
    assert_eq!(
        skywire_gob::from_slice::<Option<Point>>(&some).unwrap(),
        Some(Point { x: 0, y: 5 })
    );
}

#[test]
fn encoder_sends_each_definition_once_per_stream() {
    let mut enc = skywire_gob::Encoder::new();
    let mut first = Vec::new();
    enc.encode(&Point { x: 1, y: 2 }, &mut first).unwrap();
    let mut second = Vec::new();
    enc.encode(&Point { x: 1, y: 2 }, &mut second).unwrap();
    assert!(first.len() > second.len());
    assert_eq!(&first[first.len() - second.len()..], &second[..]);
    let mut dec = Decoder::new();
    let mut all = first.clone();
    all.extend_from_slice(&second);
    let (p, n) = dec.decode_value::<Point>(&all).unwrap().unwrap();
    assert_eq!((p.x, n), (1, first.len()));
    let (p, _) = dec.decode_value::<Point>(&all[n..]).unwrap().unwrap();
    assert_eq!(p.y, 2);
}
