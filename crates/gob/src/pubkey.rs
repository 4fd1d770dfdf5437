//! Gob mapping of [`skywire_cipher::PubKey`]: Go's `cipher.PubKey` is a `[33]byte` with
//! `MarshalBinary`, so on the wire it is a `BinaryMarshalerT` type named `PubKey` whose values are
//! the 33 raw bytes; the null key (all zero) is the zero value and is omitted as a field.

use skywire_cipher::PubKey;

crate::gob_marshaler!(
    PubKey,
    Binary,
    name = "PubKey",
    type_string = "cipher.PubKey",
    bytes = |k| k.as_bytes(),
    is_zero = |k| k.is_null(),
);
