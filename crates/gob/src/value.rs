//! Dynamic decoding: the [`Value`] tree (decode anything without Rust types: tests, fuzzing,
//! debugging dumps) and the generic skipper that consumes a value of any wire kind.

use crate::decode::TypeTable;
use crate::error::{Error, Result};
use crate::types::{GobId, MarshalerKind, WireKind, ids};
use crate::wire::{Reader, uint_to_float};

/// A gob value decoded without a Rust type, driven only by the wire types.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `bool`
    Bool(bool),
    /// any signed integer
    Int(i64),
    /// any unsigned integer
    Uint(u64),
    /// `float32`/`float64`
    Float(f64),
    /// `complex64`/`complex128` (real, imaginary)
    Complex(f64, f64),
    /// `[]byte`
    Bytes(Vec<u8>),
    /// `string` (invalid UTF-8 is replaced by U+FFFD)
    String(String),
    /// A struct: its wire type name and the fields that were sent, in wire order.
    Struct {
        /// `CommonType.Name` ("" for anonymous structs)
        name: String,
        /// sent fields (zero fields are absent)
        fields: Vec<(String, Value)>,
    },
    /// `[]T`
    Slice(Vec<Value>),
    /// `[N]T`
    Array(Vec<Value>),
    /// `map[K]V`, pairs in wire order
    Map(Vec<(Value, Value)>),
    /// A marshaler type's payload.
    Opaque {
        /// wire type name, e.g. `PubKey`
        name: String,
        /// which marshaler interface
        kind: MarshalerKind,
        /// the marshaled bytes
        bytes: Vec<u8>,
    },
    /// A nil `interface{}` value (non-nil interface values are not supported).
    NilInterface,
}

impl Value {
    /// Field of a struct value by name.
    pub fn field(&self, name: &str) -> Option<&Value> {
        match self {
            Value::Struct { fields, .. } => fields.iter().find(|(n, _)| n == name).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The integer, if this is an `Int` or an `Uint` that fits.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Value::Int(i) => Some(i),
            Value::Uint(u) => i64::try_from(u).ok(),
            _ => None,
        }
    }

    /// The unsigned integer, if this is an `Uint` or a non-negative `Int`.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::Uint(u) => Some(u),
            Value::Int(i) => u64::try_from(i).ok(),
            _ => None,
        }
    }

    /// The string, if this is a `String`.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The bytes of `Bytes` or `Opaque`.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bytes(b) | Value::Opaque { bytes: b, .. } => Some(b),
            _ => None,
        }
    }

    /// The elements of a `Slice` or `Array`.
    pub fn as_slice(&self) -> Option<&[Value]> {
        match self {
            Value::Slice(v) | Value::Array(v) => Some(v),
            _ => None,
        }
    }
}

/// Most elements preallocated for one container (the count is already bounded by the input).
const PREALLOC_CAP: usize = 4096;

fn enter(depth: usize) -> Result<usize> {
    depth.checked_sub(1).ok_or(Error::DepthExceeded(0))
}

fn depth_err(max: usize) -> impl Fn(Error) -> Error {
    move |e| match e {
        Error::DepthExceeded(_) => Error::DepthExceeded(max),
        e => e,
    }
}

/// Reads one value of wire type `id` (no singleton delta) into a [`Value`].
pub(crate) fn read_value(
    r: &mut Reader<'_>,
    types: &TypeTable,
    id: GobId,
    max_depth: usize,
) -> Result<Value> {
    read(r, types, id, max_depth).map_err(depth_err(max_depth))
}

fn read(r: &mut Reader<'_>, types: &TypeTable, id: GobId, depth: usize) -> Result<Value> {
    Ok(match id {
        ids::BOOL => Value::Bool(r.read_uint()? != 0),
        ids::INT => Value::Int(r.read_int()?),
        ids::UINT => Value::Uint(r.read_uint()?),
        ids::FLOAT => Value::Float(uint_to_float(r.read_uint()?)),
        ids::COMPLEX => {
            let re = uint_to_float(r.read_uint()?);
            Value::Complex(re, uint_to_float(r.read_uint()?))
        }
        ids::BYTES => Value::Bytes(r.read_bytes()?.to_vec()),
        ids::STRING => Value::String(String::from_utf8_lossy(r.read_bytes()?).into_owned()),
        ids::INTERFACE => {
            if r.read_bytes()?.is_empty() {
                Value::NilInterface
            } else {
                return Err(Error::Unsupported("non-nil interface values"));
            }
        }
        _ => {
            let def = types.def(id)?;
            match &def.kind {
                WireKind::Marshaler(kind) => Value::Opaque {
                    name: def.name.clone(),
                    kind: *kind,
                    bytes: r.read_bytes()?.to_vec(),
                },
                WireKind::Struct { fields } => {
                    let depth = enter(depth)?;
                    let mut out = Vec::new();
                    let mut last: i64 = -1;
                    loop {
                        let delta = r.read_uint()?;
                        if delta == 0 {
                            break;
                        }
                        let idx = field_index(last, delta, fields.len(), &def.name)?;
                        last = idx as i64;
                        let f = &fields[idx];
                        out.push((f.name.clone(), read(r, types, f.id, depth)?));
                    }
                    Value::Struct {
                        name: def.name.clone(),
                        fields: out,
                    }
                }
                WireKind::Slice { elem } => {
                    let depth = enter(depth)?;
                    let n = r.read_count(1)?;
                    let mut v = Vec::with_capacity(n.min(PREALLOC_CAP));
                    for _ in 0..n {
                        v.push(read(r, types, *elem, depth)?);
                    }
                    Value::Slice(v)
                }
                WireKind::Array { elem, len } => {
                    let depth = enter(depth)?;
                    let n = array_count(r, *len)?;
                    let mut v = Vec::with_capacity(n.min(PREALLOC_CAP));
                    for _ in 0..n {
                        v.push(read(r, types, *elem, depth)?);
                    }
                    Value::Array(v)
                }
                WireKind::Map { key, elem } => {
                    let depth = enter(depth)?;
                    let n = r.read_count(2)?;
                    let mut v = Vec::with_capacity(n.min(PREALLOC_CAP));
                    for _ in 0..n {
                        let k = read(r, types, *key, depth)?;
                        v.push((k, read(r, types, *elem, depth)?));
                    }
                    Value::Map(v)
                }
            }
        }
    })
}

/// Computes a struct field index from a delta and checks it against the field count.
pub(crate) fn field_index(last: i64, delta: u64, nfields: usize, ty: &str) -> Result<usize> {
    let idx = i64::try_from(delta)
        .ok()
        .and_then(|d| d.checked_add(last))
        .and_then(|i| usize::try_from(i).ok());
    match idx {
        Some(i) if i < nfields => Ok(i),
        _ => Err(Error::FieldOutOfRange {
            index: u64::try_from(last.saturating_add(1))
                .unwrap_or(0)
                .saturating_add(delta - 1),
            ty: ty.to_owned(),
            fields: nfields,
        }),
    }
}

/// Reads an array's element count and checks it equals the type's length.
pub(crate) fn array_count(r: &mut Reader<'_>, len: i64) -> Result<usize> {
    let n = r.read_count(1)?;
    if n as u64 != len as u64 {
        return Err(Error::ArrayLength {
            got: n as u64,
            want: len,
        });
    }
    Ok(n)
}

/// Consumes one value of wire type `id` (no singleton delta) without building anything.
pub(crate) fn skip_value(
    r: &mut Reader<'_>,
    types: &TypeTable,
    id: GobId,
    max_depth: usize,
) -> Result<()> {
    skip(r, types, id, max_depth).map_err(depth_err(max_depth))
}

pub(crate) fn skip(r: &mut Reader<'_>, types: &TypeTable, id: GobId, depth: usize) -> Result<()> {
    match id {
        ids::BOOL | ids::INT | ids::UINT | ids::FLOAT => {
            r.read_uint()?;
        }
        ids::COMPLEX => {
            r.read_uint()?;
            r.read_uint()?;
        }
        ids::BYTES | ids::STRING => {
            r.read_bytes()?;
        }
        ids::INTERFACE => {
            if !r.read_bytes()?.is_empty() {
                return Err(Error::Unsupported("non-nil interface values"));
            }
        }
        _ => {
            let def = types.def(id)?;
            match &def.kind {
                WireKind::Marshaler(_) => {
                    r.read_bytes()?;
                }
                WireKind::Struct { fields } => {
                    let depth = enter(depth)?;
                    let mut last: i64 = -1;
                    loop {
                        let delta = r.read_uint()?;
                        if delta == 0 {
                            break;
                        }
                        let idx = field_index(last, delta, fields.len(), &def.name)?;
                        last = idx as i64;
                        skip(r, types, fields[idx].id, depth)?;
                    }
                }
                WireKind::Slice { elem } => {
                    let depth = enter(depth)?;
                    for _ in 0..r.read_count(1)? {
                        skip(r, types, *elem, depth)?;
                    }
                }
                WireKind::Array { elem, len } => {
                    let depth = enter(depth)?;
                    for _ in 0..array_count(r, *len)? {
                        skip(r, types, *elem, depth)?;
                    }
                }
                WireKind::Map { key, elem } => {
                    let depth = enter(depth)?;
                    for _ in 0..r.read_count(2)? {
                        skip(r, types, *key, depth)?;
                        skip(r, types, *elem, depth)?;
                    }
                }
            }
        }
    }
    Ok(())
}
