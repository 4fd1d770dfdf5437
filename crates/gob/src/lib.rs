//! Go `encoding/gob`, wire-exact, for the subset Skywire's protocols use (dmsg dial objects,
//! net/rpc over gob for dmsgpty).
//!
//! Why hand-written: no maintained Rust crate speaks Go's gob byte-exactly (type-definition
//! messages with Go's id numbering and send order, zero-field omission, marshaler types), and
//! Skywire signs gob bytes, so the encoder must reproduce Go's output exactly.
//!
//! # Model
//!
//! A gob stream is a sequence of messages `uint(len) || int(type id) || body`. A negative id
//! defines type `-id` (a `wireType` value), a non-negative id carries a value. Streams are
//! stateful: each type is defined once per stream, before its first value.
//!
//! * [`Encoder`] — one per stream direction; remembers which definitions it sent. A fresh encoder
//!   numbers types from 64 in first-use order (Go numbering: structs before their fields,
//!   slices/arrays/maps after their elements) and sends definitions outer-first, so it reproduces
//!   a fresh Go process byte for byte. [`SharedRegistry`] lets several encoders share ids like the
//!   encoders of one Go process do.
//! * [`Decoder`] — one per stream direction; records received definitions (rejecting
//!   redefinitions, allowing forward references), decodes values into serde types
//!   ([`Decoder::decode_value`]), into a dynamic [`Value`] ([`Decoder::decode_dynamic`]) or skips
//!   them ([`Decoder::skip_value`]). Sans-IO: each call returns the bytes consumed, or `None` when
//!   the buffer does not yet hold a complete value.
//! * [`to_vec`] / [`from_slice`] — one value with a fresh encoder/decoder (the dmsg "fresh encoder
//!   per object" mode).
//!
//! # Declaring protocol types
//!
//! Encoding needs the Go type (name, fields in order, element types, even for omitted zero fields
//! and empty slices), which serde cannot express, so types implement [`GobType`], normally by
//! `#[derive(GobType)]`. Decoding uses serde `Deserialize` (matched by Go field name) plus the
//! `GobType` schema for Go's kind-compatibility checks. Field names come from `#[serde(rename)]` /
//! `#[serde(rename_all = "PascalCase")]` (or `#[gob(rename)]`); use `#[serde(default)]` so fields a
//! sender omitted (zero values) default.
//!
//! ```
//! use serde::Deserialize;
//! use skywire_gob::GobType;
//!
//! #[derive(Debug, Default, PartialEq, Deserialize, GobType)]
//! #[serde(default, rename_all = "PascalCase")]
//! struct WinSize { x: u16, y: u16, rows: u16, cols: u16 }
//!
//! let w = WinSize { x: 1, y: 2, rows: 40, cols: 120 };
//! let bytes = skywire_gob::to_vec(&w).unwrap();
//! assert_eq!(skywire_gob::from_slice::<WinSize>(&bytes).unwrap(), w);
//! ```
//!
//! Container attributes: `#[gob(name = "SHA256")]` (Go type name, default: the Rust name; `""` for
//! anonymous), `#[gob(package = "dmsg")]` (qualifies the type string used when an unnamed
//! composite such as `[]dmsg.Addr` is named), `#[gob(transparent)]` (newtype without a Go name).
//! A newtype `struct Sha256([u8; 32])` stands for a Go named type (`type SHA256 [32]byte`).
//! Field attributes: `#[gob(rename = "X")]`, `#[gob(skip)]` (also honours `#[serde(skip)]`).
//!
//! # Type mapping
//!
//! | Rust | Go / gob |
//! |---|---|
//! | `bool` | bool (id 1) |
//! | `i8..i64`, `isize` | int (id 2) |
//! | `u8..u64`, `usize` | uint (id 3) |
//! | `f32`, `f64` | float (id 4, bits byte-reversed) |
//! | `Vec<u8>` | `[]byte` (id 5) |
//! | `String` | string (id 6) |
//! | `Vec<T>` | `[]T` (SliceT) |
//! | `[T; N]` (incl. `[u8; N]`) | `[N]T` (ArrayT, each byte a uint) |
//! | `HashMap`, `BTreeMap` | `map[K]V` (MapT; empty = nil = omitted) |
//! | derived struct | struct (StructT; always sent, even zero) |
//! | `Option<T>` | `*T` (omitted when `None` or pointing to a zero value) |
//! | `()` | `struct{}` |
//! | `PubKey`, [`gob_marshaler!`] types | BinaryMarshalerT/GobEncoderT/TextMarshalerT |
//!
//! Top-level non-struct values carry the `00` singleton delta and are sent even when zero.
//!
//! # Robustness
//!
//! Decoding never panics; every count and length is checked against the remaining input before
//! allocating; message size, nesting depth and the number of definitions are bounded by
//! [`Limits`]. Non-nil `interface{}` values and complex numbers in typed decoding are reported as
//! [`Error::Unsupported`] (Skywire never sends them).

// Lets the derive's `::skywire_gob::...` paths resolve inside this crate's own unit tests.
extern crate self as skywire_gob;

mod de;
mod decode;
mod encode;
mod error;
mod pubkey;
mod schema;
mod types;
mod value;
pub mod wire;

pub use de::Deserializer;
pub use decode::{DEFAULT_MAX_MESSAGE_LEN, Decoder, Limits, TypeTable};
pub use encode::{Encoder, SharedRegistry};
pub use error::{Error, Result};
pub use schema::{Ctx, GobType, Registry, StructEncoder};
pub use skywire_gob_derive::GobType;
pub use types::{FieldDef, GobId, MarshalerKind, WireKind, WireType, ids};
pub use value::Value;

/// Encodes one value with a fresh [`Encoder`]: its type definitions followed by the value.
pub fn to_vec<T: GobType + ?Sized>(value: &T) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    Encoder::new().encode(value, &mut out)?;
    Ok(out)
}

/// Decodes exactly one value (with its type definitions) from `input` with a fresh [`Decoder`].
/// Trailing bytes after the value are an error.
pub fn from_slice<'de, T>(input: &'de [u8]) -> Result<T>
where
    T: serde::Deserialize<'de> + GobType,
{
    let mut dec = Decoder::new();
    match dec.decode_value::<T>(input)? {
        Some((v, used)) if used == input.len() => Ok(v),
        Some((_, used)) => Err(Error::TrailingBytes(input.len() - used)),
        None => Err(Error::Truncated { needed: 1 }),
    }
}

/// Decodes exactly one value from `input` into a [`Value`] with a fresh [`Decoder`].
pub fn from_slice_dynamic(input: &[u8]) -> Result<Value> {
    let mut dec = Decoder::new();
    match dec.decode_dynamic(input)? {
        Some((v, used)) if used == input.len() => Ok(v),
        Some((_, used)) => Err(Error::TrailingBytes(input.len() - used)),
        None => Err(Error::Truncated { needed: 1 }),
    }
}

/// Items used by `#[derive(GobType)]`; not a stable API.
#[doc(hidden)]
pub mod __private {
    pub use std::any::TypeId;
}
